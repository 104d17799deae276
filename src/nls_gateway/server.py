"""The gateway server: WebSocket ``/ws/v1`` and plain HTTP on one port.

This module owns the listening socket and everything before a connection's first NLS
message: the opening handshake and its tolerance rules (protocol.md §2.1, §14 item 1:
repeated ``Sec-WebSocket-Key`` / ``Sec-WebSocket-Version`` headers are cut to their FIRST
value, a key seen before is fine, no subprotocol or compression is required), the token
check (``X-NLS-Token`` header or ``?token=``; 403 with the documented plain-text body,
§2.2), 503 while engines load or when connections are over the limit, non-GET HTTP
requests (``POST`` CreateToken, ``OPTIONS``), which the ``websockets`` parser refuses, the
engine loading (once per process, in a thread), and graceful shutdown.

It must not run tasks (``connection.py`` does) nor decide auth policy (``auth.py`` does).

Example::

    async with serve(ServerConfig(port=0, engines="scripted")) as gateway:
        await gateway.wait_ready()
        print(gateway.url)          # ws://127.0.0.1:PORT/ws/v1
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve as ws_serve
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from nls_gateway.admission import TTS_STREAM_COST, Admission, AdmissionPolicy
from nls_gateway.config import WS_PATH, ServerConfig, load_engines
from nls_gateway.connection import Connection, Shared
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.routes import (
    DEFAULT_CONSOLE_DIR,
    HttpRequest,
    HttpResponse,
    Routes,
    parse_request,
)
from nls_gateway.runtime import EngineRunner
from nls_gateway.tasks import HANDLERS
from nls_gateway.tasks.base import Engines, TaskHandler

__all__ = ["Gateway", "serve"]

logger = logging.getLogger(__name__)

_CLIENT_FRAMES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PING)
"""Frames that count as client data for the idle timer (pings too, §2.4)."""
_SERVER_HEADER = "OpenNLS"

_WS_LOGGER = logging.getLogger("nls_gateway.server.websockets")
# websockets logs every request header and the request path at DEBUG; those carry the
# token (X-NLS-Token, ?token=), which must never reach a log. Its INFO output is kept.
_WS_LOGGER.setLevel(logging.INFO)


class GatewayConnection(ServerConnection):
    """A websockets ``ServerConnection`` that also answers non-GET HTTP requests.

    ``websockets`` parses only ``GET`` requests. The first bytes of each TCP connection
    are sniffed: a ``GET`` goes to websockets unchanged; anything else (``POST`` from the
    token SDKs, ``OPTIONS``) is parsed here with a small HTTP/1.1 parser, answered by
    :class:`~nls_gateway.routes.Routes` and closed.
    """

    routes: ClassVar[Routes]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_client_frame = self.loop.time()
        """Loop time of the last text, binary or ping frame from the client."""
        self._sniff: bytearray | None = bytearray()

    def data_received(self, data: bytes) -> None:
        sniff = self._sniff
        if sniff is None:
            super().data_received(data)
            return
        sniff += data
        if sniff.startswith(b"GET "):
            self._sniff = None
            super().data_received(bytes(sniff))
            return
        if b" " not in sniff[:16]:
            if len(sniff) >= 16:
                self._answer(HttpResponse.text(400, "Bad request line.\n"))
            return
        parsed = parse_request(bytes(sniff))
        if parsed is None:
            return  # wait for the rest of the headers/body (open_timeout bounds this)
        if isinstance(parsed, HttpResponse):
            self._answer(parsed)
        else:
            self._answer(self.routes.handle(parsed))

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame) and event.opcode in _CLIENT_FRAMES:
            self.last_client_frame = self.loop.time()
        super().process_event(event)

    def _answer(self, response: HttpResponse) -> None:
        self._sniff = bytearray()  # ignore anything more the client sends
        self.transport.write(response.to_bytes())
        # Closing makes connection_lost end websockets' handshake wait; it then aborts.
        self.transport.close()


class Gateway:
    """A running (or startable) gateway. Use ``async with serve(config) as gateway``.

    Args:
        config: the server configuration.
        engines: engines already loaded (tests, embedding); None loads them per
            ``config`` in a thread after the socket is bound (``/healthz`` says 503 until
            then).
        handlers: namespace → task handler class; default ``nls_gateway.tasks.HANDLERS``.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        engines: Engines | None = None,
        handlers: Mapping[str, type[TaskHandler]] | None = None,
    ) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.authenticator = config.authenticator()
        self.admission = Admission(
            AdmissionPolicy(
                max_live_streams=config.max_live_streams,
                max_concurrent_tasks=config.max_concurrent_tasks,
                max_connections=config.max_connections,
                max_waiting_engine_calls=config.max_waiting_engine_calls,
            ),
            self.metrics,
        )
        self.runner = EngineRunner(
            threads=config.engine_threads,
            max_pending=config.max_pending_engine_calls,
            admission=self.admission,
            timeout=config.engine_timeout,
            decode_lanes=config.decode_lanes,
            batch_window_ms=config.batch_window_ms,
            max_batch=config.max_batch,
            final_deadline_s=config.final_deadline_s,
            metrics=self.metrics,
        )
        if handlers is None:
            handlers = HANDLERS
        self.shared = Shared(
            credentials=config.credentials,
            engines=engines or Engines(),
            runner=self.runner,
            metrics=self.metrics,
            handlers=dict(handlers),
            admission=self.admission,
            idle_timeout=config.idle_timeout,
            close_timeout=config.close_timeout,
            limits=config.limits,
            vocabularies=config.vocabularies,
        )
        self._preloaded = engines is not None
        self._ready: asyncio.Event | None = None  # created on the loop in start()
        self._load_error: BaseException | None = None
        self._loading: asyncio.Task[None] | None = None
        self._server: Server | None = None
        self.connections: set[Connection] = set()
        console = Path(config.console_dir) if config.console_dir else DEFAULT_CONSOLE_DIR
        self.routes = Routes(
            authenticator=self.authenticator,
            metrics=self.metrics,
            ready=self.is_ready,
            tts=lambda: self.shared.engines.tts if self.is_ready() else None,
            draining=lambda: self.admission.draining,
            console_dir=console,
        )

    # ------------------------------------------------------------ public API

    def is_ready(self) -> bool:
        """True once the engines are loaded."""
        return self._ready is not None and self._ready.is_set()

    @property
    def port(self) -> int:
        """The bound TCP port (useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("gateway not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The WebSocket URL clients use, e.g. ``ws://127.0.0.1:8765/ws/v1``."""
        scheme = "wss" if self.config.tls else "ws"
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"{scheme}://{host}:{self.port}{WS_PATH}"

    @property
    def http_url(self) -> str:
        """Base URL of the plain-HTTP routes (token service, /healthz…)."""
        return self.url.replace("ws", "http", 1).removesuffix(WS_PATH)

    async def start(self) -> Gateway:
        """Bind the socket and start loading the engines (returns at once)."""
        if self._server is not None:
            return self
        self._ready = asyncio.Event()
        conn_class = type("BoundGatewayConnection", (GatewayConnection,), {"routes": self.routes})
        ssl_context = None
        if self.config.certfile:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.config.certfile, self.config.keyfile)
        self._server = await ws_serve(
            self._handle,
            self.config.host,
            self.config.port,
            # WebSocket
            compression=None,  # no SDK requires permessage-deflate (Node disables it, §2.1)
            # HTTP
            process_request=self._process_request,
            server_header=_SERVER_HEADER,
            # Timeouts
            open_timeout=self.config.open_timeout,
            ping_interval=self.config.ping_interval,
            ping_timeout=None,  # never close a client for a missing pong (§2.4)
            close_timeout=self.config.close_timeout,
            # Limits
            max_size=self.config.max_message_bytes,
            create_connection=conn_class,
            # Logging
            logger=_WS_LOGGER,
            ssl=ssl_context,
        )
        if self._preloaded:
            self._set_ready()
        else:
            self._loading = asyncio.create_task(self._load_engines())
        logger.info("listening on %s%s", self.url, " (dev mode)" if self.config.dev_mode else "")
        return self

    async def wait_ready(self) -> None:
        """Wait until the engines are loaded.

        Raises:
            EngineUnavailableError: (or whatever the loader raised) loading failed.
        """
        if self._ready is None:
            raise RuntimeError("gateway not started")
        if self._loading is not None:
            await asyncio.shield(self._loading)
        if self._load_error is not None:
            raise self._load_error
        await self._ready.wait()

    async def serve_forever(self) -> None:
        """Serve until cancelled, then shut down gracefully."""
        await self.start()
        try:
            assert self._server is not None
            await self._server.wait_closed()
        finally:
            await self.shutdown()

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain: refuse new work, let running tasks finish, then fail the rest and close.

        While running tasks finish the socket stays open, so a load balancer or
        orchestrator is told rather than left to guess: ``/healthz`` answers 503, a
        WebSocket handshake 503 (nginx's ``proxy_next_upstream http_503`` retries it on
        another replica) and a Start on an open connection ``TaskFailed 50000000``.
        Connections with no running task close at once (1001), the others after their
        task. Then the listener closes.

        Args:
            grace: seconds running tasks may take to finish (default
                ``config.shutdown_grace``); then TaskFailed 50000000 and close.
        """
        server = self._server
        if server is None or self.admission.draining:
            if server is not None:
                await server.wait_closed()
            return
        grace = self.config.shutdown_grace if grace is None else grace
        self.admission.draining = True
        logger.info("draining: %d running task(s)", self.shared.admission.active)
        for conn in list(self.connections):
            conn.begin_drain()
        admission = self.shared.admission
        if admission.active:
            try:
                await asyncio.wait_for(admission.idle.wait(), grace)
            except asyncio.TimeoutError:
                logger.warning("grace period over: failing %d task(s)", admission.active)
        server.close(close_connections=False)
        for conn in list(self.connections):
            await conn.abort_for_shutdown()
        try:
            await asyncio.wait_for(server.wait_closed(), self.config.close_timeout + 2.0)
        except asyncio.TimeoutError:
            logger.warning("connections did not close in time")
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        self.runner.close()
        logger.info("gateway stopped")

    async def __aenter__(self) -> Gateway:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    def __await__(self) -> Generator[Any, None, Gateway]:
        return self.start().__await__()

    # --------------------------------------------------------------- private

    def _set_ready(self) -> None:
        assert self._ready is not None
        tts = self.shared.engines.tts
        self.admission.tts_cost = getattr(tts, "stream_cost", TTS_STREAM_COST)
        if tts is not None:
            cost, capacity = self.admission.tts_cost, self.admission.capacity
            logger.info("a synthesis costs %d of %d live streams", cost, capacity)
        self._ready.set()
        self.metrics.engines_ready.set(1)

    async def _load_engines(self) -> None:
        try:
            engines = await asyncio.to_thread(load_engines, self.config)
        except Exception as exc:
            self._load_error = exc
            logger.error("! engines failed to load: %s", exc)
            return
        self.shared.engines = engines
        self._set_ready()
        logger.info("engines ready")

    async def _handle(self, websocket: ServerConnection) -> None:
        conn = Connection(websocket, self.shared)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if "Upgrade" not in request.headers:
            # Plain GET: health, metrics, voices, CreateToken, console.
            return _to_response(self.routes.handle(_http_request(request)))
        url = urlsplit(request.path)
        if url.path != WS_PATH:
            return self._reject(connection, 404, "Not found.\n", "not_found")
        refusal = self.admission.refuse_handshake(
            ready=self.is_ready(), connections=len(self.connections)
        )
        if refusal is not None:
            return self._reject(connection, refusal.status, refusal.body, refusal.reason)
        # The official Python SDK 1.0.2 sends Sec-WebSocket-Key/Version twice (§2.1): its
        # client checks the accept value against the FIRST key, and websockets refuses
        # repeated headers, so keep only the first of each.
        headers = request.headers
        for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version"):
            values = headers.get_all(name)
            if len(values) > 1:
                del headers[name]
                headers[name] = values[0]
        token = _first(headers, "X-NLS-Token") or dict(parse_qsl(url.query)).get("token")
        verdict = self.authenticator.check_handshake_token(token)
        if verdict is not None:
            status, body = verdict
            reason = "token_missing" if not token else "token_refused"
            return self._reject(connection, status, body, reason)
        return None

    def _reject(
        self, connection: ServerConnection, status: int, body: str, reason: str
    ) -> Response:
        self.metrics.rejected_handshakes.labels(reason).inc()
        return connection.respond(status, body)


def serve(
    config: ServerConfig,
    *,
    engines: Engines | None = None,
    handlers: Mapping[str, type[TaskHandler]] | None = None,
) -> Gateway:
    """Create a gateway; ``await`` it or use it as ``async with`` to start serving.

    Args:
        config: the server configuration.
        engines: already-loaded engines; None loads ``config``'s engines in a thread.
        handlers: namespace → handler class (default ``nls_gateway.tasks.HANDLERS``).
    """
    return Gateway(config, engines=engines, handlers=handlers)


def _first(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return values[0] if values else None


def _http_request(request: Request) -> HttpRequest:
    names = {k.lower() for k in request.headers}
    return HttpRequest("GET", request.path, {n: request.headers.get_all(n)[0] for n in names}, b"")


def _to_response(response: HttpResponse) -> Response:
    headers = Headers(response.header_list())
    headers["Connection"] = "close"
    return Response(response.status, response.reason, headers, response.body)
