"""A scripted NLS server for SDK front-end tests: real WebSockets on 127.0.0.1, no engines.

It speaks the protocol through ``nls.protocol.ServerProtocol`` and answers each namespace
with fixed, checkable content (the result text counts the audio bytes received), and it
can misbehave on request (``mode``) so every failure path of the SDK can be driven.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from nls.protocol import (
    AudioReceived,
    CommandReceived,
    RunSynthesis,
    ServerProtocol,
    StartSynthesis,
    Status,
)

GOOD_TOKEN = "good-token"


@dataclass
class FakeNls:
    """Behaviour switches and a record of what arrived."""

    mode: str = "ok"
    """ok | fail_start | silent | close_early | garbage | slow_stop"""
    delay: float = 0.0
    frames: list[str | bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    def commands(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames if isinstance(f, str)]


def _reject(connection: ServerConnection, request: Request) -> Response | None:
    token = request.headers.get("X-NLS-Token")
    if token != GOOD_TOKEN:
        body = f"Meta:ACCESS_DENIED:The token '{token}' is invalid!"
        return Response(403, "Forbidden", Headers([("Content-Type", "text/plain")]), body.encode())
    return None


async def _handle(fake: FakeNls, ws: ServerConnection) -> None:
    fake.connections += 1
    proto = ServerProtocol()
    received = 0

    async def flush() -> None:
        for frame in proto.data_to_send():
            await ws.send(frame)
        if proto.should_close:
            await ws.close()

    async for frame in ws:
        fake.frames.append(frame)
        if isinstance(frame, str):
            proto.receive_text(frame)
        else:
            proto.receive_binary(frame)
        for event in proto.events_received():
            if isinstance(event, AudioReceived):
                received += len(event.data)
                if fake.mode == "close_early":
                    await ws.close(1011, "boom")
                    return
                if proto.namespace == "SpeechRecognizer" and received == len(event.data):
                    proto.send_event("RecognitionResultChanged", {"result": "…", "duration": 0})
                if proto.namespace == "SpeechTranscriber" and received == len(event.data):
                    proto.send_event("SentenceBegin", {"index": 1, "time": 0})
            elif isinstance(event, CommandReceived):
                await _command(fake, proto, event, received)
                if fake.mode == "silent":
                    proto.data_to_send()
        await flush()


async def _command(fake: FakeNls, proto: ServerProtocol, event: CommandReceived, n: int) -> None:
    ns, name, cmd = proto.namespace, event.name, event.command
    spec = proto.spec
    assert spec is not None
    if name == spec.start:
        if fake.mode == "fail_start":
            proto.fail(Status.UNSUPPORTED_SAMPLE_RATE, "Realtime:UNSUPPORTED_SAMPLE_RATE:nope")
        elif ns in ("SpeechSynthesizer", "SpeechLongSynthesizer"):
            assert isinstance(cmd, StartSynthesis)
            if cmd.enable_subtitle:
                proto.send_event("MetaInfo", {"subtitles": [{"text": (cmd.text or "")[:1]}]})
            audio = (cmd.text or "").encode() * 1000
            proto.send_audio(audio)
            proto.send_event("SynthesisCompleted")
        elif spec.started:
            payload = {"session_id": "s" * 32} if ns != "SpeechRecognizer" else None
            proto.send_event(spec.started, payload)
            if fake.mode == "garbage":
                proto._out.append("this is not json")  # noqa: SLF001 - deliberately broken
    elif name == spec.stop:
        if fake.mode == "slow_stop":
            await asyncio.sleep(fake.delay)
        if ns == "SpeechTranscriber":
            proto.send_event(
                "SentenceEnd",
                {"index": 1, "time": 100, "begin_time": 0, "result": f"bytes={n}"},
            )
        if spec.completed:
            payload = (
                {"result": f"bytes={n}", "duration": n // 32} if ns == "SpeechRecognizer" else None
            )
            proto.send_event(spec.completed, payload)
    elif isinstance(cmd, RunSynthesis):
        proto.send_event("SentenceBegin", {"index": 1})
        proto.send_audio(cmd.text.encode())
        proto.send_event("SentenceSynthesis", {"subtitles": []})
        proto.send_event("SentenceEnd", {"subtitles": []})


@contextmanager
def running(fake: FakeNls | None = None) -> Iterator[FakeNls]:
    """Run a FakeNls on 127.0.0.1 in a background thread for the duration of the block."""
    fake = fake or FakeNls()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Server] = {}

    async def main() -> None:
        server = await serve(
            lambda ws: _handle(fake, ws),
            "127.0.0.1",
            0,
            process_request=_reject,
            compression=None,
        )
        holder["server"] = server
        fake.port = server.sockets[0].getsockname()[1]
        ready.set()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield fake
    finally:
        server = holder["server"]
        loop.call_soon_threadsafe(server.close)
        thread.join(15)
        if thread.is_alive():  # a slow close on a loaded box: stop the loop outright
            loop.call_soon_threadsafe(loop.stop)
            thread.join(15)
        loop.close()
