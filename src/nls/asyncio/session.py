"""AsyncSession: one NLS task over one connection, with credentials and timeouts.

A session resolves its token (a fixed ``token``, or ``akid``/``aksecret`` through a
shared :class:`~nls.token.TokenProvider`, one per AccessKey and token endpoint in the
process), connects, sends the start command and tracks the task's ends in two futures:
``started`` and ``completed``. Both end in :class:`~nls.exception.TaskFailedError` when
the task fails, whatever the cause (server TaskFailed, closed socket, timeout), so a
caller waits on exactly one thing. The typed per-namespace classes (recognizer,
transcriber, synthesizer) are thin layers over this.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from nls.asyncio.connection import AsyncConnection, Listener
from nls.exception import (
    ConnectionUnavailable,
    InvalidParameter,
    InvalidStateError,
    NlsError,
    StartTimeoutException,
    StopTimeoutException,
    TaskFailedError,
)
from nls.protocol import (
    DEFAULT_URL,
    AudioData,
    Command,
    Event,
    Status,
    TaskFailed,
    local_task_failed,
    spec_for,
)
from nls.token import TokenProvider, token_url_for

__all__ = [
    "AsyncSession",
    "CommandSession",
    "Credentials",
    "TokenSource",
    "merge_ex",
    "shared_token_provider",
]

_providers: dict[tuple[str, str, str], TokenProvider] = {}
_providers_lock = threading.Lock()


def shared_token_provider(akid: str, aksecret: str, url: str) -> TokenProvider:
    """The process-wide provider for one AccessKey at one token endpoint.

    Sessions share it, so a thousand sessions starting at once send one CreateToken.
    """
    key = (akid, aksecret, url)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = TokenProvider(akid, aksecret, url=url)
        return provider


class TokenSource:
    """Where a session's token comes from: a fixed token or an AccessKey pair (plus the
    appkey the handshake names). Not the gateway's ``nls_gateway.auth.Credentials``, which
    is the server's table of accepted keys.

    Raises:
        InvalidParameter: neither a token nor a complete AccessKey pair, or no appkey.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        akid: str | None,
        aksecret: str | None,
        appkey: str | None,
        token_url: str | None = None,
    ) -> None:
        if not appkey:
            raise InvalidParameter("appkey is required")
        if not token and not (akid and aksecret):
            raise InvalidParameter("either token or both akid and aksecret are required")
        self.appkey = appkey
        self._token = token
        self._provider = (
            None
            if token
            else shared_token_provider(akid or "", aksecret or "", token_url_for(url, token_url))
        )

    async def token(self) -> str:
        """A valid token (never blocks the loop)."""
        if self._provider is None:
            assert self._token is not None
            return self._token
        return await self._provider.aget()

    def refresh_after(self, exc: ConnectionUnavailable) -> bool:
        """After a handshake refused with ``…has expired!``, drop the cached token.

        Returns True when a retry with a fresh token makes sense (AccessKey sessions).
        """
        if self._provider is None or exc.http_status != 403 or "has expired" not in exc.body:
            return False
        self._provider.invalidate()
        return True


Credentials = TokenSource
"""The former name of :class:`TokenSource`, kept for code that imported it."""


class AsyncSession:
    """One task of ``namespace``; subclasses add the namespace's typed methods."""

    namespace: str = ""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        appkey: str | None = None,
        token: str | None = None,
        akid: str | None = None,
        aksecret: str | None = None,
        token_url: str | None = None,
        namespace: str | None = None,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        buffer_events: bool = True,
    ) -> None:
        self.url = url
        self.token_source = TokenSource(
            url, token=token, akid=akid, aksecret=aksecret, appkey=appkey, token_url=token_url
        )
        if namespace is not None:
            self.namespace = namespace
        self.spec = spec_for(self.namespace)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.on_event: Listener | None = None
        """Extra listener for every event (the thread bridge's callback dispatch)."""
        self.connection: AsyncConnection | None = None
        self._buffer_events = buffer_events
        self.started: asyncio.Future[Event | None] | None = None
        self.completed: asyncio.Future[Event] | None = None

    # ----------------------------------------------------------------- public

    async def connect(self, *, timeout: float | None = 10) -> AsyncConnection:
        """Open the connection (usually done by :meth:`start`)."""
        loop = asyncio.get_running_loop()
        self.started, self.completed = loop.create_future(), loop.create_future()
        for attempt in range(2):
            try:
                token = await asyncio.wait_for(self.token_source.token(), timeout)
            except TimeoutError as exc:
                raise StartTimeoutException("getting a token timed out") from exc
            try:
                self.connection = await AsyncConnection.open(
                    self.url,
                    namespace=self.namespace,
                    appkey=self.token_source.appkey,
                    token=token,
                    open_timeout=timeout,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                    buffer_events=self._buffer_events,
                )
            except ConnectionUnavailable as exc:
                # A cached token the gateway considers expired: fetch a new one, once.
                if attempt == 0 and self.token_source.refresh_after(exc):
                    continue
                raise
            break
        assert self.connection is not None
        self.connection.listener = self._listen
        return self.connection

    async def start(self, command: Command, *, timeout: float | None = 10) -> Event | None:
        """Connect, send ``command``, and wait for ``*Started`` (if the namespace has one).

        Returns:
            The ``*Started`` event, or None for namespaces without one.

        Raises:
            TaskFailedError: the server failed the task (or the connection closed).
            StartTimeoutException: no answer within ``timeout`` (the session is failed).
            ConnectionUnavailable / ConnectionTimeout: could not connect.
            InvalidStateError: already started.
        """
        if self.connection is not None and self.connection.protocol.state.live:
            raise InvalidStateError("the session is already started")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        conn = await self.connect(timeout=timeout)
        try:
            await conn.start(command)
            assert self.started is not None
            if self.spec.started is None:
                if not self.started.done():
                    self.started.set_result(None)
                return None
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                return await asyncio.wait_for(asyncio.shield(self.started), remaining)
            except TimeoutError:
                exc = StartTimeoutException(f"no {self.spec.started} within {timeout} s")
                conn.fail(exc)
                raise exc from None
        except BaseException:
            # A task that never started leaves nothing to reuse (the cloud closes after a
            # start-time TaskFailed too); without this a failed `async with` leaks the socket.
            await self.close()
            raise

    async def send_command(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = 10,
    ) -> None:
        """Send any command by name, connecting first if needed (NlsCommonProto)."""
        conn = self.connection
        if conn is None or conn.closed.is_set():
            conn = await self.connect(timeout=timeout)
        await conn.send_command(name, payload, context)

    async def wait_completed(self, *, timeout: float | None = None) -> Event:
        """Wait for ``*Completed``.

        Raises:
            TaskFailedError: the task failed.
            StopTimeoutException: no ``*Completed`` within ``timeout`` (the session is failed).
        """
        if self.completed is None:
            raise InvalidStateError("the session was never started")
        try:
            return await asyncio.wait_for(asyncio.shield(self.completed), timeout)
        except TimeoutError:
            exc = StopTimeoutException(f"no {self.spec.completed} within {timeout} s")
            if self.connection is not None:
                self.connection.fail(exc)
            raise exc from None

    async def stop(self, *, timeout: float | None = 10) -> Event:
        """Send the stop command and wait for ``*Completed``."""
        conn = self._require_connection()
        if self.completed is not None and self.completed.done():
            return self.completed.result()
        try:
            await conn.stop()
        except NlsError as exc:
            raise InvalidStateError(f"cannot stop: {exc}") from exc
        return await self.wait_completed(timeout=timeout)

    async def send_audio(self, data: bytes) -> None:
        """Send audio. Raises InvalidStateError when the task does not take audio now."""
        conn = self._require_connection()
        try:
            await conn.send_audio(data)
        except NlsError as exc:
            raise InvalidStateError(f"cannot send audio: {exc}") from exc

    async def send_control(self, command: Command) -> None:
        """Send a mid-task command (ControlTranscriber, RunSynthesis, FlushText)."""
        conn = self._require_connection()
        try:
            await conn.control(command)
        except NlsError as exc:
            raise InvalidStateError(f"cannot send {command.name}: {exc}") from exc

    async def events(self) -> AsyncIterator[Event | AudioData]:
        """Every event of the task, in order, until ``*Completed``.

        Raises:
            TaskFailedError: when the task fails (after yielding nothing for it).
        """
        conn = self._require_connection()
        while True:
            try:
                event = await conn.recv()
            except EOFError:
                return
            if isinstance(event, TaskFailed):
                raise _task_failed_error(event)
            yield event
            if isinstance(event, Event) and event.header.name == self.spec.completed:
                return

    async def close(self) -> None:
        """Close the connection; a live task fails locally first. Idempotent."""
        if self.connection is not None:
            self.connection.fail("session closed by the client", Status.CLIENT_DISCONNECT)
            await self.connection.close()

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def fail_before_connect(self, exc: NlsError) -> TaskFailed:
        """A TaskFailed for a failure before any connection (refused, 403, no token)."""
        return local_task_failed(self.namespace, "", exc.status, f"SDK:{type(exc).__name__}:{exc}")

    # ---------------------------------------------------------------- private

    def _require_connection(self) -> AsyncConnection:
        if self.connection is None:
            raise InvalidStateError("the session is not started")
        return self.connection

    def _listen(self, event: Event | AudioData | None) -> None:
        started, completed = self.started, self.completed
        if isinstance(event, TaskFailed):
            error = _task_failed_error(event)
            for future in (started, completed):
                if future is not None and not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved: a failure nobody awaits is not an error
        elif isinstance(event, Event):
            name = event.header.name
            if name == self.spec.started and started is not None and not started.done():
                started.set_result(event)
            elif name == self.spec.completed and completed is not None and not completed.done():
                if started is not None and not started.done():
                    started.set_result(None)
                completed.set_result(event)
        if self.on_event is not None:
            self.on_event(event)


def _task_failed_error(event: TaskFailed) -> TaskFailedError:
    return TaskFailedError(event.status, event.status_text, event.task_id, event.raw)


_C = TypeVar("_C", bound=Command)
_S = TypeVar("_S", bound="CommandSession")


class CommandSession(AsyncSession):
    """A session whose start command is built from keyword arguments.

    Keyword arguments after the credentials are the start command's payload fields
    (``format``, ``sample_rate``, …); ``ex`` adds any other payload key. ``async with``
    starts the task (waiting for ``*Started``) and closes the connection at the end.
    """

    command_type: type[Command]

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        appkey: str | None = None,
        token: str | None = None,
        akid: str | None = None,
        aksecret: str | None = None,
        ex: Mapping[str, Any] | None = None,
        timeout: float = 10,
        **params: Any,
    ) -> None:
        super().__init__(url, appkey=appkey, token=token, akid=akid, aksecret=aksecret)
        self.command = merge_ex(self.command_type(**params), ex)
        self.timeout = timeout

    async def __aenter__(self: _S) -> _S:
        await self.start(self.command, timeout=self.timeout)
        return self


def merge_ex(command: _C, ex: Mapping[str, Any] | None) -> _C:
    """``command`` with ``ex`` merged into its payload (the official ``payload.update(ex)``)."""
    if not ex:
        return command
    return dataclasses.replace(command, extra={**command.extra, **ex})
