"""Faults: the gateway dies, a client vanishes, an engine raises or hangs.

* gateway killed (SIGKILL) mid-stream → the drop-in SDK calls ``on_error`` and
  ``on_close`` within 1 s, and ``stop()`` returns within its timeout;
* client vanishes mid-task (TCP abort, or a half-open socket that just goes quiet) → the
  gateway frees the task within 1 s (the ``nls_active_tasks`` gauge), respectively at the
  idle timeout;
* an engine that raises → TaskFailed 50000000 for that task only, even when its segment
  was batched with another session's;
* an engine that hangs → that task fails after the runner timeout while other sessions
  keep their latency.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import threading
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import connect

import nls
from nls.protocol import new_id
from nls_gateway.tasks.base import Engines
from nls_gateway.testing import GatewayProcess, ScriptedAsr, ScriptedTts, ScriptedVad
from reliability.helpers import (
    assert_no_unexpected_errors,
    command,
    events_until_end,
    healthy_transcription,
    pcm_silence,
    pcm_tone,
    recv_event,
    utterance,
    wait_for,
)


def _active(gw: Any) -> float:
    return gw.metrics.registry.get_sample_value("nls_active_tasks") or 0.0


# ---------------------------------------------------------------- gateway dies


def test_gateway_killed_mid_stream_sdk_reports_within_1s():
    with GatewayProcess() as gateway:
        seen: dict[str, float] = {}
        errors: list[str] = []
        closed = threading.Event()

        def on_error(message: str, *args: Any) -> None:
            errors.append(message)
            seen.setdefault("error", time.monotonic())

        def on_close(*args: Any) -> None:
            seen.setdefault("close", time.monotonic())
            closed.set()

        st = nls.NlsSpeechTranscriber(
            url=gateway.url, token="t", appkey="k", on_error=on_error, on_close=on_close
        )
        assert st.start(aformat="pcm", sample_rate=16000, timeout=10)
        frame = pcm_tone(0.1)
        for _ in range(5):
            assert st.send_audio(frame)
            time.sleep(0.02)
        killed = time.monotonic()
        gateway.kill()
        assert closed.wait(2.0), "on_close did not run"
        assert seen["error"] - killed < 1.0, f"on_error after {seen['error'] - killed:.2f} s"
        assert seen["close"] - killed < 1.0, f"on_close after {seen['close'] - killed:.2f} s"
        assert seen["error"] <= seen["close"]
        failed = json.loads(errors[0])
        assert failed["header"]["name"] == "TaskFailed"
        assert failed["header"]["status"] >= 40000000
        st.send_audio(frame)  # must not raise after the failure
        begin = time.monotonic()
        assert st.stop(timeout=2) is False
        assert time.monotonic() - begin < 2.0 + 1.0
        assert len(errors) == 1


# ------------------------------------------------------------ client vanishes


async def test_client_abort_mid_stream_frees_task_within_1s(gateway):
    gw = await gateway()
    ws = await connect(gw.url)
    task = new_id()
    await ws.send(command("StartTranscription", task, payload={"format": "pcm"}))
    assert (await recv_event(ws))["header"]["name"] == "TranscriptionStarted"
    for _ in range(5):
        await ws.send(pcm_tone(0.1))
    await wait_for(lambda: _active(gw) == 1, 1.0, "task active")
    ws.transport.abort()  # no close frame: the client process died
    took = await wait_for(lambda: _active(gw) == 0, 1.0, "task freed after the client vanished")
    assert took < 1.0
    assert gw.shared.admission.active == 0
    value = gw.metrics.registry.get_sample_value(
        "nls_sessions_total", {"namespace": "SpeechTranscriber", "outcome": "client_disconnect"}
    )
    assert value == 1
    assert await healthy_transcription(gw.url) == "completed"


async def test_client_abort_during_long_synthesis_frees_task_within_1s(gateway):
    gw = await gateway(engines=Engines(tts=ScriptedTts(delay_s=0.05)))
    ws = await connect(gw.url)
    text = "这是一个很长的句子，用来测试合成。" * 40
    payload = {"text": text, "voice": "xiaoyun", "format": "pcm", "sample_rate": 16000}
    await ws.send(
        command("StartSynthesis", new_id(), namespace="SpeechLongSynthesizer", payload=payload)
    )
    assert isinstance(await asyncio.wait_for(ws.recv(), 5), bytes)  # audio is flowing
    ws.transport.abort()
    await wait_for(lambda: _active(gw) == 0, 1.0, "synthesis freed after the client vanished")


async def test_half_open_client_is_freed_by_the_idle_timeout(gateway):
    gw = await gateway(idle_timeout=0.5)
    async with connect(gw.url) as ws:
        task = new_id()
        await ws.send(command("StartTranscription", task, payload={"format": "pcm"}))
        await recv_event(ws)
        await ws.send(pcm_tone(0.1))
        # The client goes quiet without closing (its host vanished): 40000004.
        took = await wait_for(lambda: _active(gw) == 0, 1.5, "idle task freed")
        assert 0.4 < took < 1.5
        events = await events_until_end(ws)
        assert events[-1]["header"]["status"] == 40000004


# ------------------------------------------------------------- faulty engines

POISON_AMP = 0.95
"""Segments this loud make the faulty engines misbehave; healthy audio uses 0.3."""


class FaultyAsr(ScriptedAsr):
    """ScriptedAsr that raises (or hangs) on segments louder than ``POISON_AMP``."""

    def __init__(self, mode: str, hang_s: float = 3.0) -> None:
        super().__init__(texts=("好的。",))
        self.mode = mode
        self.hang_s = hang_s
        self.release = threading.Event()
        self.poisoned = threading.Event()
        self.sizes: list[int] = []

    def transcribe_batch(self, audios, options):
        self.sizes.append(len(audios))
        if any(a.size and float(np.max(np.abs(a))) > POISON_AMP - 0.05 for a in audios):
            self.poisoned.set()
            if self.mode == "raise":
                raise RuntimeError("poisoned segment")
            self.release.wait(self.hang_s)  # a hung model call (bounded, so threads end)
            raise RuntimeError("hung call finally returned")
        return super().transcribe_batch(audios, options)


def _poison_utterance() -> bytes:
    return pcm_silence(0.2) + pcm_tone(0.6, amp=POISON_AMP) + pcm_silence(1.0)


async def _transcribe(url: str, audio: bytes) -> tuple[list[dict[str, Any]], float]:
    """Send ``audio`` at once, Stop; returns the events and the Stop → end latency."""
    task = new_id()
    async with connect(url) as ws:
        await ws.send(command("StartTranscription", task, payload={"format": "pcm"}))
        assert (await recv_event(ws))["header"]["name"] == "TranscriptionStarted"
        for offset in range(0, len(audio), 3200):
            await ws.send(audio[offset : offset + 3200])
        stopped = time.perf_counter()
        await ws.send(command("StopTranscription", task))
        events = await events_until_end(ws, timeout=10)
        return events, time.perf_counter() - stopped


async def test_engine_that_raises_fails_only_its_task(gateway, caplog):
    caplog.set_level(logging.WARNING)
    asr = FaultyAsr("raise")
    # A wide batch window so the two sessions' sentences share one transcribe_batch call.
    gw = await gateway(engines=Engines(asr=asr, vad=ScriptedVad()), batch_window_ms=100)
    (bad, _), (good, _) = await asyncio.gather(
        _transcribe(gw.url, _poison_utterance()), _transcribe(gw.url, utterance())
    )
    assert bad[-1]["header"]["name"] == "TaskFailed"
    assert bad[-1]["header"]["status"] == 50000000
    names = [e["header"]["name"] for e in good]
    assert names[-1] == "TranscriptionCompleted", names
    assert any(e["header"]["name"] == "SentenceEnd" and e["payload"]["result"] for e in good)
    assert max(asr.sizes) >= 2, "the two segments were never batched together"
    await wait_for(lambda: gw.shared.admission.active == 0, 1.0, "tasks freed")
    assert_no_unexpected_errors(caplog, allowed=[r"transcription worker failed"])


async def test_engine_that_hangs_fails_after_the_timeout_others_keep_latency(gateway, caplog):
    caplog.set_level(logging.WARNING)
    asr = FaultyAsr("hang", hang_s=5.0)
    gw = await gateway(
        engines=Engines(asr=asr, vad=ScriptedVad()), engine_timeout=1.0, batch_window_ms=5
    )
    baseline = [(await _transcribe(gw.url, utterance()))[1] for _ in range(3)]
    hung = asyncio.create_task(_transcribe(gw.url, _poison_utterance()))
    await wait_for(asr.poisoned.is_set, 2.0, "poison reached the engine")
    during: list[float] = []
    for _ in range(3):
        events, latency = await _transcribe(gw.url, utterance())
        assert events[-1]["header"]["name"] == "TranscriptionCompleted"
        during.append(latency)
    events, latency = await hung
    assert events[-1]["header"]["status"] == 50000000
    assert 0.9 < latency < 3.0, f"hung task ended after {latency:.2f} s"
    # Healthy sessions keep their latency while one engine thread is stuck.
    assert statistics.median(during) < max(0.5, 3 * statistics.median(baseline)), (
        baseline,
        during,
    )
    asr.release.set()
    await wait_for(lambda: gw.shared.admission.active == 0, 1.0, "tasks freed")
    assert_no_unexpected_errors(
        caplog, allowed=[r"transcription worker failed", r"engine call .* timed out"]
    )
