"""AsyncConnection: one WebSocket plus one ClientProtocol, pumped by one reader task.

The front-end only moves bytes (design.md Part 3, example 2): frames the protocol queues
are sent in order under a lock; frames the socket delivers are fed to the protocol and
the resulting typed events are queued for ``recv()`` (and handed to an optional
``listener``, which the thread bridge uses). When the socket closes, the protocol turns a
live task into one local ``TaskFailed``, so a reader always sees the task end.

Transport errors are translated once, here: refused or rejected handshakes become
``ConnectionUnavailable`` (with the HTTP status and body, e.g. 403
``Meta:ACCESS_DENIED:The token '…' is invalid!``), connect timeouts ``ConnectionTimeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from nls.exception import ConnectionTimeout, ConnectionUnavailable, NlsError
from nls.protocol import AudioData, ClientProtocol, Command, Event, Status, TaskFailed

__all__ = ["AsyncConnection", "Listener"]

logger = logging.getLogger("nls")

Listener = Callable[["Event | AudioData | None"], None]
"""Called on the loop for every event, then once with None when the socket has closed."""

_UNSET: Any = object()
_CLOSED = None


class AsyncConnection:
    """An open NLS connection for one namespace. Use :meth:`open` to make one."""

    def __init__(
        self, websocket: ClientConnection, protocol: ClientProtocol, *, buffer_events: bool = True
    ) -> None:
        self.websocket = websocket
        self.protocol = protocol
        self.listener: Listener | None = None
        self._buffer_events = buffer_events
        """False when only the listener consumes events (the thread bridge): nothing piles up."""
        self._events: asyncio.Queue[Event | AudioData | None] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.closed = asyncio.Event()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        namespace: str,
        appkey: str,
        token: str,
        open_timeout: float | None = 10,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        context: Mapping[str, Any] | None = _UNSET,
        buffer_events: bool = True,
    ) -> AsyncConnection:
        """Connect and return a connection ready for ``start``.

        Raises:
            ConnectionUnavailable: refused, unreachable, or the handshake was rejected.
            ConnectionTimeout: the handshake took longer than ``open_timeout``.
        """
        try:
            websocket = await connect(
                url,
                additional_headers={"X-NLS-Token": token},
                open_timeout=open_timeout,
                ping_interval=ping_interval or None,
                ping_timeout=ping_timeout or None,
                compression=None,
                max_size=None,
                close_timeout=3,
            )
        except InvalidStatus as exc:
            # websockets aborts the transport; the socket is released on the loop's next
            # iteration, which a caller that exits right away would never run.
            await asyncio.sleep(0)
            response = exc.response
            body = response.body.decode("utf-8", "replace").strip() if response.body else ""
            raise ConnectionUnavailable(
                body or f"HTTP {response.status_code}",
                http_status=response.status_code,
                body=body,
            ) from exc
        except TimeoutError as exc:
            raise ConnectionTimeout(
                f"connecting to {url} timed out after {open_timeout} s"
            ) from exc
        except (OSError, InvalidHandshake, ValueError) as exc:
            raise ConnectionUnavailable(f"cannot connect to {url}: {exc}") from exc
        protocol = (
            ClientProtocol(namespace, appkey)
            if context is _UNSET
            else ClientProtocol(namespace, appkey, context=context)
        )
        return cls(websocket, protocol, buffer_events=buffer_events)

    # ---------------------------------------------------------------- intents

    async def start(self, command: Command) -> None:
        """Send the namespace's start command (new task id)."""
        self.protocol.start(command)
        await self._flush()

    async def send_audio(self, data: bytes) -> None:
        """Send audio (split into ≤ 64 KiB frames)."""
        if not self.send_audio_nowait(data):
            self.protocol.send_audio(data)
            await self._flush()

    def send_audio_nowait(self, data: bytes) -> bool:
        """Send audio at once if nothing needs waiting for; False (nothing sent) otherwise.

        Audio is the hot path: 10–50 frames per second per session. When the socket is
        open, no other send is in progress and the transport has no backlog (so the
        write-buffer limits cannot be reached), the frames go straight from the sans-I/O
        protocol through websockets' framing to the transport, skipping the coroutine
        send path (about a third of the SDK's CPU per frame). Otherwise the caller awaits
        :meth:`send_audio`, which waits for the buffer to drain like any other send.

        Raises:
            NlsError: the task does not take audio now (as :meth:`send_audio`).
        """
        ws = self.websocket
        if (
            self._send_lock.locked()
            or ws.protocol.state is not State.OPEN
            or ws.transport.get_write_buffer_size()
        ):
            return False
        self.protocol.send_audio(data)
        for frame in self.protocol.data_to_send():
            if isinstance(frame, str):
                ws.protocol.send_text(frame.encode())
            else:
                ws.protocol.send_binary(frame)
        ws.send_data()  # what websockets' own send() ends with: write to the transport
        return True

    async def control(self, command: Command) -> None:
        """Send a mid-task command (ControlTranscriber, RunSynthesis)."""
        self.protocol.control(command)
        await self._flush()

    async def stop(self) -> None:
        """Send the namespace's stop command."""
        self.protocol.stop()
        await self._flush()

    async def send_command(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = _UNSET,
    ) -> None:
        """Send any command by name (NlsCommonProto)."""
        if context is _UNSET:
            self.protocol.send_command(name, payload)
        else:
            self.protocol.send_command(name, payload, context)
        await self._flush()

    def fail(self, exc: NlsError | str, status: int = Status.CLIENT_ERROR) -> TaskFailed | None:
        """Fail the live task locally (e.g. a timeout); the TaskFailed is queued as an event."""
        if isinstance(exc, NlsError):
            status = exc.status
        event = self.protocol.fail(status, _sdk_text(exc))
        for queued in self.protocol.events_received():
            self._deliver(queued)
        return event

    # ----------------------------------------------------------------- events

    async def recv(self) -> Event | AudioData:
        """The next event. Raises ``EOFError`` once the connection has closed."""
        event = await self._events.get()
        if event is _CLOSED:
            self._events.put_nowait(_CLOSED)  # every later recv() sees the end too
            raise EOFError("connection closed")
        return event

    async def __aiter__(self) -> AsyncIterator[Event | AudioData]:
        while True:
            try:
                yield await self.recv()
            except EOFError:
                return

    async def close(self) -> None:
        """Close the socket (code 1000) and wait for the reader to finish. Idempotent."""
        await self.websocket.close()
        await asyncio.shield(self._reader)

    # ---------------------------------------------------------------- private

    async def _flush(self) -> None:
        async with self._send_lock:
            for frame in self.protocol.data_to_send():
                try:
                    await self.websocket.send(frame)
                except ConnectionClosed:
                    # The reader reports the close as the task's failure; nothing to add.
                    return

    async def _read(self) -> None:
        ws = self.websocket
        try:
            async for frame in ws:
                if isinstance(frame, str):
                    self.protocol.receive_text(frame)
                else:
                    self.protocol.receive_binary(frame)
                for event in self.protocol.events_received():
                    self._deliver(event)
        except ConnectionClosed:
            pass
        except Exception:  # a listener bug must not leave the task hanging
            logger.exception("! reader failed")
            await ws.close(1011)
        finally:
            self.protocol.receive_close(ws.close_code, ws.close_reason or "")
            for event in self.protocol.events_received():
                self._deliver(event)
            self._events.put_nowait(_CLOSED)
            self.closed.set()
            if self.listener is not None:
                self.listener(_CLOSED)

    def _deliver(self, event: Event | AudioData) -> None:
        if self._buffer_events:
            self._events.put_nowait(event)
        if self.listener is not None:
            self.listener(event)


def _sdk_text(exc: NlsError | str) -> str:
    """A TaskFailed ``status_text`` for an SDK-side failure: ``SDK:<Kind>:<message>``."""
    if isinstance(exc, str):
        return f"SDK:CLIENT_ERROR:{exc}"
    return f"SDK:{type(exc).__name__}:{exc}"
