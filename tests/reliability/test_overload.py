"""Overload: 3× the live-stream budget at once.

The excess sessions get TaskFailed 40000005 (namespace ``Default``) within 100 ms of
their Start; every admitted session streams its audio and completes; afterwards the
active-task gauge is back to 0 and new sessions are admitted again.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

import nls
from evaldata import load_wav
from nls.protocol import new_id
from reliability.helpers import (
    command,
    events_until_end,
    healthy_transcription,
    pcm_silence,
    recv_event,
    utterance,
    wait_for,
)

LIMIT = 12


async def test_three_times_the_limit(gateway):
    gw = await gateway(max_live_streams=LIMIT, idle_timeout=5.0)
    sockets: list[ClientConnection] = [await connect(gw.url) for _ in range(3 * LIMIT)]
    tasks = [new_id() for _ in sockets]
    audio = utterance()

    async def session(ws: ClientConnection, task: str) -> tuple[str, float, int | None]:
        sent = time.perf_counter()
        await ws.send(command("StartTranscription", task, payload={"format": "pcm"}))
        first = await recv_event(ws)
        answered = time.perf_counter() - sent
        header = first["header"]
        if header["name"] == "TaskFailed":
            return "rejected", answered, header["status"]
        assert header["name"] == "TranscriptionStarted"
        for offset in range(0, len(audio), 3200):
            await ws.send(audio[offset : offset + 3200])
            await asyncio.sleep(0.01)
        await ws.send(command("StopTranscription", task))
        events = await events_until_end(ws, timeout=10)
        return events[-1]["header"]["name"], answered, None

    try:
        results = await asyncio.gather(
            *(session(ws, t) for ws, t in zip(sockets, tasks, strict=True))
        )
    finally:
        for ws in sockets:
            await ws.close()
    rejected = [r for r in results if r[0] == "rejected"]
    admitted = [r for r in results if r[0] != "rejected"]
    assert len(admitted) == LIMIT
    assert len(rejected) == 2 * LIMIT
    assert {r[2] for r in rejected} == {40000005}
    slowest = max(r[1] for r in rejected)
    assert slowest < 0.1, f"a rejection took {slowest * 1000:.0f} ms"
    assert {r[0] for r in admitted} == {"TranscriptionCompleted"}
    await wait_for(lambda: gw.shared.admission.active == 0, 1.0, "all tasks released")
    assert await healthy_transcription(gw.url) == "completed"


def test_drop_in_sdk_reports_40000005_to_on_error(gateway_process):
    # One admitted session holds the only slot; the next one's start() fails with
    # on_error(40000005) and returns False at once.
    url = gateway_process
    errors: list[str] = []
    first = nls.NlsSpeechTranscriber(url=url, token="t", appkey="k")
    second = nls.NlsSpeechTranscriber(
        url=url, token="t", appkey="k", on_error=lambda msg, *a: errors.append(msg)
    )
    assert first.start(timeout=5)
    try:
        begin = time.perf_counter()
        assert second.start(timeout=5) is False
        assert time.perf_counter() - begin < 1.0
        assert '"status": 40000005' in errors[0] or '"status":40000005' in errors[0]
    finally:
        first.shutdown()


async def test_real_engines_serve_their_capacity_and_refuse_the_rest(gateway):
    # Default limits, real Whisper/Silero: a flood of twice the derived stream budget of
    # live 1×-paced speech with partials. The budget's worth are served (each gets its
    # sentence), the rest are refused at once, and the gateway is idle afterwards.
    gw = await gateway(engines="real", idle_timeout=10.0)
    budget = gw.shared.admission.capacity
    speech = (np.clip(load_wav("zh_dev_07_paddlespeech_zh.wav"), -1, 1) * 32767).astype("<i2")
    audio = speech.tobytes() + pcm_silence(1.0)
    payload = {"format": "pcm", "enable_intermediate_result": True}

    async def session() -> tuple[str, float, list[dict[str, Any]]]:
        async with connect(gw.url) as ws:
            task = new_id()
            sent = time.perf_counter()
            await ws.send(command("StartTranscription", task, payload=payload))
            first = await recv_event(ws, timeout=10)
            answered = time.perf_counter() - sent
            if first["header"]["name"] == "TaskFailed":
                return str(first["header"]["status"]), answered, []
            started = time.perf_counter()
            for k, offset in enumerate(range(0, len(audio), 3200)):
                await asyncio.sleep(max(0.0, started + k * 0.1 - time.perf_counter()))
                await ws.send(audio[offset : offset + 3200])
            await ws.send(command("StopTranscription", task))
            events = await events_until_end(ws, timeout=15)
            return events[-1]["header"]["name"], answered, events

    results = await asyncio.gather(*(session() for _ in range(2 * budget)))
    refused = [r for r in results if r[0] == "40000005"]
    served = [r for r in results if r[0] == "TranscriptionCompleted"]
    assert (len(served), len(refused)) == (budget, budget), [r[0] for r in results]
    assert max(r[1] for r in refused) < 0.1
    for _, _, events in served:
        texts = [e["payload"]["result"] for e in events if e["header"]["name"] == "SentenceEnd"]
        assert texts and all(texts)
    await wait_for(lambda: gw.shared.admission.active == 0, 2.0, "all tasks released")
