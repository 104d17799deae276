"""Run every benchmark, one after another, and write one combined report.

Benchmarks (each also runs on its own; see BENCHMARKS.md):

* ``asr_accuracy``     — CER/WER of the ASR engine on ../shared/eval (real models);
* ``asr_latency``      — one-sentence latency and transcriber density through the gateway;
* ``capacity``         — a flood of N live streams on a default ``nls serve``: admitted,
  refused, latency of the admitted ones (the serving acceptance benchmark);
* ``decode_cost``      — the ASR engine's decode time by kind, length and batch size;
* ``tts``              — TTS first-audio latency, RTF and Whisper round trip (real models);
* ``gateway_protocol`` — handshakes/s, starts/s, open sessions (scripted engines);
* ``sdk_scale``        — our SDK vs the official SDK 1.0.2 at N concurrent sessions;
* ``load``             — the load generator against a scripted gateway (transcriber).

Each runs in its own process (so one failing does not stop the rest, and they never
compete for the two cores); its JSON lands in benchmarks/results/<name>.json and the
summary goes to benchmarks/results/all.json with the machine info and the wall time.

Usage::

    python benchmarks/run_all.py            # full runs (≈ 20–40 min on 2 cores)
    python benchmarks/run_all.py --quick    # smaller runs (≈ 5 min)
    python benchmarks/run_all.py --only sdk_scale load
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent


def plan(quick: bool) -> dict[str, list[str]]:
    return {
        "asr_accuracy": [],
        "asr_latency": ["--runs", "2", "--streams", "1"] if quick else [],
        "capacity": ["--streams", "1,8,32"] if quick else [],
        "decode_cost": ["--runs", "1"] if quick else [],
        "tts": ["--runs", "2"] if quick else [],
        "gateway_protocol": (
            ["--handshakes", "500", "--starts", "1000", "--open", "300"] if quick else []
        ),
        "sdk_scale": ["--quick"] if quick else [],
        "load": [
            "--local",
            "--namespace",
            "transcriber",
            "--concurrency",
            "20" if quick else "100",
            "--duration",
            "10" if quick else "30",
            "--out",
            str(RESULTS / "load.json"),
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per benchmark")
    args = parser.parse_args()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.setdefault("NLS_MODEL_MIRROR", "/work/shared/models")
    report: dict[str, Any] = {}
    for name, extra in plan(args.quick).items():
        if args.only and name not in args.only:
            continue
        cmd = [sys.executable, str(HERE / f"{name}.py"), *extra]
        print(f"=== {name}: {' '.join(cmd[1:])}", flush=True)
        begin = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=args.timeout)
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = f"timed out after {args.timeout:.0f} s"
        took = round(time.perf_counter() - begin, 1)
        result_file = RESULTS / f"{name}.json"
        entry: dict[str, Any] = {
            "command": " ".join(["python", *cmd[1:]]).replace(str(ROOT) + "/", ""),
            "exit": code,
            "wall_s": took,
        }
        if code == 0 and result_file.exists():
            entry["result"] = json.loads(result_file.read_text(encoding="utf-8"))
            entry["result"].pop("machine", None)
        report[name] = entry
        print(f"=== {name}: exit {code} in {took} s", flush=True)
    out = write_json("all", {"quick": args.quick, "benchmarks": report})
    print(f"wrote {out}")
    failed = [n for n, e in report.items() if e["exit"] != 0]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
