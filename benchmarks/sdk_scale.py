"""SDK scale: our drop-in SDK vs the official ``alibabacloud-nls-python-sdk`` 1.0.2.

Both SDKs drive the SAME gateway in the same run: ``python -m nls_gateway serve
--engines scripted`` in its own process (scripted engines cost almost nothing, so what
is measured is the client). Each SDK runs in its own client process (this script with
``--client``; the official one with ``PYTHONPATH`` set to its install directory, since it
also imports as ``nls``) that drives N concurrent ``NlsSpeechTranscriber`` sessions, each
streaming ``--seconds`` of 16 kHz PCM paced at 1× in 100 ms frames (1 s tone, 1 s
silence, repeated, so sentences come back):

* **ours**: sessions are started and stopped from a pool of 4 threads (``start()`` blocks
  until ``TranscriptionStarted``), audio goes round-robin from ONE pacing thread;
* **official**: one thread per session, as its documentation shows (start, stream paced,
  stop), plus the SDK's own thread per connection (``run_forever``) and its ping thread.

Measured per client process: peak threads and peak RSS (sampled from outside every
100 ms, plus the kernel's VmHWM), CPU seconds (user+sys of the whole client process,
start to last stop) per session-second of audio, ``start()`` latency p50/p95, pacing lag,
and errors (``on_error`` calls, failed ``start``/``stop``, missing ``on_completed``).

Targets: ours ≤ 0.2× the official CPU per session-second; 2,000 sessions in one process
with ≤ 16 threads and no errors.

Usage::

    python benchmarks/sdk_scale.py                 # N = 50, 200, 1000, 2000; 10 s of audio
    python benchmarks/sdk_scale.py --quick         # N = 20, 100; 3 s of audio
    python benchmarks/sdk_scale.py --sessions 50 500 --seconds 5 --official-max 500

Writes benchmarks/results/sdk_scale.json (with machine info) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    OFFICIAL_SDK_DIR,
    ROOT,
    PeakSampler,
    cpu_seconds,
    cpu_times,
    percentile,
    proc_status,
    write_json,
)

FRAME_S = 0.1
RATE = 16000
TARGET_CPU_RATIO = 0.2
TARGET_THREADS = 16
TARGET_SESSIONS = 2000


# ===================================================================== client side


def _frames() -> list[bytes]:
    """20 frames of 100 ms: 1 s of 440 Hz tone, then 1 s of silence."""
    import array

    tone = array.array(
        "h", (int(9000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(1600))
    )
    if sys.byteorder != "little":
        tone.byteswap()
    return [tone.tobytes()] * 10 + [b"\0\0" * 1600] * 10


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.errors = 0
        self.error_samples: list[str] = []
        self.sentences = 0
        self.completed = 0

    def error(self, message: str, *args: Any) -> None:
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 3:
                self.error_samples.append(str(message)[:300])

    def sentence(self, *args: Any) -> None:
        with self.lock:
            self.sentences += 1

    def done(self, *args: Any) -> None:
        with self.lock:
            self.completed += 1


def _new_session(nls: Any, url: str, counters: _Counters) -> Any:
    return nls.NlsSpeechTranscriber(
        url=url,
        token="bench",
        appkey="bench",
        on_sentence_end=counters.sentence,
        on_completed=counters.done,
        on_error=counters.error,
    )


def _wait_tick(t0: float, k: int) -> float:
    """Sleep until frame ``k`` is due (``t0`` + k × 100 ms); return how late it already was."""
    delay = t0 + k * FRAME_S - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
        return 0.0
    return -delay


def _call(method: Any, **kwargs: Any) -> bool:
    """Run start()/stop(): ours returns True/False, the official one None or raises."""
    try:
        return method(**kwargs) is not False
    except Exception:
        return False


def client_main(args: argparse.Namespace) -> None:
    t_begin = time.perf_counter()
    cpu_begin = cpu_seconds()
    user_begin, sys_begin = cpu_times()
    import nls

    sdk = "official" if "official-nls-sdk" in (nls.__file__ or "") else "ours"
    frames = _frames()
    ticks = int(round(args.seconds / FRAME_S))
    n = args.sessions
    counters = _Counters()
    start_latency: list[float] = []
    failed_start = failed_stop = 0
    lag_max = 0.0
    phase: dict[str, float] = {}
    cpu_imported = cpu_seconds()

    if sdk == "ours" and not args.thread_per_session:
        sessions = [_new_session(nls, args.url, counters) for _ in range(n)]

        def start(st: Any) -> bool:
            t = time.perf_counter()
            ok = _call(st.start, aformat="pcm", sample_rate=RATE, timeout=60)
            start_latency.append(time.perf_counter() - t)
            return ok

        with ThreadPoolExecutor(args.start_threads) as pool:
            started = list(pool.map(start, sessions))
        failed_start = started.count(False)
        live = [s for s, ok in zip(sessions, started, strict=True) if ok]
        phase["started"] = time.perf_counter()
        cpu_started = cpu_seconds()
        t0 = time.perf_counter()
        for k in range(ticks):
            lag_max = max(lag_max, _wait_tick(t0, k))
            frame = frames[k % len(frames)]
            for st in live:
                st.send_audio(frame)
        phase["streamed"] = time.perf_counter()
        cpu_streamed = cpu_seconds()
        with ThreadPoolExecutor(args.start_threads) as pool:
            stopped = list(pool.map(lambda st: _call(st.stop, timeout=60), live))
        failed_stop = stopped.count(False)
    else:
        # One thread per session, as the official SDK's examples do.
        go = {"t0": 0.0}
        # The barrier's action runs before any thread is released: one common t0.
        barrier = threading.Barrier(n + 1, action=lambda: go.update(t0=time.perf_counter() + 0.05))
        lags: list[float] = []
        results: list[tuple[bool, bool]] = []
        lock = threading.Lock()

        def run() -> None:
            st = _new_session(nls, args.url, counters)
            t = time.perf_counter()
            ok = _call(st.start, aformat="pcm", sample_rate=RATE, timeout=60)
            with lock:
                start_latency.append(time.perf_counter() - t)
            try:
                barrier.wait(timeout=args.start_timeout)
            except threading.BrokenBarrierError:
                pass
            my_lag = 0.0
            stop_ok = False
            if ok:
                t0 = go["t0"]
                for k in range(ticks):
                    my_lag = max(my_lag, _wait_tick(t0, k))
                    st.send_audio(frames[k % len(frames)])
                stop_ok = _call(st.stop, timeout=60)
            with lock:
                lags.append(my_lag)
                results.append((ok, stop_ok))

        threads = [threading.Thread(target=run, daemon=True) for _ in range(n)]
        for thread in threads:
            thread.start()
        try:
            barrier.wait(timeout=args.start_timeout)
        except threading.BrokenBarrierError:
            pass
        phase["started"] = time.perf_counter()
        cpu_started = cpu_seconds()
        # The streaming phase ends when the last thread has sent its last frame; the
        # stop phase is folded into the threads, so "streamed" is taken at join time.
        for thread in threads:
            thread.join()
        phase["streamed"] = time.perf_counter()
        cpu_streamed = cpu_seconds()
        lag_max = max(lags, default=0.0)
        failed_start = sum(1 for ok, _ in results if not ok)
        failed_stop = sum(1 for ok, stop_ok in results if ok and not stop_ok)
    # Let on_close callbacks and socket teardown finish before the last CPU reading.
    time.sleep(0.5)
    t_end = time.perf_counter()
    cpu_end = cpu_seconds()
    user_end, sys_end = cpu_times()
    status = proc_status()
    session_seconds = n * ticks * FRAME_S
    missing = n - failed_start - counters.completed
    result = {
        "sdk": sdk,
        "model": "thread per session"
        if sdk == "official" or args.thread_per_session
        else f"{args.start_threads} start/stop threads + 1 pacing thread",
        "sessions": n,
        "audio_s_per_session": ticks * FRAME_S,
        "wall_s": round(t_end - t_begin, 2),
        "start_phase_s": round(phase["started"] - t_begin, 2),
        "cpu_s_total": round(cpu_end - cpu_begin, 2),
        "cpu_s_import": round(cpu_imported - cpu_begin, 2),
        "cpu_s_user_total": round(user_end - user_begin, 2),
        "cpu_s_sys_total": round(sys_end - sys_begin, 2),
        "cpu_s_start_phase": round(cpu_started - cpu_imported, 2),
        "cpu_s_stream_phase": round(cpu_streamed - cpu_started, 2),
        "cpu_per_session_second": round((cpu_end - cpu_imported) / session_seconds, 5),
        "start_p50_ms": round(percentile(start_latency, 50) * 1000, 1),
        "start_p95_ms": round(percentile(start_latency, 95) * 1000, 1),
        "pacing_lag_max_ms": round(lag_max * 1000, 1),
        "errors": counters.errors + failed_start + failed_stop + max(0, missing),
        "on_error_calls": counters.errors,
        "failed_starts": failed_start,
        "failed_stops": failed_stop,
        "missing_completed": max(0, missing),
        "error_samples": counters.error_samples,
        "sentences": counters.sentences,
        "threads_at_end": status["threads"],
        "vm_hwm_mb": round(status["hwm"] / 2**20, 1),
    }
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # the official SDK may leave non-daemon threads behind


# ===================================================================== parent side


def run_client(sdk: str, url: str, sessions: int, seconds: float, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if sdk == "official":
        if not (OFFICIAL_SDK_DIR / "nls").is_dir():
            raise SystemExit(f"official SDK not found in {OFFICIAL_SDK_DIR} (run scripts/env.sh)")
        env["PYTHONPATH"] = str(OFFICIAL_SDK_DIR)
    else:
        env["PYTHONPATH"] = str(ROOT / "src")
    cmd = [
        sys.executable,
        __file__,
        "--client",
        "--url",
        url,
        "--sessions",
        str(sessions),
        "--seconds",
        str(seconds),
        "--start-timeout",
        str(timeout),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] | None = None
    with PeakSampler(proc.pid) as sampler:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            return {
                "sdk": sdk,
                "sessions": sessions,
                "failed": f"timed out after {timeout:.0f} s",
                "peak_threads": sampler.peak_threads,
                "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
            }
    for line in out.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if result is None:
        return {
            "sdk": sdk,
            "sessions": sessions,
            "failed": f"exit {proc.returncode}: " + " | ".join(err.strip().splitlines()[-3:]),
            "peak_threads": sampler.peak_threads,
            "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        }
    result["peak_threads"] = sampler.peak_threads
    result["peak_rss_mb"] = round(max(sampler.peak_rss / 2**20, result["vm_hwm_mb"]), 1)
    return result


def _row(r: dict[str, Any], ratio: str) -> str:
    if "failed" in r:
        return (
            f"| {r['sdk']:8} | {r['sessions']:5} | FAILED: {r['failed']} "
            f"(peak {r['peak_threads']} threads, {r['peak_rss_mb']} MB) |"
        )
    return (
        f"| {r['sdk']:8} | {r['sessions']:5} | {r['peak_threads']:6} | {r['peak_rss_mb']:7.1f} | "
        f"{r['cpu_per_session_second'] * 1000:8.2f} | {ratio:>6} | {r['start_p50_ms']:7.1f} | "
        f"{r['start_p95_ms']:7.1f} | {r['pacing_lag_max_ms']:7.1f} | {r['errors']:6} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[50, 200, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per session")
    parser.add_argument(
        "--official-max", type=int, default=2000, help="largest N tried with the official SDK"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per client run")
    parser.add_argument("--quick", action="store_true", help="N = 20, 100; 3 s of audio")
    parser.add_argument("--out", type=Path, default=None)
    # client mode (internal)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--start-threads", type=int, default=4, help=argparse.SUPPRESS)
    parser.add_argument("--start-timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    parser.add_argument("--thread-per-session", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        args.sessions = args.sessions[0]
        client_main(args)
        return
    if args.quick:
        args.sessions, args.seconds = [20, 100], 3.0
    rows: list[dict[str, Any]] = []
    # Imported here, on the parent side only: the client processes import the official
    # SDK as `nls` and must not load ours through nls_gateway.
    from nls_gateway.testing import GatewayProcess

    # Limits opened up: this gateway is deliberately overloaded to measure the SDKs, so
    # its overload guards (40000005, "Instance pool exhausted!") must not be what fails.
    with GatewayProcess(
        timeout=60.0,
        max_concurrent_tasks=10000,
        max_connections=10000,
        max_waiting_engine_calls=100_000,
        idle_timeout=60.0,
    ) as gateway:
        for n in args.sessions:
            by_sdk: dict[str, dict[str, Any]] = {}
            for sdk in ("official", "ours"):
                if sdk == "official" and n > args.official_max:
                    by_sdk[sdk] = {
                        "sdk": sdk,
                        "sessions": n,
                        "skipped": f"N > --official-max {args.official_max}",
                    }
                    continue
                print(f"... {sdk}: {n} sessions × {args.seconds:g} s", flush=True)
                gateway_cpu = cpu_seconds(gateway.proc.pid)
                by_sdk[sdk] = run_client(sdk, gateway.url, n, args.seconds, args.timeout)
                # The gateway's CPU for the same run: when it is the bottleneck (the stop
                # phase waits for it to drain), this shows it.
                by_sdk[sdk]["gateway_cpu_s"] = round(cpu_seconds(gateway.proc.pid) - gateway_cpu, 2)
                time.sleep(1.0)
            official, ours = by_sdk["official"], by_sdk["ours"]
            if "cpu_per_session_second" in official and "cpu_per_session_second" in ours:
                ours["cpu_ratio_vs_official"] = round(
                    ours["cpu_per_session_second"] / official["cpu_per_session_second"], 3
                )
            rows += [official, ours]
    print()
    print(
        "| SDK | N | peak threads | peak RSS MB | CPU ms / session-s | vs official | "
        "start p50 ms | start p95 ms | pacing lag max ms | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['sdk']} | {r['sessions']} | skipped: {r['skipped']} |")
            continue
        ratio = f"{r['cpu_ratio_vs_official']:.2f}×" if "cpu_ratio_vs_official" in r else ""
        print(_row(r, ratio))
    ours_max = [r for r in rows if r["sdk"] == "ours" and "errors" in r]
    big = max(ours_max, key=lambda r: r["sessions"], default=None)
    ratios = [r["cpu_ratio_vs_official"] for r in rows if "cpu_ratio_vs_official" in r]
    targets = {
        "cpu_ratio_vs_official_max": TARGET_CPU_RATIO,
        "sessions_in_one_process": TARGET_SESSIONS,
        "threads_max": TARGET_THREADS,
    }
    verdict = {
        "worst_cpu_ratio": max(ratios) if ratios else None,
        "cpu_ratio_met": bool(ratios) and max(ratios) <= TARGET_CPU_RATIO,
        "largest_ours": big["sessions"] if big else None,
        "largest_ours_threads": big["peak_threads"] if big else None,
        "largest_ours_errors": big["errors"] if big else None,
        "scale_met": bool(big)
        and big["sessions"] >= TARGET_SESSIONS
        and big["peak_threads"] <= TARGET_THREADS
        and big["errors"] == 0,
    }
    print(f"\ntargets: {targets}\nverdict: {verdict}")
    out = write_json(
        "sdk_scale",
        {
            "quick": args.quick,
            "seconds_of_audio": args.seconds,
            "targets": targets,
            "verdict": verdict,
            "runs": rows,
            "command": "python benchmarks/sdk_scale.py" + (" --quick" if args.quick else ""),
        },
        args.out,
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
