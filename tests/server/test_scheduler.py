"""DecodeScheduler: finals first, stale partials dropped, batches, deadlines, metrics."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from nls_gateway.engines.base import AsrOptions, AsrResult, Float32Array
from nls_gateway.exception import DecodeAbandoned, EngineError
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.scheduler import DecodeScheduler

FINAL, PARTIAL = AsrOptions(final=True), AsrOptions(final=False)


class GatedAsr:
    """Records every model call as a list of (kind, marker); the first call waits for
    ``gate`` so the test can fill the queue behind it."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[list[tuple[str, int]]] = []
        self.fail_marker: int | None = None

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        return self.transcribe_batch([audio], [options])[0]

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        pairs = zip(audios, options, strict=True)
        batch = [("final" if o.final else "partial", int(a[0])) for a, o in pairs]
        self.calls.append(batch)
        if len(self.calls) == 1:
            self.gate.wait(5)
        if any(o.abandon is not None and o.abandon() for o in options):
            raise DecodeAbandoned  # as Whisper does between its encoder and decoder
        if self.fail_marker is not None and any(m == self.fail_marker for _, m in batch):
            raise RuntimeError("bad segment")
        return [AsrResult(f"{kind}{marker}") for kind, marker in batch]


def audio(marker: int) -> Float32Array:
    return np.full(1600, marker, dtype=np.float32)


@pytest.fixture
async def pool():
    executor = concurrent.futures.ThreadPoolExecutor(2)
    yield executor
    executor.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics()


def make(pool: concurrent.futures.Executor, metrics: GatewayMetrics, **kw: Any) -> DecodeScheduler:
    async def call(op: str, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    return DecodeScheduler(call, batch_window_ms=0, metrics=metrics, **kw)


async def _blocked(scheduler: DecodeScheduler, asr: GatedAsr) -> asyncio.Task[Any]:
    """Occupy the only lane with a final of stream 'blocker' until ``asr.gate`` opens."""
    first = asyncio.create_task(scheduler.decode(asr, audio(0), FINAL, stream="blocker"))
    for _ in range(100):
        if asr.calls:
            return first
        await asyncio.sleep(0.01)
    raise AssertionError("the first decode never started")


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_finals_overtake_queued_partials(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics)
    first = await _blocked(scheduler, asr)
    partials = [
        asyncio.create_task(scheduler.decode(asr, audio(i), PARTIAL, stream=i)) for i in (1, 2)
    ]
    final = asyncio.create_task(scheduler.decode(asr, audio(3), FINAL, stream=3))
    await asyncio.sleep(0.02)
    assert scheduler.queued == (1, 2)
    assert sample(metrics, "nls_decode_queue", priority="partial") == 2
    asr.gate.set()
    assert (await final).text == "final3"
    assert [r.text for r in await asyncio.gather(*partials)] == ["partial1", "partial2"]
    await first
    assert asr.calls[1:] == [[("final", 3)], [("partial", 1), ("partial", 2)]]
    assert sample(metrics, "nls_decode_latency_seconds_count", kind="final") == 2
    assert sample(metrics, "nls_decode_wait_seconds_count", kind="partial") == 2
    assert sample(metrics, "nls_decode_rtf_count", kind="partial") == 1
    assert sample(metrics, "nls_decode_queue", priority="partial") == 0


async def test_a_superseded_partial_is_never_decoded(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics)
    first = await _blocked(scheduler, asr)
    old = asyncio.create_task(scheduler.decode(asr, audio(1), PARTIAL, stream="a"))
    await asyncio.sleep(0)
    newer = asyncio.create_task(scheduler.decode(asr, audio(2), PARTIAL, stream="a"))
    await asyncio.sleep(0)
    assert await old is None  # newer audio of the same stream replaced it
    final = asyncio.create_task(scheduler.decode(asr, audio(3), FINAL, stream="a"))
    await asyncio.sleep(0)
    assert await newer is None  # the stream's final replaced it
    asr.gate.set()
    assert (await final).text == "final3"
    await first
    assert asr.calls[1:] == [[("final", 3)]]
    assert sample(metrics, "nls_decodes_dropped_total", reason="superseded") == 2


async def test_a_queued_final_preempts_the_running_partial(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics)
    running = asyncio.create_task(scheduler.decode(asr, audio(1), PARTIAL, stream="a"))
    for _ in range(100):
        if asr.calls:
            break
        await asyncio.sleep(0.01)
    final = asyncio.create_task(scheduler.decode(asr, audio(2), FINAL, stream="b"))
    await asyncio.sleep(0.02)
    asr.gate.set()
    assert await running is None  # abandoned at its next step: the final needs the cores
    assert (await final).text == "final2"
    assert asr.calls == [[("partial", 1)], [("final", 2)]]
    assert sample(metrics, "nls_decodes_dropped_total", reason="preempted") == 1
    # Without a waiting final a partial runs to the end.
    assert (await scheduler.decode(asr, audio(3), PARTIAL, stream="a")).text == "partial3"


async def test_a_final_past_its_deadline_fails_busy(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics, final_deadline_s=0.1)
    first = await _blocked(scheduler, asr)
    late = asyncio.create_task(scheduler.decode(asr, audio(1), FINAL, stream="late"))
    stale = asyncio.create_task(scheduler.decode(asr, audio(2), PARTIAL, stream="other"))
    await asyncio.sleep(0.3)
    asr.gate.set()
    with pytest.raises(EngineError, match="Instance pool exhausted!"):
        await late
    assert await stale is None  # a partial that old is not worth showing
    assert (await first).text == "final0"
    assert asr.calls[1:] == []
    assert sample(metrics, "nls_decodes_dropped_total", reason="deadline") == 1
    assert sample(metrics, "nls_decodes_dropped_total", reason="expired") == 1
    # The scheduler keeps serving afterwards.
    assert (await scheduler.decode(asr, audio(4), FINAL, stream="next")).text == "final4"


async def test_a_streams_own_backlog_of_finals_is_not_overload(pool, metrics) -> None:
    # A client sending a recording faster than real time queues its sentences behind its
    # own running final: each waits from when the one before it was answered.
    asr, scheduler = GatedAsr(), make(pool, metrics, final_deadline_s=0.1)
    first = await _blocked(scheduler, asr)
    own = [
        asyncio.create_task(scheduler.decode(asr, audio(i), FINAL, stream="blocker"))
        for i in (1, 2)
    ]
    other = asyncio.create_task(scheduler.decode(asr, audio(3), FINAL, stream="other"))
    await asyncio.sleep(0.3)
    asr.gate.set()
    assert (await first).text == "final0"
    assert [(await t).text for t in own] == ["final1", "final2"]
    with pytest.raises(EngineError, match="Instance pool exhausted!"):
        await other  # another stream's final waited past the deadline: overload
    assert sample(metrics, "nls_decodes_dropped_total", reason="deadline") == 1


async def test_ready_segments_go_as_one_batch_and_errors_stay_with_theirs(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics, max_batch=8)
    first = await _blocked(scheduler, asr)
    asr.fail_marker = 2
    finals = [
        asyncio.create_task(scheduler.decode(asr, audio(i), FINAL, stream=i)) for i in (1, 2, 3)
    ]
    await asyncio.sleep(0.02)
    asr.gate.set()
    results = await asyncio.gather(*finals, return_exceptions=True)
    await first
    assert [getattr(r, "text", None) for r in results] == ["final1", None, "final3"]
    assert isinstance(results[1], RuntimeError)
    # One batch of three, then (after its error) each segment alone.
    assert [len(c) for c in asr.calls[1:]] == [3, 1, 1, 1]
    assert sample(metrics, "nls_asr_batch_size_count") == 2


async def test_a_cancelled_decode_leaves_the_queue(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics)
    first = await _blocked(scheduler, asr)
    gone = asyncio.create_task(scheduler.decode(asr, audio(1), FINAL, stream="gone"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert scheduler.queued == (0, 0)
    asr.gate.set()
    await first
    assert asr.calls[1:] == []


async def test_partial_backlog_counts_queued_partials(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics, max_batch=2)
    first = await _blocked(scheduler, asr)
    assert scheduler.partial_backlog == 0
    tasks = [
        asyncio.create_task(scheduler.decode(asr, audio(i), PARTIAL, stream=i)) for i in range(4)
    ]
    await asyncio.sleep(0)
    assert scheduler.partial_backlog == 2.0
    asr.gate.set()
    await asyncio.gather(first, *tasks)
    scheduler.close()
    with pytest.raises(EngineError, match="shutting down"):
        await scheduler.decode(asr, audio(9), FINAL, stream="late")


async def test_partials_leave_the_lane_free_for_finals(pool, metrics) -> None:
    asr, scheduler = GatedAsr(), make(pool, metrics, partial_share=0.5)
    first = asyncio.create_task(scheduler.decode(asr, audio(1), PARTIAL, stream=1))
    await asyncio.sleep(0.2)  # the partial batch takes ≥ 0.2 s: partials then rest as long
    asr.gate.set()
    await first
    second = asyncio.create_task(scheduler.decode(asr, audio(2), PARTIAL, stream=2))
    final = asyncio.create_task(scheduler.decode(asr, audio(3), FINAL, stream=3))
    assert (await final).text == "final3"  # a final does not rest
    assert not second.done() and scheduler.queued == (0, 1)
    assert (await asyncio.wait_for(second, 2)).text == "partial2"
    assert asr.calls == [[("partial", 1)], [("final", 3)], [("partial", 2)]]
