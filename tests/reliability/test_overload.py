"""Overload: 3× the concurrent-task limit at once.

The excess sessions get TaskFailed 40000005 (namespace ``Default``) within 100 ms of
their Start; every admitted session streams its audio and completes; afterwards the
active-task gauge is back to 0 and new sessions are admitted again.
"""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.client import ClientConnection, connect

import nls
from nls.protocol import new_id
from reliability.helpers import (
    command,
    events_until_end,
    healthy_transcription,
    recv_event,
    utterance,
    wait_for,
)

LIMIT = 12


async def test_three_times_the_limit(gateway):
    gw = await gateway(max_concurrent_tasks=LIMIT, idle_timeout=5.0)
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
