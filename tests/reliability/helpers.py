"""Shared pieces of the reliability suite: a raw NLS client, tone audio, log checks.

The raw client speaks the wire protocol with ``websockets`` directly, so tests can send
exactly the malformed frames they mean to, and a "healthy session" helper checks that a
gateway still serves correct traffic while (or after) it is being abused.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from nls.protocol import new_id, serialize_command

START = {
    "SpeechRecognizer": "StartRecognition",
    "SpeechTranscriber": "StartTranscription",
    "SpeechSynthesizer": "StartSynthesis",
    "SpeechLongSynthesizer": "StartSynthesis",
    "FlowingSpeechSynthesizer": "StartSynthesis",
}
STOP = {
    "SpeechRecognizer": "StopRecognition",
    "SpeechTranscriber": "StopTranscription",
    "FlowingSpeechSynthesizer": "StopSynthesis",
}


def pcm_tone(seconds: float, *, rate: int = 16000, freq: float = 440.0, amp: float = 0.3) -> bytes:
    """A sine tone as 16-bit little-endian mono PCM (speech to the scripted VAD)."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def pcm_silence(seconds: float, *, rate: int = 16000) -> bytes:
    return b"\0\0" * int(seconds * rate)


def utterance(rate: int = 16000) -> bytes:
    """0.2 s silence, 0.6 s tone, 1.0 s silence: one sentence for the scripted VAD."""
    return pcm_silence(0.2, rate=rate) + pcm_tone(0.6, rate=rate) + pcm_silence(1.0, rate=rate)


def command(
    name: str,
    task_id: str,
    *,
    namespace: str = "SpeechTranscriber",
    appkey: str = "k",
    payload: dict[str, Any] | None = None,
    message_id: str | None = None,
) -> str:
    return serialize_command(
        namespace=namespace,
        name=name,
        task_id=task_id,
        message_id=message_id or new_id(),
        appkey=appkey,
        payload=payload,
    )


async def recv_event(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next JSON event (binary frames are skipped)."""
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(message, str):
            event: dict[str, Any] = json.loads(message)
            return event


async def events_until_end(ws: ClientConnection, timeout: float = 5.0) -> list[dict[str, Any]]:
    """JSON events until ``*Completed`` / ``TaskFailed`` or the socket closes."""
    events: list[dict[str, Any]] = []
    try:
        while True:
            event = await recv_event(ws, timeout)
            events.append(event)
            name = event["header"]["name"]
            if name == "TaskFailed" or name.endswith("Completed"):
                return events
    except ConnectionClosed:
        return events


async def healthy_transcription(url: str, *, frames_ms: int = 100, timeout: float = 10.0) -> str:
    """Run one correct SpeechTranscriber task; returns ``"completed"`` or what went wrong."""
    task = new_id()
    audio = utterance()
    step = 32 * frames_ms
    try:
        async with connect(url, open_timeout=timeout) as ws:
            payload = {"format": "pcm", "sample_rate": 16000, "enable_intermediate_result": True}
            await ws.send(command("StartTranscription", task, payload=payload))
            started = await recv_event(ws, timeout)
            if started["header"]["name"] != "TranscriptionStarted":
                return f"start: {started['header']}"
            for offset in range(0, len(audio), step):
                await ws.send(audio[offset : offset + step])
            await ws.send(command("StopTranscription", task))
            names = []
            while True:
                event = await recv_event(ws, timeout)
                names.append(event["header"]["name"])
                if names[-1] == "TaskFailed":
                    return f"failed: {event['header']}"
                if names[-1] == "TranscriptionCompleted":
                    break
            if "SentenceEnd" not in names:
                return f"no SentenceEnd in {names}"
            return "completed"
    except (ConnectionClosed, OSError, TimeoutError) as exc:
        return f"transport: {exc!r}"


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` every 10 ms; returns the seconds it took, fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    begin = loop.time()
    while not predicate():
        if loop.time() - begin > timeout:
            pytest.fail(f"not reached within {timeout} s: {what}")
        await asyncio.sleep(0.01)
    return loop.time() - begin


def assert_no_unexpected_errors(
    caplog: pytest.LogCaptureFixture, allowed: Iterable[str] = ()
) -> None:
    """Fail on ERROR records (and any record with a traceback) not matching ``allowed``."""
    patterns = [re.compile(p) for p in allowed]
    bad = [
        r
        for r in caplog.records
        if (r.levelno >= logging.ERROR or r.exc_info)
        and not any(p.search(r.getMessage()) for p in patterns)
    ]
    if bad:
        lines = [f"{r.name} {r.levelname}: {r.getMessage()}" for r in bad]
        if bad[0].exc_info:
            import traceback

            lines.append("".join(traceback.format_exception(*bad[0].exc_info)))
        pytest.fail("unexpected error logs:\n" + "\n".join(lines))


def thread_names() -> list[str]:
    """Every thread of this process by name: Python's own, and the kernel's ``comm`` of
    native ones (ONNX Runtime, CTranslate2 pools), so a leak names its thread."""
    python = {t.native_id: t.name for t in threading.enumerate()}
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm:
                native = comm.read().strip()
        except FileNotFoundError:  # it ended meanwhile
            continue
        names.append(python.get(int(tid), native))
    return sorted(names)


def proc_stats() -> dict[str, int]:
    """Threads, open fds and RSS (bytes) of this process (Linux /proc)."""
    threads = rss = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return {"threads": threads, "fds": len(os.listdir("/proc/self/fd")), "rss": rss}
