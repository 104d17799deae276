"""Helpers shared by the benchmark scripts: machine info, percentiles, /proc sampling,
a scripted gateway subprocess and JSON results.

Stdlib only (no ``nls`` import), so a client process that must import the *official*
``nls`` package can still use it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OFFICIAL_SDK_DIR = Path(
    os.environ.get("NLS_OFFICIAL_SDK_DIR") or ROOT / ".venv" / "official-nls-sdk"
)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (the box is shared: see ``loadavg``)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100), linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies given in seconds, in milliseconds."""
    return {
        f"p{q}_ms" if q < 100 else "max_ms": round(percentile(values, q) * 1000, 1)
        for q in (50, 95, 99, 100)
    }


def write_json(name: str, data: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``data`` (plus ``machine``) to benchmarks/results/``name``.json."""
    out = path or RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "machine": machine_info(), **data}
    out.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """Threads, RSS and peak RSS (bytes) and open fds of a process (Linux /proc)."""
    out = {"threads": 0, "rss": 0, "hwm": 0, "fds": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    out["threads"] = int(line.split()[1])
                elif line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    out["hwm"] = int(line.split()[1]) * 1024
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out


def cpu_times(pid: int | str = "self") -> tuple[float, float]:
    """(user, sys) CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(pid: int | str = "self") -> float:
    """user + sys CPU seconds of a process so far (all its threads)."""
    return sum(cpu_times(pid))


class Poller:
    """A background thread calling :meth:`sample` every ``interval`` s while in ``with``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


class PeakSampler(Poller):
    """Samples another process's threads and RSS every ``interval`` s from outside it."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.pid = pid
        self.peak_threads = 0
        self.peak_rss = 0

    def sample(self) -> None:
        status = proc_status(self.pid)
        self.peak_threads = max(self.peak_threads, status["threads"])
        self.peak_rss = max(self.peak_rss, status["rss"])
