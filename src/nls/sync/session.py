"""SyncSession: the thread bridge between the drop-in classes and an AsyncSession.

Blocking methods (``start``, ``stop``, ``control``, ``shutdown``) submit a coroutine to
the shared loop and wait on its future with the caller's timeout, never longer.
``send_audio`` does not wait: frames go through a per-session queue that one writer
coroutine drains in order. Events come back on the loop thread and are turned into the
original callbacks — ``cb(json_text, *callback_args)``, ``on_data(bytes, *args)``,
``on_close(*args)`` — run in order on the callback pool.

Every failure reaches ``on_error`` exactly once as TaskFailed-shaped JSON (server
TaskFailed, refused or rejected connection, timeout, early close, garbage frames), and
``on_close`` runs exactly once per connection attempt.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from nls.asyncio.session import AsyncSession
from nls.exception import NlsError, TaskFailedError
from nls.protocol import AudioData, Command, Event, TaskFailed
from nls.sync.dispatcher import SerialQueue
from nls.sync.loop import shared_loop

__all__ = ["Callbacks", "Starter", "SyncSession"]

logger = logging.getLogger("nls")

Callbacks = Mapping[str, Callable[..., Any] | None]
"""Event name → callback; plus ``"audio"`` (on_data), ``"error"``, ``"close"``, ``"open"``."""

Starter = Callable[[AsyncSession], Awaitable[object]]
"""A custom start: any coroutine that connects the session and sends a first command."""

_GRACE_S = 1.0  # extra wait for the loop to answer after a coroutine's own timeout


class SyncSession:
    """Blocking, callback-style driver of one AsyncSession at a time."""

    def __init__(
        self,
        factory: Callable[..., AsyncSession],
        callbacks: Callbacks,
        callback_args: Sequence[Any] = (),
        *,
        overlap: bool = False,
    ) -> None:
        self._factory = factory
        self._overlap = overlap
        """Let ``start`` begin a new task while the previous one still finishes
        (``NlsCommonProto``, like the original, which simply opened a new connection)."""
        self._callbacks = callbacks
        self._args = tuple(callback_args)
        self._loop = shared_loop()
        self._queue = SerialQueue()
        self._session: AsyncSession | None = None
        self._accepting = False
        self._warned = False
        self._pending: deque[bytes] = deque()
        self._pending_lock = threading.Lock()
        self._writer_scheduled = False
        self._writer: asyncio.Task[None] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- blocking API

    def start(
        self, command: Command | Starter, *, timeout: float | None, **session_kwargs: Any
    ) -> bool:
        """Connect, send ``command`` and wait for ``*Started`` (if any); True on success.

        ``command`` may instead be a coroutine function taking the new session, for
        starts that are not a namespace's start command (``NlsCommonProto``).
        """
        with self._lock:
            previous = self._session
            if previous is not None and self._live(previous) and not self._overlap:
                self._say_once("start() called while a task is running; call stop() first")
                return False
            session = self._session = self._factory(**session_kwargs)
            self._accepting = False
            self._warned = False
        # Bound per session: a previous task still finishing keeps its own events apart.
        session.on_event = functools.partial(self._on_event, session)
        ok = self._wait(self._astart(session, command, timeout), timeout)
        # Like the original, return once on_start (or on_error) has run, so code after
        # start() sees what its callbacks recorded.
        self._queue.wait_idle(_GRACE_S if timeout is None else max(timeout, _GRACE_S))
        return ok

    def wait_completed(self, timeout: float | None) -> bool:
        """Wait for ``*Completed`` and its callback; True on success."""
        session = self._session
        if session is None or session.completed is None:
            return False
        ok = self._wait(self._await_completed(session, timeout), timeout)
        return self._queue.wait_idle(timeout) and ok

    def stop(self, timeout: float | None) -> bool:
        """Send Stop, wait for ``*Completed`` and ``on_completed``; True on success."""
        session = self._session
        if session is None or not self._live(session):
            self._say_once("stop() called but no task is running")
            return False
        self._accepting = False
        ok = self._wait(self._astop(session, timeout), timeout)
        return self._queue.wait_idle(timeout) and ok

    def control(self, coro_factory: Callable[[AsyncSession], Any], timeout: float) -> bool:
        """Run ``coro_factory(session)`` (e.g. a ControlTranscriber) on the loop."""
        session = self._session
        if session is None or not self._live(session):
            self._say_once("no task is running")
            return False
        return self._wait(self._acall(coro_factory, session), timeout)

    def start_command(
        self,
        name: str,
        payload: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        *,
        timeout: float,
        **session_kwargs: Any,
    ) -> bool:
        """Connect and send any command by name, without waiting for an answer; True once
        sent (``NlsCommonProto.start``: the 0.0.1 API leaves the answer to callbacks)."""

        async def send(session: AsyncSession) -> None:
            await session.send_command(name, payload or {}, context, timeout=timeout)

        return self.start(send, timeout=timeout, **session_kwargs)

    def send_command(
        self,
        name: str,
        payload: Mapping[str, Any] | None,
        context: Mapping[str, Any] | None,
        timeout: float,
    ) -> bool:
        """Send another command of the running task by name (``NlsCommonProto.send_text``)."""
        return self.control(lambda session: session.send_command(name, payload, context), timeout)

    def send_control(self, command: Command, timeout: float) -> bool:
        """Send a mid-task command (ControlTranscriber, RunSynthesis); True once sent."""
        return self.control(lambda session: session.send_control(command), timeout)

    def send_audio(self, data: bytes) -> bool:
        """Queue audio without blocking; False (with one warning) when it cannot be sent."""
        if not data:
            self._say_once("send_audio() got empty data")
            return False
        if not self._accepting:
            self._say_once("send_audio() before start() succeeded, or after the task ended")
            return False
        # One loop wake-up per burst, not per frame: the writer drains whatever is queued.
        with self._pending_lock:
            self._pending.append(bytes(data))
            if self._writer_scheduled:
                return True
            self._writer_scheduled = True
        self._loop.call_soon(self._start_writer)
        return True

    def shutdown(self, timeout: float = 3.0) -> None:
        """Close the connection (a live task fails locally). Idempotent, never raises."""
        session = self._session
        self._accepting = False
        if session is None or session.connection is None:
            return
        if self._loop.in_loop():  # cannot happen from callbacks; be safe anyway
            self._loop.loop.create_task(session.close())
            return
        try:
            self._loop.submit(session.close()).result(timeout)
        except Exception as exc:  # shutdown must not raise (original semantics)
            logger.debug("! shutdown: %r", exc)

    @property
    def connected(self) -> bool:
        session = self._session
        return session is not None and session.connection is not None and self._live(session)

    # ------------------------------------------------------------- loop side

    async def _astart(
        self, session: AsyncSession, command: Command | Starter, timeout: float | None
    ) -> bool:
        try:
            if isinstance(command, Command):
                await session.start(command, timeout=timeout)
            else:
                await command(session)
        except TaskFailedError:
            return False  # the TaskFailed event already went to on_error
        except NlsError as exc:
            if session.connection is None:
                # Nothing was connected: report like a TaskFailed, then the one on_close.
                self._dispatch_error(session.fail_before_connect(exc))
                self._dispatch("close")
            else:
                await session.connection.close()
            return False
        self._accepting = True
        if "open" in self._callbacks:
            self._dispatch("open")
        return True

    async def _astop(self, session: AsyncSession, timeout: float | None) -> bool:
        await self._drain_audio()
        try:
            await session.stop(timeout=timeout)
        except NlsError:
            return False
        return True

    async def _await_completed(self, session: AsyncSession, timeout: float | None) -> bool:
        try:
            await session.wait_completed(timeout=timeout)
        except NlsError:
            return False
        return True

    async def _acall(self, factory: Callable[[AsyncSession], Any], session: AsyncSession) -> bool:
        try:
            await factory(session)
        except NlsError as exc:
            self._say_once(str(exc))
            return False
        return True

    def _start_writer(self) -> None:
        """Send queued audio in order (on the loop): at once while the socket takes it; if
        it stops taking it (a backlog), a task sends the rest as the socket drains."""
        if not self._write_nowait():
            self._writer = self._loop.loop.create_task(self._drain_audio())

    def _write_nowait(self) -> bool:
        """Send queued audio without waiting; True once the queue is empty."""
        session = self._session
        conn = None if session is None else session.connection
        while True:
            with self._pending_lock:
                if not self._pending:
                    self._writer_scheduled = False
                    return True
                if conn is None:
                    self._pending.popleft()
                    continue
                data = self._pending[0]  # only this loop thread takes from the queue
            try:
                if not conn.send_audio_nowait(data):
                    return False
            except NlsError:
                with self._pending_lock:
                    self._pending.clear()  # the task ended; its end is reported as an event
                continue
            with self._pending_lock:
                self._pending.popleft()

    async def _drain_audio(self) -> None:
        """Send queued audio in order until the queue is empty, waiting out backlogs."""
        while not self._write_nowait():
            # A backlog (or a send in progress): the next frame takes the awaiting path.
            session = self._session
            assert session is not None  # _write_nowait stops early only with a connection
            with self._pending_lock:
                data = self._pending.popleft()
            try:
                await session.send_audio(data)
            except NlsError:
                with self._pending_lock:
                    self._pending.clear()  # the task ended; its end is reported as an event

    def _on_event(self, session: AsyncSession, event: Event | AudioData | None) -> None:
        current = session is self._session
        if event is None:
            if current:
                self._accepting = False
            self._dispatch("close")
            return
        if isinstance(event, AudioData):
            self._dispatch("audio", event.data)
            return
        if isinstance(event, TaskFailed):
            if current:
                self._accepting = False
            self._dispatch_error(event)
            if session.connection is not None:
                # The gateway closes after TaskFailed; make sure we do too (§2.7).
                self._loop.loop.create_task(session.connection.close())
            return
        self._dispatch(event.header.name, event.raw)
        if event.header.name == session.spec.completed:
            if current:
                self._accepting = False
            if session.connection is not None:
                # The official SDK closes after *Completed; on_close follows on_completed.
                self._loop.loop.create_task(session.connection.close())

    # ---------------------------------------------------------------- helpers

    def _dispatch(self, name: str, *first: Any) -> None:
        callback = self._callbacks.get(name)
        if callback is not None:
            self._queue.submit(callback, *first, *self._args)

    def _dispatch_error(self, event: TaskFailed) -> None:
        logger.debug("! task failed: %s %s", event.status, event.status_text)
        self._dispatch("error", event.raw)

    def _wait(self, coro: Any, timeout: float | None) -> bool:
        future = self._loop.submit(coro)
        try:
            return bool(future.result(None if timeout is None else timeout + _GRACE_S))
        except TimeoutError:
            future.cancel()
            return False

    @staticmethod
    def _live(session: AsyncSession) -> bool:
        conn = session.connection
        if conn is None:
            return session.started is not None and not session.started.done()
        return conn.protocol.state.live

    def _say_once(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s", why)
