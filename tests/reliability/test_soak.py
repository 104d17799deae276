"""Soak: many sequential sessions through the drop-in SDK against an in-process gateway.

After a warm-up (the shared loop thread, the callback pool and the engine threads exist
by then), ``SOAK_SESSIONS`` sequential NlsSpeechTranscriber sessions (default 300) run
start → audio → stop. Then no new thread runs (beyond a baseline pool's next worker),
open file descriptors are back to the baseline and RSS grew by less than 5 %. Both
halves live in this process, so a leak in either the SDK or the gateway shows.

Long run (documented in BENCHMARKS.md)::

    SOAK_SESSIONS=10000 pytest tests/reliability/test_soak.py --timeout 0 -s
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections import Counter

import pytest

import nls
from reliability.helpers import pcm_tone, proc_stats, thread_names, wait_for

SESSIONS = int(os.environ.get("SOAK_SESSIONS", "300"))
WARMUP = 30


def _session(url: str, audio: list[bytes]) -> bool:
    done = threading.Event()
    st = nls.NlsSpeechTranscriber(
        url=url,
        token="t",
        appkey="k",
        on_completed=lambda *a: done.set(),
        on_error=lambda *a: done.set(),
    )
    if not st.start(aformat="pcm", sample_rate=16000, timeout=10):
        return False
    for frame in audio:
        st.send_audio(frame)
    ok = st.stop(timeout=10)
    return ok and done.is_set()


@pytest.fixture
def quiet_websockets_log():
    """websockets logs two INFO records per connection, and pytest's log capture keeps
    every record for the report: over 10,000 sessions that alone is ~20 MB of "growth".
    Raise that logger to WARNING for the soak so RSS measures the code, not the harness."""
    ws_logger = logging.getLogger("nls_gateway.server.websockets")
    level = ws_logger.level
    ws_logger.setLevel(logging.WARNING)
    yield
    ws_logger.setLevel(level)


async def test_sequential_sessions_leave_no_threads_fds_or_memory(gateway, quiet_websockets_log):
    gw = await gateway(idle_timeout=5.0)
    audio = [pcm_tone(0.1)] * 3

    def run(n: int) -> int:
        return sum(_session(gw.url, audio) for _ in range(n))

    assert await asyncio.to_thread(run, WARMUP) == WARMUP
    await wait_for(lambda: not gw.connections, 3.0, "warm-up connections closed")
    gc.collect()
    base, base_threads = proc_stats(), thread_names()
    begin = time.perf_counter()
    ok = await asyncio.to_thread(run, SESSIONS)
    took = time.perf_counter() - begin
    assert ok == SESSIONS, f"{SESSIONS - ok} sessions failed"
    await wait_for(lambda: not gw.connections, 3.0, "connections closed")
    assert gw.shared.admission.active == 0
    gc.collect()
    # A thread pool that existed at the baseline may start its next worker (up to its
    # bound: ThreadPoolExecutor starts one when a call finds none idle, which two calls
    # overlapping by a moment do): not a leak. Any other new thread is.
    pools = {name.rpartition("_")[0] for name in base_threads if "_" in name}

    def leaked() -> list[str]:
        started = (Counter(thread_names()) - Counter(base_threads)).elements()
        return sorted(name for name in started if name.rpartition("_")[0] not in pools)

    # Threads and fds settle within a moment (a closing socket, a finishing callback).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.0
    while loop.time() < deadline:
        after, threads = proc_stats(), leaked()
        if not threads and after["fds"] <= base["fds"]:
            break
        await asyncio.sleep(0.05)
    growth = (after["rss"] - base["rss"]) / base["rss"]
    print(
        f"\nsoak: {SESSIONS} sessions in {took:.1f} s ({SESSIONS / took:.0f}/s); "
        f"threads {base['threads']}→{after['threads']}, fds {base['fds']}→{after['fds']}, "
        f"RSS {base['rss'] >> 20}→{after['rss'] >> 20} MiB ({growth:+.1%})"
    )
    assert not threads, (base, after, threads)
    assert after["fds"] <= base["fds"], (base, after)
    assert growth < 0.05, (base, after)
