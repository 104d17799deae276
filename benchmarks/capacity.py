"""Capacity under a flood: N live zh streams started at once on ONE default gateway.

The issue's acceptance benchmark. One ``nls serve`` with real engines and default flags
(only ``--host 127.0.0.1 --port 0``: dev mode on loopback, any token/appkey) runs in its own
process; ``--url`` targets an already running gateway instead. For each N in
``--streams``, N threads start N sessions of the DROP-IN threaded SDK
(``nls.NlsSpeechTranscriber``, intermediate results, punctuation and ITN on, as in the
official examples) at the same moment (a barrier), and each admitted stream sends the 5.5 s
sentence ``zh_dev_06`` at 1× real time in 100 ms frames (frame k at t0 + k × 100 ms, t0 =
when ``start()`` returned), then calls ``stop()``. Per stream:

* **admitted** (``on_start`` ran) or **refused** (``on_error`` with status 40000005;
  refusal time = ``start()`` call → ``on_error``);
* **Stop→Completed**: ``stop()`` call → ``on_completed`` (includes draining any audio the
  SDK still had queued);
* **SentenceEnd after the speaker's endpoint**: the stream's last ``on_sentence_end`` minus
  the wall time at which the frame holding the clip's last speech sample (last 10 ms block
  with peak > 500, at 5.18 s of 5.55 s) was sent; it may come after ``stop()``;
* **first partial**: first audio frame sent → first ``on_result_changed`` (also kept
  relative to the speech onset at 0.91 s in the JSON);
* **timeouts**: neither ``on_completed`` nor ``on_error`` within ``--timeout`` s beyond the
  clip's duration from the ``start()`` call (an SDK-local Start/StopTimeoutException counts
  here, not as an error);
* **other errors**: any other ``on_error``, by status.

All times are taken in the callbacks (``time.perf_counter``), i.e. what a user of the
SDK sees. Between N values the script waits until ``nls_active_tasks`` is 0. After each N
the raw ``/metrics`` lines of ``nls_engine*``, ``nls_decode*``, ``nls_admission*``,
``nls_asr*``, ``nls_stream*``, ``nls_sessions`` and ``nls_active*`` are stored (cumulative
counters: diff consecutive N), plus the peaks of the gauges sampled every 0.5 s during the
flood, and the gateway's CPU seconds (when this script started it).

Usage::

    python benchmarks/capacity.py [--streams 1,2,4,8,16,32,64] [--timeout 60] [--out FILE]
    python benchmarks/capacity.py --url ws://127.0.0.1:8765/ws/v1 [--token T --appkey K]

Writes benchmarks/results/capacity.json (with machine info) and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Poller, cpu_seconds, summary_ms, write_json  # noqa: E402

from nls import NlsSpeechTranscriber  # noqa: E402

EVAL = Path(os.environ.get("NLS_EVAL_DIR") or ROOT.parent / "shared" / "eval")
CLIP = "zh_dev_06_funasr_asr_example_zh.wav"
RATE = 16000
FRAME_S = 0.1
FRAME = int(RATE * 2 * FRAME_S)
REFUSED = 40000005
METRIC_PREFIXES = (
    "nls_engine",
    "nls_decode",
    "nls_admission",
    "nls_asr",
    "nls_stream",
    "nls_sessions",
    "nls_active",
)
PEAK_GAUGES = ("nls_active_tasks", "nls_active_connections", "nls_decode_queue", "nls_stream_load")


# ===================================================================== audio


def _pcm(name: str) -> bytes:
    with wave.open(str(EVAL / name), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
            raise SystemExit(f"{name}: need 16 kHz mono 16-bit")
        return w.readframes(w.getnframes())


def _speech_bounds(pcm: bytes, threshold: int = 500) -> tuple[float, float]:
    """(onset, end) in seconds: first / last 10 ms block whose peak exceeds ``threshold``."""
    peaks = [
        max((abs(v) for v in memoryview(pcm[i : i + 320]).cast("h")), default=0)
        for i in range(0, len(pcm) - len(pcm) % 2, 320)
    ]
    loud = [k for k, p in enumerate(peaks) if p > threshold]
    if not loud:
        return 0.0, len(pcm) / (2 * RATE)
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


# ===================================================================== one stream


def _status(message: str) -> tuple[int | None, str]:
    try:
        header = json.loads(message).get("header", {})
        return header.get("status"), str(header.get("status_text", ""))
    except (ValueError, AttributeError):
        return None, str(message)[:300]


class Stream:
    """One user thread: start, stream the clip at 1×, stop; timestamps from the callbacks."""

    def __init__(self, url: str, token: str, appkey: str, frames: list[bytes], bound: float):
        self.url, self.token, self.appkey = url, token, appkey
        self.frames = frames
        self.bound = bound  # seconds from start() for on_completed / on_error
        self.speech_end_frame = 0
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.t_start = math.nan
        self.started: float | None = None
        self.error_at: float | None = None
        self.error_status: int | None = None
        self.error_text = ""
        self.first_frame: float | None = None
        self.speech_end_sent: float | None = None
        self.last_frame: float | None = None
        self.stop_called: float | None = None
        self.completed: float | None = None
        self.first_partial: float | None = None
        self.partials = 0
        self.sentence_ends: list[float] = []
        self.texts: list[str] = []
        self.start_returned: bool | None = None
        self.stop_returned: bool | None = None
        self.unsent_frames = 0

    # ---------------------------------------------------------------- callbacks

    def on_start(self, message: str, *args: Any) -> None:
        self.started = time.perf_counter()

    def on_result_changed(self, message: str, *args: Any) -> None:
        now = time.perf_counter()
        with self.lock:
            self.partials += 1
            if self.first_partial is None:
                self.first_partial = now

    def on_sentence_end(self, message: str, *args: Any) -> None:
        now = time.perf_counter()
        try:
            text = str(json.loads(message)["payload"].get("result", ""))
        except (ValueError, KeyError, AttributeError):
            text = ""
        with self.lock:
            self.sentence_ends.append(now)
            self.texts.append(text)

    def on_completed(self, message: str, *args: Any) -> None:
        self.completed = time.perf_counter()
        self.done.set()

    def on_error(self, message: str, *args: Any) -> None:
        now = time.perf_counter()
        if self.error_at is None:
            self.error_at = now
            self.error_status, self.error_text = _status(message)
        self.done.set()

    # ---------------------------------------------------------------- driver

    def run(self, barrier: threading.Barrier) -> None:
        st = NlsSpeechTranscriber(
            url=self.url,
            token=self.token,
            appkey=self.appkey,
            on_start=self.on_start,
            on_result_changed=self.on_result_changed,
            on_sentence_end=self.on_sentence_end,
            on_completed=self.on_completed,
            on_error=self.on_error,
        )
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        self.t_start = time.perf_counter()
        deadline = self.t_start + self.bound
        try:
            self.start_returned = st.start(
                aformat="pcm",
                sample_rate=RATE,
                enable_intermediate_result=True,
                enable_punctuation_prediction=True,
                enable_inverse_text_normalization=True,
                timeout=self.bound,
            )
            if not self.start_returned:
                return
            t0 = time.perf_counter()
            for k, frame in enumerate(self.frames):
                delay = t0 + k * FRAME_S - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                if self.error_at is not None or not st.send_audio(frame):
                    self.unsent_frames = len(self.frames) - k
                    break
                now = time.perf_counter()
                if k == 0:
                    self.first_frame = now
                if k == self.speech_end_frame:
                    self.speech_end_sent = now
            self.last_frame = time.perf_counter()
            if self.error_at is None:
                self.stop_called = time.perf_counter()
                self.stop_returned = st.stop(timeout=max(0.1, deadline - self.stop_called))
            self.done.wait(max(0.0, deadline - time.perf_counter()))
        finally:
            st.shutdown()

    # ---------------------------------------------------------------- outcome

    @property
    def refused(self) -> bool:
        return self.started is None and self.error_status == REFUSED

    @property
    def sdk_timeout(self) -> bool:
        return self.error_at is not None and (
            self.error_text.startswith("SDK:") and "Timeout" in self.error_text
        )

    @property
    def timed_out(self) -> bool:
        return self.sdk_timeout or (self.completed is None and self.error_at is None)

    @property
    def other_error(self) -> bool:
        return self.error_at is not None and not self.refused and not self.sdk_timeout

    def record(self) -> dict[str, Any]:
        def ms(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((a - b) * 1000, 1)

        return {
            "admitted": self.started is not None,
            "refused": self.refused,
            "timed_out": self.timed_out,
            "start_ms": ms(self.started, self.t_start),
            "error_ms": ms(self.error_at, self.t_start),
            "error_status": self.error_status,
            "error_text": self.error_text[:200] or None,
            "first_partial_ms": ms(self.first_partial, self.first_frame),
            "partials": self.partials,
            "stop_to_completed_ms": ms(self.completed, self.stop_called),
            "sentence_end_after_speech_end_ms": ms(
                self.sentence_ends[-1] if self.sentence_ends else None, self.speech_end_sent
            ),
            "sentence_ends": len(self.sentence_ends),
            "sentence_end_before_stop": bool(
                self.sentence_ends
                and self.stop_called is not None
                and self.sentence_ends[-1] < self.stop_called
            ),
            "stream_ms": ms(self.last_frame, self.first_frame),
            "unsent_frames": self.unsent_frames,
            "start_returned": self.start_returned,
            "stop_returned": self.stop_returned,
            "text": "".join(self.texts),
        }


# ===================================================================== gateway side


class Gateway:
    """``nls serve --host 127.0.0.1 --port 0`` in its own process (default everything else)."""

    def __init__(self, startup_timeout: float) -> None:
        cmd = [sys.executable, "-m", "nls_gateway", "serve", "--host", "127.0.0.1", "--port", "0"]
        self.command = "nls serve --host 127.0.0.1 --port 0"
        t = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.tail: collections.deque[str] = collections.deque(maxlen=50)
        self.url = ""
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(startup_timeout) or not self.url:
            self.close()
            raise SystemExit("the gateway did not become ready:\n" + "\n".join(self.tail))
        self.http = http_base(self.url)
        while _get(self.http + "/healthz") is None:
            if time.perf_counter() - t > startup_timeout:
                self.close()
                raise SystemExit("/healthz never answered 200")
            time.sleep(0.2)
        self.startup_s = round(time.perf_counter() - t, 1)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.tail.append(line.rstrip())
            match = re.search(r"ready on (ws://\S+)", line)
            if match and not self.url:
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()  # the process ended

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def http_base(url: str) -> str:
    base = url.split("?", 1)[0].replace("wss://", "https://").replace("ws://", "http://")
    return base.removesuffix("/").removesuffix("/ws/v1")


def _get(url: str, timeout: float = 5.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def scrape(http: str) -> list[str] | None:
    """The /metrics lines this benchmark keeps (raw), or None without /metrics."""
    text = _get(http + "/metrics")
    if text is None:
        return None
    return [line for line in text.splitlines() if line.startswith(METRIC_PREFIXES)]


def _value(lines: list[str], name: str) -> float | None:
    for line in lines:
        if line.split("{", 1)[0].split(" ", 1)[0] == name:
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


class PeakMetrics(Poller):
    """Polls /metrics every ``interval`` s and keeps each gauge line's maximum."""

    def __init__(self, http: str, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.http = http
        self.peaks: dict[str, float] = {}

    def sample(self) -> None:
        for line in scrape(self.http) or []:
            if line.startswith(PEAK_GAUGES):
                key, _, value = line.rpartition(" ")
                try:
                    self.peaks[key] = max(self.peaks.get(key, -math.inf), float(value))
                except ValueError:
                    pass


def wait_idle(http: str, limit: float = 120.0) -> float:
    """Wait until the gateway has no active task (then 1 s more); seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        lines = scrape(http)
        if lines is None:  # no /metrics (another gateway): just pause
            time.sleep(2.0)
            break
        active = _value(lines, "nls_active_tasks")
        if active is None or active == 0:
            break
        time.sleep(0.5)
    time.sleep(1.0)
    return round(time.perf_counter() - t, 1)


# ===================================================================== one flood


def flood(args: argparse.Namespace, url: str, n: int, pcm: bytes) -> dict[str, Any]:
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]
    onset, speech_end = _speech_bounds(pcm)
    bound = len(pcm) / (2 * RATE) + args.timeout
    streams = [Stream(url, args.token, args.appkey, frames, bound) for _ in range(n)]
    for s in streams:
        s.speech_end_frame = min(len(frames) - 1, int(speech_end / FRAME_S))
    barrier = threading.Barrier(n + 1)
    threads = [threading.Thread(target=s.run, args=(barrier,), daemon=True) for s in streams]
    for thread in threads:
        thread.start()
    barrier.wait()
    t_flood = time.perf_counter()
    for thread in threads:
        thread.join(max(0.0, t_flood + bound + 15 - time.perf_counter()))
    wall = time.perf_counter() - t_flood
    hung = sum(thread.is_alive() for thread in threads)

    admitted = [s for s in streams if s.started is not None]
    refused = [s for s in streams if s.refused]
    refusal = [s.error_at - s.t_start for s in refused if s.error_at is not None]
    stop = [
        s.completed - s.stop_called
        for s in streams
        if s.completed is not None and s.stop_called is not None
    ]
    sentence_end = [
        s.sentence_ends[-1] - s.speech_end_sent
        for s in streams
        if s.sentence_ends and s.speech_end_sent is not None
    ]
    first_partial = [
        s.first_partial - s.first_frame
        for s in streams
        if s.first_partial is not None and s.first_frame is not None
    ]
    partial_after_onset = [
        s.first_partial - (s.first_frame + onset)
        for s in streams
        if s.first_partial is not None and s.first_frame is not None
    ]
    start_latency = [s.started - s.t_start for s in admitted if s.started is not None]
    errors = collections.Counter(str(s.error_status) for s in streams if s.other_error)
    error_samples = sorted(
        {f"{s.error_status} {s.error_text[:160]}" for s in streams if s.other_error}
    )
    texts = collections.Counter("".join(s.texts) for s in streams if s.completed is not None)
    return {
        "streams": n,
        "admitted": len(admitted),
        "refused": len(refused),
        "completed": sum(s.completed is not None for s in streams),
        "timeouts": sum(s.timed_out for s in streams),
        "other_errors": sum(s.other_error for s in streams),
        "errors_by_status": dict(errors),
        "error_samples": error_samples[:5],
        "threads_still_running": hung,
        "wall_s": round(wall, 2),
        "refusal": summary_ms(refusal),
        "start_to_started": summary_ms(start_latency),
        "stop_to_completed": summary_ms(stop),
        "sentence_end_after_speech_end": summary_ms(sentence_end),
        "sentence_end_before_stop": sum(
            1 for s in streams if s.record()["sentence_end_before_stop"]
        ),
        "first_partial_after_first_frame": summary_ms(first_partial),
        "first_partial_after_speech_onset": summary_ms(partial_after_onset),
        "streams_with_partials": len(first_partial),
        "texts": dict(texts.most_common(5)),
        "per_stream": [s.record() for s in streams],
    }


# ===================================================================== main


def _streams(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", ",").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N,N,…: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("stream counts must be ≥ 1")
    return values


def _cell(summary: dict[str, float], key: str) -> str:
    value = summary[key]
    return "–" if math.isnan(value) else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--streams", type=_streams, default=[1, 2, 4, 8, 16, 32, 64], help="N,N,… (flood sizes)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="per stream, beyond the clip's 5.5 s"
    )
    parser.add_argument("--url", help="an already running gateway (…/ws/v1) instead of our own")
    parser.add_argument("--token", default="capacity", help="token (any in dev mode)")
    parser.add_argument("--appkey", default="capacity", help="appkey (any in dev mode)")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="engine loading")
    parser.add_argument("--out", type=Path, default=None, help="default results/capacity.json")
    args = parser.parse_args()
    pcm = _pcm(CLIP)
    onset, speech_end = _speech_bounds(pcm)

    gateway: Gateway | None = None
    if args.url:
        url = args.url
    else:
        print("... starting nls serve (real engines, default flags)", flush=True)
        gateway = Gateway(args.startup_timeout)
        url = gateway.url
        print(f"... ready on {url} after {gateway.startup_s} s", flush=True)
    http = http_base(url)
    rows: list[dict[str, Any]] = []
    baseline = scrape(http)
    try:
        for n in args.streams:
            print(f"... flood of {n} stream(s)", flush=True)
            cpu = cpu_seconds(gateway.proc.pid) if gateway else None
            with PeakMetrics(http) as peaks:
                row = flood(args, url, n, pcm)
            if gateway is not None and cpu is not None:
                row["gateway_cpu_s"] = round(cpu_seconds(gateway.proc.pid) - cpu, 2)
            row["metric_peaks"] = peaks.peaks
            row["idle_wait_s"] = wait_idle(http)
            row["metrics"] = scrape(http)
            rows.append(row)
    finally:
        if gateway is not None:
            gateway.close()

    print()
    print(
        "| N | admitted | refused | refusal p50/max ms | Stop→Completed p50 / p95 ms | "
        "SentenceEnd p95 ms | first partial p50 ms (after onset) | timeouts | other errors |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        errs = ", ".join(f"{k}×{v}" for k, v in r["errors_by_status"].items()) or "0"
        print(
            f"| {r['streams']} | {r['admitted']} | {r['refused']} | "
            f"{_cell(r['refusal'], 'p50_ms')} / {_cell(r['refusal'], 'max_ms')} | "
            f"{_cell(r['stop_to_completed'], 'p50_ms')} / "
            f"{_cell(r['stop_to_completed'], 'p95_ms')} | "
            f"{_cell(r['sentence_end_after_speech_end'], 'p95_ms')} | "
            f"{_cell(r['first_partial_after_first_frame'], 'p50_ms')} "
            f"({_cell(r['first_partial_after_speech_onset'], 'p50_ms')}) | "
            f"{r['timeouts']} | {errs} |"
        )
    out = write_json(
        "capacity",
        {
            "gateway": gateway.command if gateway else "(external)",
            "url": url if gateway else "(external)",
            "gateway_startup_s": gateway.startup_s if gateway else None,
            "clip": CLIP,
            "clip_s": round(len(pcm) / (2 * RATE), 3),
            "speech_onset_s": onset,
            "speech_end_s": speech_end,
            "frame_ms": int(FRAME_S * 1000),
            "sdk": "nls.NlsSpeechTranscriber (drop-in, one thread per stream)",
            "start_params": {
                "enable_intermediate_result": True,
                "enable_punctuation_prediction": True,
                "enable_inverse_text_normalization": True,
            },
            "timeout_s": args.timeout,
            "metrics_baseline": baseline,
            "runs": rows,
            "gateway_stderr_tail": list(gateway.tail)[-20:] if gateway else None,
            "command": "python benchmarks/capacity.py " + " ".join(sys.argv[1:]),
        },
        args.out,
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
