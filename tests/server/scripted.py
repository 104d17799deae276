"""A tiny scripted SpeechRecognizer handler and a raw NLS client for the server tests.

The handler's behaviour is chosen by the start payload's ``script`` key, so one handler
class covers the pump's paths: ``ok`` (Completed on Stop), ``task_error`` (TaskError in
on_start), ``crash`` (RuntimeError in on_start), ``hang`` (on_stop never returns),
``bg_complete`` (a background task sends Completed without Stop), ``bg_fail`` (a
background task fails the task, then tries to send more), ``slow_stop`` (Stop
takes ``delay`` seconds), ``slow_audio`` (the first audio call takes ``delay`` seconds).
Completed reports the audio calls' sizes and a digest of the bytes in arrival order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from nls.protocol import new_id, serialize_command
from nls_gateway.tasks.base import TaskError, TaskHandler

CLOSED: list[str] = []
"""Task ids whose handler.close() ran (tests read it)."""


class ScriptedRecognizer(TaskHandler):
    namespaces = ("SpeechRecognizer",)

    def __init__(self, ctx: Any, command: Any) -> None:
        super().__init__(ctx, command)
        self.script = command.extra.get("script", "ok")
        self.received = 0
        self.calls: list[int] = []
        self.digest = hashlib.sha256()
        self._bg: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        if self.script == "task_error":
            raise TaskError(40000003, "Gateway:PARAMETER_INVALID:scripted bad start")
        if self.script == "crash":
            raise RuntimeError("scripted crash")
        await self.ctx.send_event("RecognitionStarted")
        if self.script == "bg_complete":
            self._bg = asyncio.create_task(self._complete_soon())
        if self.script == "bg_fail":
            self._bg = asyncio.create_task(self._fail_soon())

    async def on_audio(self, data: bytes) -> None:
        if self.script == "slow_audio" and not self.calls:
            await asyncio.sleep(float(self.command.extra.get("delay", 0.2)))
        self.received += len(data)
        self.calls.append(len(data))
        self.digest.update(data)

    async def on_stop(self) -> None:
        if self.script == "hang":
            await asyncio.Event().wait()
        if self.script == "slow_stop":
            await asyncio.sleep(float(self.command.extra.get("delay", 0.5)))
        await self.ctx.send_event(
            "RecognitionCompleted",
            {
                "result": f"{self.received} bytes",
                "duration": 0,
                "calls": self.calls,
                "sha256": self.digest.hexdigest(),
            },
        )

    async def _complete_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.ctx.send_event("RecognitionCompleted", {"result": "auto", "duration": 0})

    async def _fail_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.ctx.fail(41010104, "Realtime:TOO_LONG_SPEECH:scripted")
        await self.ctx.send_event("RecognitionResultChanged", {"result": "dropped"})

    async def close(self) -> None:
        if self._bg is not None:
            self._bg.cancel()
        CLOSED.append(self.ctx.task_id)


HANDLERS = {"SpeechRecognizer": ScriptedRecognizer}


def command(
    name: str,
    task_id: str,
    *,
    namespace: str = "SpeechRecognizer",
    appkey: str = "k",
    payload: dict[str, Any] | None = None,
) -> str:
    return serialize_command(
        namespace=namespace,
        name=name,
        task_id=task_id,
        message_id=new_id(),
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


async def start(ws: ClientConnection, task_id: str, **payload: Any) -> dict[str, Any]:
    await ws.send(command("StartRecognition", task_id, payload={"format": "pcm", **payload}))
    return await recv_event(ws)
