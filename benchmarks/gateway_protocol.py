"""Protocol throughput of the gateway with scripted engines (no model cost).

Starts a gateway with scripted engines in a child process on a free loopback port
(``nls_gateway.testing.GatewayProcess``) and drives it from this process with the
``websockets`` client:

* **handshakes/s** — WebSocket open + close, ``--concurrency`` clients in parallel;
* **starts/s** — ``StartRecognition`` → ``RecognitionStarted`` round trips on long-lived
  connections (each task is then stopped: Stop → ``RecognitionCompleted``);
* **open sessions** — connections each holding a started task at the same time, checked
  against the gateway's ``nls_active_tasks`` gauge.

Targets: ≥ 500 starts/s and ≥ 1,000 open sessions. Prints a table and writes JSON with
machine information to benchmarks/results/gateway_protocol.json. Client and server share
the machine's cores, so the numbers are a lower bound for the server alone.

Usage: python benchmarks/gateway_protocol.py [--handshakes N] [--starts N] [--open N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from nls.protocol import new_id, serialize_command
from nls_gateway.testing import GatewayProcess

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gateway_protocol.json"
TARGETS = {"starts_per_s": 500.0, "open_sessions": 1000}


def _command(name: str, task_id: str) -> str:
    payload = {"format": "pcm", "sample_rate": 16000} if name.startswith("Start") else None
    return serialize_command(
        namespace="SpeechRecognizer",
        name=name,
        task_id=task_id,
        message_id=new_id(),
        appkey="bench",
        payload=payload,
    )


async def _expect(ws: ClientConnection, name: str) -> None:
    while True:
        message = await asyncio.wait_for(ws.recv(), 30)
        if isinstance(message, str):
            got = json.loads(message)["header"]["name"]
            if got != name:
                raise RuntimeError(f"expected {name}, got {got}: {message}")
            return


async def bench_handshakes(url: str, total: int, concurrency: int) -> float:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with connect(url, compression=None, ping_interval=None):
                pass

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def bench_starts(url: str, total: int, concurrency: int) -> float:
    remaining = total
    durations: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        async with connect(url, compression=None, ping_interval=None) as ws:
            while remaining > 0:
                remaining -= 1
                task = new_id()
                t0 = time.perf_counter()
                await ws.send(_command("StartRecognition", task))
                await _expect(ws, "RecognitionStarted")
                durations.append(time.perf_counter() - t0)
                await ws.send(_command("StopRecognition", task))
                await _expect(ws, "RecognitionCompleted")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    durations.sort()
    bench_starts.p50_ms = 1000 * durations[len(durations) // 2]  # type: ignore[attr-defined]
    return total / elapsed


def _active_tasks(http_url: str) -> float:
    with urllib.request.urlopen(f"{http_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    match = re.search(r"^nls_active_tasks (\S+)$", text, re.M)
    return float(match.group(1)) if match else -1.0


async def bench_open(url: str, http_url: str, count: int) -> tuple[int, float, float]:
    sockets: list[ClientConnection] = []
    started = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def open_one() -> None:
        async with sem:
            ws = await connect(url, compression=None, ping_interval=None, open_timeout=60)
            sockets.append(ws)
            await ws.send(_command("StartRecognition", new_id()))
            await _expect(ws, "RecognitionStarted")

    await asyncio.gather(*(open_one() for _ in range(count)))
    open_s = time.perf_counter() - started
    active = await asyncio.to_thread(_active_tasks, http_url)
    # Every session is still alive: one audio frame each, no TaskFailed.
    await asyncio.gather(*(ws.send(b"\x00" * 640) for ws in sockets))
    await asyncio.sleep(0.5)
    alive = sum(1 for ws in sockets if ws.close_code is None)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return min(alive, int(active)), open_s, active


async def run_benchmarks(args: argparse.Namespace, gateway: GatewayProcess) -> dict[str, Any]:
    url = gateway.url
    await bench_starts(url, 200, 10)  # warm-up
    handshakes = await bench_handshakes(url, args.handshakes, args.concurrency)
    starts = await bench_starts(url, args.starts, args.concurrency)
    open_sessions, open_s, active = await bench_open(url, gateway.http_url, args.open)
    return {
        "handshakes_per_s": round(handshakes, 1),
        "starts_per_s": round(starts, 1),
        "start_p50_ms": round(bench_starts.p50_ms, 2),  # type: ignore[attr-defined]
        "open_sessions": open_sessions,
        "open_sessions_requested": args.open,
        "open_sessions_seconds": round(open_s, 2),
        "server_active_tasks_gauge": active,
        "concurrency": args.concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handshakes", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=5000)
    parser.add_argument("--open", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with GatewayProcess(
        timeout=60.0,
        idle_timeout=120.0,
        max_concurrent_tasks=args.open + 100,
        max_connections=args.open + 200,
    ) as gateway:
        results = asyncio.run(run_benchmarks(args, gateway))
    machine = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "websockets": websockets.__version__,
    }
    report = {"results": results, "targets": TARGETS, "machine": machine}
    rows = [
        ("handshakes/s", results["handshakes_per_s"], "-"),
        ("starts/s (Start→Started)", results["starts_per_s"], TARGETS["starts_per_s"]),
        ("start round trip p50 ms", results["start_p50_ms"], "-"),
        ("open sessions held", results["open_sessions"], TARGETS["open_sessions"]),
        ("  seconds to open them", results["open_sessions_seconds"], "-"),
    ]
    print(f"{'metric':<28}{'measured':>12}{'target':>10}")
    for name, value, target in rows:
        print(f"{name:<28}{value!s:>12}{target!s:>10}")
    print(f"machine: {machine['cpus']} CPUs, Python {machine['python']}, {machine['platform']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
