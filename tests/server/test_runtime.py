"""EngineRunner: decodes through the scheduler, the waiting bound, timeouts, metrics."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from nls_gateway.admission import Admission, AdmissionPolicy
from nls_gateway.engines.base import AsrOptions
from nls_gateway.exception import EngineError
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.runtime import EngineRunner
from nls_gateway.testing import ScriptedAsr


@pytest.fixture
def metrics():
    return GatewayMetrics()


async def test_concurrent_segments_share_one_batch(metrics):
    asr = ScriptedAsr(["a", "b", "c", "d"])
    runner = EngineRunner(batch_window_ms=20, max_batch=8, metrics=metrics)
    audio = np.full(1600, 0.1, dtype=np.float32)
    results = await asyncio.gather(
        *(runner.decode(asr, audio, AsrOptions(), stream=i) for i in range(4))
    )
    runner.close()
    assert [r.text for r in results] == ["a", "b", "c", "d"]
    assert asr.calls == [4]
    assert metrics.registry.get_sample_value("nls_asr_batch_size_sum") == 4
    assert runner.pending == 0


async def test_full_batch_goes_at_once(metrics):
    asr = ScriptedAsr(["x"])
    runner = EngineRunner(batch_window_ms=10_000, max_batch=2, metrics=metrics)
    audio = np.full(160, 0.1, dtype=np.float32)
    results = await asyncio.wait_for(
        asyncio.gather(*(runner.decode(asr, audio, AsrOptions(), stream=i) for i in range(2))), 2
    )
    runner.close()
    assert [r.text for r in results] == ["x", "x"]
    assert asr.calls == [2]


async def test_admission_control_rejects_beyond_max_pending(metrics):
    gate = threading.Event()
    admission = Admission(AdmissionPolicy(max_waiting_engine_calls=0), metrics)
    runner = EngineRunner(max_pending=2, admission=admission, threads=2, metrics=metrics)
    blocked = [asyncio.create_task(runner.run(gate.wait, 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(EngineError, match="Instance pool exhausted"):
        await runner.run(lambda: 1)
    gate.set()
    assert await asyncio.gather(*blocked) == [True, True]
    assert await runner.run(lambda: 7) == 7
    runner.close()
    assert metrics.registry.get_sample_value("nls_engine_errors_total", {"reason": "busy"}) == 1


async def test_hung_engine_call_times_out_without_blocking_others(metrics):
    gate = threading.Event()
    runner = EngineRunner(timeout=0.2, threads=2, metrics=metrics)
    hung = asyncio.create_task(runner.run(gate.wait, 10))
    assert await runner.run(lambda: "fine") == "fine"
    with pytest.raises(EngineError, match="timed out"):
        await hung
    gate.set()
    runner.close()
    count = metrics.registry.get_sample_value("nls_engine_latency_seconds_count", {"op": "wait"})
    assert count == 1


async def test_engine_exceptions_reach_every_segment_of_the_batch():
    class Broken(ScriptedAsr):
        def transcribe_batch(self, audios, options):
            raise RuntimeError("model exploded")

    runner = EngineRunner(batch_window_ms=20)
    audio = np.zeros(10, dtype=np.float32)
    broken = Broken()
    results = await asyncio.gather(
        *(runner.decode(broken, audio, AsrOptions(), stream=i) for i in range(3)),
        return_exceptions=True,
    )
    runner.close()
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_calls_beyond_the_slots_wait_their_turn(metrics):
    gate = threading.Event()
    admission = Admission(AdmissionPolicy(max_waiting_engine_calls=4), metrics)
    runner = EngineRunner(max_pending=1, admission=admission, threads=2, metrics=metrics)
    first = asyncio.create_task(runner.run(gate.wait, 5))
    second = asyncio.create_task(runner.run(lambda: "second"))
    await asyncio.sleep(0.05)
    assert runner.waiting == 1 and not second.done()
    gate.set()
    assert await first is True
    assert await second == "second"
    runner.close()


async def test_a_decode_is_not_queued_behind_generic_calls(metrics):
    # Both executor threads are busy (ingest, synthesis): a final still runs at once.
    gate = threading.Event()
    runner = EngineRunner(threads=2, batch_window_ms=0, metrics=metrics)
    blocked = [asyncio.create_task(runner.run(gate.wait, 5)) for _ in range(2)]
    await asyncio.sleep(0.05)
    result = await asyncio.wait_for(
        runner.decode(ScriptedAsr(["ok"]), np.ones(160, np.float32), AsrOptions(), stream=1), 2
    )
    assert result is not None and result.text == "ok"
    gate.set()
    await asyncio.gather(*blocked)
    runner.close()
