"""The connection pump: one WebSocket ↔ one ``ServerProtocol`` ↔ one task handler at a time.

Theory of operation
-------------------
Each connection runs three asyncio tasks:

* the **reader** moves client frames from the WebSocket into a bounded inbox (at most
  ``_MAX_INBOX`` frames; websockets' own flow control pushes back beyond that);
* the **consumer** is the only caller of the protocol's input side and of the handler:
  it feeds frames to ``ServerProtocol`` and calls ``on_start`` / ``on_audio`` /
  ``on_command`` / ``on_stop`` in order, never concurrently (one consumer per connection);
  when many audio frames wait in the inbox they go to ``on_audio`` joined, in one call;
* the **idle watcher** posts an ``_IDLE`` marker when neither the client nor the task has
  shown life for ``idle_timeout`` seconds (TaskFailed 40000004, §2.4).

Handlers' background work reaches the socket through :class:`_Context`, whose sends are
serialized by one lock, so frames keep the order in which the protocol queued them. A
connection ends when the consumer returns (after a TaskFailed the gateway closes the
socket itself, §2.7 / §14 item 8) or when the reader sees the client vanish (then the
consumer is cancelled at once and the task is freed). ``run``'s ``finally`` is the single
place that releases the task's admission slot, closes the handler and counts the outcome.

It must not know any namespace's semantics (that is ``nls_gateway.tasks``) nor parse
JSON (that is ``nls.protocol``); nothing here is global except what ``Shared`` carries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from nls.protocol import AudioReceived, CommandReceived, ServerProtocol, Status, TaskState
from nls_gateway.admission import Admission
from nls_gateway.auth import Credentials
from nls_gateway.exception import EngineError
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.tasks.base import (
    Engines,
    Limits,
    Project,
    Runner,
    TaskError,
    TaskHandler,
    server_error_text,
)

__all__ = ["Connection", "Shared"]

logger = logging.getLogger(__name__)

_MAX_INBOX = 32
"""Client frames read ahead of the consumer; beyond this websockets stops reading."""
_JOIN_BACKLOG = 8
"""Queued items from which waiting audio frames are joined into one handler call."""

_SERVER_ERROR_TEXT = Status.SERVER_ERROR.text.format("Server error!")
_SHUTDOWN_TEXT = Status.SERVER_ERROR.text.format("Server is shutting down!")


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_IDLE = _Marker("IDLE")
"""Idle watcher: the idle deadline passed (the consumer re-checks it)."""
_WAKE = _Marker("WAKE")
"""A handler's background work completed the task: close the handler now."""
_GONE = _Marker("GONE")
"""The reader saw the socket close: the consumer ends at its next look at the inbox,
even if an awaited library swallowed the cancellation meant to end it."""


@dataclass(eq=False)
class Shared:
    """What every connection of one gateway shares: engines, limits, auth, metrics."""

    credentials: Credentials
    engines: Engines
    runner: Runner
    metrics: GatewayMetrics
    handlers: Mapping[str, type[TaskHandler]]
    admission: Admission
    idle_timeout: float = 10.0
    close_timeout: float = 3.0
    limits: Limits = field(default_factory=Limits)
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """``vocabulary_id`` → hot words (the gateway config's ``[vocabularies]``)."""


class _Context:
    """The :class:`~nls_gateway.tasks.base.TaskContext` of one task."""

    def __init__(self, conn: Connection, project: Project, command: Any) -> None:
        self._conn = conn
        self.task_id = conn.protocol.task_id
        self.namespace = conn.protocol.namespace
        self.project = project
        self.engines = conn.shared.engines
        self.runner = conn.shared.runner
        self.limits = conn.shared.limits
        self.live = True
        fmt = getattr(command, "format", None)
        rate = getattr(command, "sample_rate", None)
        # Seconds are countable only for 16-bit PCM (a WAV header's 44 bytes are noise).
        self.bytes_per_second = 2 * rate if fmt in ("pcm", "wav") and isinstance(rate, int) else 0

    async def send_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        conn = self._conn
        async with conn.send_lock:
            if not self._current():
                return  # the task already ended (failed or client gone): drop late output
            conn.protocol.send_event(name, payload)
            await conn.flush_locked()
        conn.touch()
        if conn.protocol.state is TaskState.COMPLETED:
            conn.wake()

    async def send_audio(self, data: bytes) -> None:
        conn = self._conn
        async with conn.send_lock:
            if not self._current():
                return
            conn.protocol.send_audio(data)
            await conn.flush_locked()
        conn.touch()
        metrics = conn.shared.metrics
        metrics.audio_out_bytes.labels(self.namespace).inc(len(data))
        if self.bytes_per_second:
            metrics.audio_out_seconds.labels(self.namespace).inc(len(data) / self.bytes_per_second)

    async def fail(self, status: int, status_text: str) -> None:
        if not self._current():
            return
        outcome = "server_error" if status >= 50000000 else "failed"
        await self._conn.fail(status, status_text, outcome=outcome)
        self._conn.stop_consumer()

    def _current(self) -> bool:
        conn = self._conn
        return self.live and conn.ctx is self and not conn.protocol.should_close


class Connection:
    """Serves one WebSocket until it closes. Create one per connection and ``await run()``."""

    def __init__(self, websocket: ServerConnection, shared: Shared) -> None:
        self.ws = websocket
        self.shared = shared
        self.protocol = ServerProtocol(namespaces=tuple(shared.handlers))
        self.handler: TaskHandler | None = None
        self.ctx: _Context | None = None
        self.send_lock = asyncio.Lock()
        self.draining = False
        """Shutdown: finish the running task, then close instead of awaiting another Start."""
        self._loop = asyncio.get_running_loop()
        self._inbox: asyncio.Queue[str | bytes | _Marker] = asyncio.Queue()
        self._room = asyncio.Semaphore(_MAX_INBOX)
        self._busy = False
        self._last_activity = self._loop.time()
        self._outcome: str | None = None
        self._woken = False
        self._consumer: asyncio.Task[None] | None = None
        address = websocket.remote_address
        self._peer = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else "?"

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        """Pump frames until the connection ends; always frees the task and the socket."""
        metrics = self.shared.metrics
        metrics.active_connections.inc()
        reader = asyncio.create_task(self._read())
        watcher = asyncio.create_task(self._watch_idle())
        consumer = self._consumer = asyncio.create_task(self._consume())
        if self.shared.admission.draining:
            self.begin_drain()  # its handshake passed just before the drain began
        try:
            await asyncio.wait({reader, consumer}, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                # Client vanished (or closed) with the consumer possibly inside a handler
                # call: cancel it now so the task is freed at once (40010004 in the cloud).
                self._outcome = self._outcome or "client_disconnect"
                self._inbox.put_nowait(_GONE)
                consumer.cancel()
            (result,) = await asyncio.gather(consumer, return_exceptions=True)
            if isinstance(result, Exception):
                # A bug in the pump itself: say so, and end the task with 50000000
                # instead of closing the socket silently.
                logger.error("! %s connection pump failed", self._peer, exc_info=result)
                await self.fail(Status.SERVER_ERROR, _SERVER_ERROR_TEXT, outcome="server_error")
        finally:
            reader.cancel()
            watcher.cancel()
            await self._end_task(self._outcome or "client_disconnect")
            await self._close()
            metrics.active_connections.dec()

    def stop_consumer(self) -> None:
        """End the pump soon (after a TaskFailed from background work, or at shutdown)."""
        consumer = self._consumer
        if consumer is None or consumer.done():
            return
        if consumer is asyncio.current_task():
            return  # a handler failed its own task: the consumer sees should_close next
        consumer.cancel()

    async def abort_for_shutdown(self) -> None:
        """Grace period over: TaskFailed 50000000 for a running task, then close."""
        if self.ctx is not None:
            await self.fail(Status.SERVER_ERROR, _SHUTDOWN_TEXT, outcome="shutdown")
        self.stop_consumer()

    def begin_drain(self) -> None:
        """Shutdown started: close now if no task runs, else after it ends."""
        self.draining = True
        if self.ctx is None:
            self.stop_consumer()

    # ----------------------------------------------------- used by the context

    def touch(self) -> None:
        """The task showed life (client data or our own output): restart the idle clock."""
        self._last_activity = self._loop.time()

    def wake(self) -> None:
        """Ask the consumer to look at the task's state (completed in the background)."""
        if not self._woken:
            self._woken = True
            self._inbox.put_nowait(_WAKE)

    async def flush_locked(self) -> None:
        """Send what the protocol queued; the caller holds ``send_lock``."""
        for frame in self.protocol.data_to_send():
            try:
                await self.ws.send(frame)
            except ConnectionClosed:
                # The reader sees the same closure and ends the connection; output for a
                # vanished client is dropped.
                return

    async def fail(self, status: int, text: str, *, outcome: str, gateway: bool = False) -> None:
        """Send TaskFailed for the current task (once); the connection then closes."""
        async with self.send_lock:
            if self.protocol.should_close:
                return
            self.protocol.fail(status, text, gateway=gateway)
            self._outcome = outcome
            await self.flush_locked()

    # ------------------------------------------------------------------ private

    async def _read(self) -> None:
        try:
            while True:
                await self._room.acquire()
                message = await self.ws.recv()
                self._inbox.put_nowait(message)
        except ConnectionClosed:
            return

    async def _consume(self) -> None:
        carried: str | _Marker | None = None  # met while batching audio: handled next
        while True:
            if carried is None:
                item = await self._inbox.get()
            else:
                item, carried = carried, None
            if item is _GONE:
                return
            if item is _IDLE:
                if self._idle_expired():
                    text = Status.IDLE_TIMEOUT.text.format(self.protocol.last_directive)
                    # TaskFailed 40000004, namespace Default (§2.4, §9).
                    await self.fail(Status.IDLE_TIMEOUT, text, outcome="idle_timeout", gateway=True)
                    return
                continue
            if item is _WAKE:
                self._woken = False
                if await self._after_completion():
                    return
                continue
            assert isinstance(item, (str, bytes))
            self._room.release()
            self.touch()
            if isinstance(item, str):
                self.protocol.receive_text(item)
            else:
                self.protocol.receive_binary(item)
                carried = self._receive_queued_audio()
            for event in _join_audio(self.protocol.events_received()):
                await self._dispatch(event)
                if self.protocol.should_close:
                    break
            async with self.send_lock:
                await self.flush_locked()
            if self.protocol.should_close:
                self._outcome = self._outcome or "failed"
                return
            if await self._after_completion():
                return

    def _receive_queued_audio(self) -> str | _Marker | None:
        """Feed the protocol the audio frames already waiting behind the current one,
        when the backlog is long (``_JOIN_BACKLOG`` items or more).

        Under overload the inbox fills with one client's frames; handing them to the
        handler together costs one engine-executor hop for the backlog instead of one per
        frame, so the gateway catches up instead of falling further behind. Decoders take
        byte streams, so joined frames decode exactly as separate ones would. A short
        backlog (a live stream waiting out one decode) is left frame by frame: measured,
        joining it delayed a single live stream's SentenceEnd p95 by ~150 ms. Returns the
        first non-audio item taken (to be handled next), or None.
        """
        if self._inbox.qsize() < _JOIN_BACKLOG:
            return None
        while not self._inbox.empty() and not self.protocol.should_close:
            item = self._inbox.get_nowait()
            if not isinstance(item, bytes):
                return item
            self._room.release()
            self.protocol.receive_binary(item)
        return None

    async def _dispatch(self, event: CommandReceived | AudioReceived) -> None:
        if isinstance(event, AudioReceived):
            ctx, handler = self.ctx, self.handler
            if handler is None or ctx is None:
                return
            metrics = self.shared.metrics
            metrics.audio_in_bytes.labels(ctx.namespace).inc(len(event.data))
            if ctx.bytes_per_second:
                metrics.audio_in_seconds.labels(ctx.namespace).inc(
                    len(event.data) / ctx.bytes_per_second
                )
            await self._call(handler.on_audio(event.data))
            return
        spec = self.protocol.spec
        if spec is not None and event.name == spec.start:
            await self._start(event)
            return
        handler = self.handler
        if handler is None:
            return
        if spec is not None and event.name == spec.stop:
            await self._call(handler.on_stop())
        else:
            await self._call(handler.on_command(event.command))

    async def _start(self, event: CommandReceived) -> None:
        await self._end_task("completed")  # a finished previous task on this socket (§2.6)
        shared = self.shared
        namespace = event.header.namespace
        appkey = event.header.appkey
        configured = shared.credentials.project_for(appkey)
        if configured is None and not shared.credentials.appkeys:
            # No appkeys configured (only tokens/AccessKeys): any appkey selects the
            # default project; configuring appkeys turns the 40020105 check on.
            configured = Project()
        if configured is None:
            shared.metrics.task_ended(namespace, "rejected")
            await self.fail(
                Status.APPKEY_NOT_EXIST, Status.APPKEY_NOT_EXIST.text, outcome="rejected"
            )
            return
        if shared.admission.draining:
            shared.metrics.task_ended(namespace, "rejected")
            await self.fail(Status.SERVER_ERROR, _SHUTDOWN_TEXT, outcome="rejected")
            return
        if not shared.admission.try_admit(namespace):
            shared.metrics.task_ended(namespace, "rejected")
            await self.fail(
                Status.TOO_MANY_REQUESTS,
                Status.TOO_MANY_REQUESTS.text,
                outcome="rejected",
                gateway=True,  # the cloud answers quota breaches in namespace Default (§9)
            )
            return
        project = dataclasses.replace(
            configured, appkey=appkey or "", vocabularies=shared.vocabularies
        )
        ctx = _Context(self, project, event.command)
        self.ctx = ctx
        try:
            self.handler = shared.handlers[namespace](ctx, event.command)
        except Exception:
            logger.exception("! %s cannot create %s handler", self._peer, namespace)
            await self.fail(Status.SERVER_ERROR, _SERVER_ERROR_TEXT, outcome="server_error")
            return
        await self._call(self.handler.on_start())

    async def _call(self, step: Any) -> None:
        """Await one handler method; turn its errors into one TaskFailed for this task."""
        self._busy = True
        try:
            await step
        except TaskError as exc:
            await self.fail(exc.status, exc.status_text, outcome="failed")
        except EngineError as exc:
            logger.error("! %s task %s engine error: %s", self._peer, self.protocol.task_id, exc)
            await self.fail(Status.SERVER_ERROR, server_error_text(exc), outcome="server_error")
        except Exception:
            logger.exception("! %s task %s handler failed", self._peer, self.protocol.task_id)
            await self.fail(Status.SERVER_ERROR, _SERVER_ERROR_TEXT, outcome="server_error")
        finally:
            self._busy = False
            self.touch()

    async def _after_completion(self) -> bool:
        """Close a handler whose task completed; True when the connection should end."""
        if self.ctx is not None and self.protocol.state is TaskState.COMPLETED:
            await self._end_task("completed")
        return self.draining and self.ctx is None

    async def _end_task(self, outcome: str) -> None:
        ctx, handler = self.ctx, self.handler
        if ctx is None:
            return
        self.ctx = self.handler = None
        ctx.live = False
        self.shared.admission.release(ctx.namespace)
        self.shared.metrics.task_ended(ctx.namespace, outcome)
        if handler is not None:
            # Shielded: a cancelled consumer must still let the handler stop its work.
            closing = asyncio.ensure_future(handler.close())
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await asyncio.gather(closing, return_exceptions=True)
                raise
            except Exception:
                logger.exception("! %s task %s close() failed", self._peer, ctx.task_id)

    def _idle_expired(self) -> bool:
        return not self._busy and self._loop.time() >= self._idle_deadline()

    def _idle_deadline(self) -> float:
        last = self._last_activity
        # Pings count as client data (FlowingSpeechSynthesizer keep-alive, §2.4).
        frame_time = getattr(self.ws, "last_client_frame", None)
        if isinstance(frame_time, float) and frame_time > last:
            last = frame_time
        return last + self.shared.idle_timeout

    async def _watch_idle(self) -> None:
        timeout = self.shared.idle_timeout
        while True:
            delay = self._idle_deadline() - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if self._busy:
                # A handler call in progress is the server working, not the client idling.
                await asyncio.sleep(min(timeout, 1.0))
                continue
            self._inbox.put_nowait(_IDLE)
            await asyncio.sleep(min(timeout, 1.0))

    async def _close(self) -> None:
        if self.ws.state is State.CLOSED:
            return
        async with self.send_lock:
            await self.flush_locked()
        code = 1001 if self.draining and self._outcome is None else 1000
        try:
            await asyncio.wait_for(self.ws.close(code), self.shared.close_timeout + 1.0)
        except (asyncio.TimeoutError, ConnectionClosed):
            self.ws.transport.abort()


def _join_audio(
    events: Iterable[CommandReceived | AudioReceived],
) -> Iterator[CommandReceived | AudioReceived]:
    """Events in order, with runs of consecutive AudioReceived joined into one."""
    run: list[bytes] = []
    for event in events:
        if isinstance(event, AudioReceived):
            run.append(event.data)
            continue
        if run:
            yield AudioReceived(b"".join(run))
            run = []
        yield event
    if run:
        yield AudioReceived(b"".join(run))
