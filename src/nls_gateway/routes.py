"""The gateway's plain-HTTP routes, served on the WebSocket port.

This module owns what a non-WebSocket request gets: ``GET /healthz`` (200 once the
engines are loaded, 503 before and while the gateway drains for shutdown), ``GET
/metrics`` (Prometheus text), ``GET /voices`` (JSON), the token service ``CreateToken``
(``GET``/``POST /`` and the C++ SDK's ``/pop/2019-02-28/tokens``, protocol.md §11, §14
item 11), static files of the web console under ``GET /`` when ``nls_gateway/console/``
exists, and 404 for the rest. It also owns the tiny HTTP/1.1 request parser used for
non-GET requests, which the ``websockets`` handshake parser refuses.

It must not know about WebSocket frames or NLS tasks: it maps a parsed request to an
:class:`HttpResponse` and nothing else.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nls.exception import InvalidParameter
from nls_gateway.auth import Authenticator, parse_params
from nls_gateway.engines.base import TtsEngine
from nls_gateway.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, GatewayMetrics

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEAD_BYTES",
    "HttpRequest",
    "HttpResponse",
    "Routes",
    "parse_request",
]

MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers; larger requests get 431."""
MAX_BODY_BYTES = 64 * 1024
"""CreateToken bodies are a few hundred bytes; larger ones get 413."""
TOKEN_PATHS = ("/", "/pop/2019-02-28/tokens")
"""CreateToken paths: ``/`` (every SDK) and the C++ SDK's POP path (§11.2)."""
DEFAULT_CONSOLE_DIR = Path(__file__).resolve().parent / "console"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed plain-HTTP request."""

    method: str
    target: str
    """The request target as sent (path and query)."""
    headers: Mapping[str, str]
    """Header names lower-cased; a repeated header keeps its first value."""
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.target).query


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A plain-HTTP answer; bodies are small, so the whole response is built at once."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Sequence[tuple[str, str]] = field(default=())

    @classmethod
    def text(cls, status: int, text: str) -> HttpResponse:
        return cls(status, text.encode("utf-8"))

    @classmethod
    def json(cls, status: int, data: Any) -> HttpResponse:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, "application/json; charset=utf-8")

    @property
    def reason(self) -> str:
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Unknown"

    def header_list(self) -> list[tuple[str, str]]:
        """Every header to send, ``Content-Length`` included (the C++ SDK reads it, §2.2)."""
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]

    def to_bytes(self) -> bytes:
        """The whole HTTP/1.1 response, with ``Connection: close``."""
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.header_list()]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def parse_request(data: bytes) -> HttpRequest | HttpResponse | None:
    """Parse one HTTP/1.x request from the bytes received so far.

    Returns:
        The request once complete; None when more bytes are needed; an error
        :class:`HttpResponse` (400/411/413/431/501) when it cannot be served.
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return (
            HttpResponse.text(431, "Request header too large.\n")
            if len(data) > MAX_HEAD_BYTES
            else None
        )
    try:
        head = data[:head_end].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        return HttpResponse.text(400, "Bad request line.\n")
    if not version.startswith("HTTP/1.") or not target.startswith("/"):
        return HttpResponse.text(400, "Bad request line.\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            return HttpResponse.text(400, "Bad header line.\n")
        headers.setdefault(name.strip().lower(), value.strip())
    if "transfer-encoding" in headers:
        return HttpResponse.text(501, "Transfer-Encoding is not supported.\n")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        return HttpResponse.text(400, "Bad Content-Length.\n")
    if length < 0:
        return HttpResponse.text(400, "Bad Content-Length.\n")
    if length > MAX_BODY_BYTES:
        return HttpResponse.text(413, "Request body too large.\n")
    body = data[head_end + 4 : head_end + 4 + length]
    if len(body) < length:
        return None
    return HttpRequest(method.upper(), target, headers, bytes(body))


class Routes:
    """Maps plain-HTTP requests to responses for one gateway.

    Args:
        authenticator: answers CreateToken.
        metrics: rendered by ``/metrics``.
        ready: True once the engines are loaded (``/healthz``).
        draining: True once shutdown began (``/healthz`` says 503 so balancers move on).
        tts: the TTS engine for ``/voices`` (None before loading or without TTS).
        console_dir: static files for ``GET /`` (the console); None → 404.
        clock: Unix time for CreateToken.
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        metrics: GatewayMetrics,
        ready: Callable[[], bool],
        tts: Callable[[], TtsEngine | None],
        draining: Callable[[], bool] = lambda: False,
        console_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = authenticator
        self._metrics = metrics
        self._ready = ready
        self._draining = draining
        self._tts = tts
        self._console = console_dir.resolve() if console_dir and console_dir.is_dir() else None
        self._clock = clock

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one plain-HTTP request (never raises for client input)."""
        route, response = self._dispatch(request)
        self._metrics.http_requests.labels(route, str(response.status)).inc()
        return response

    def _dispatch(self, request: HttpRequest) -> tuple[str, HttpResponse]:
        method, path = request.method, request.path
        if method == "OPTIONS":
            return "options", HttpResponse(204, headers=(("Allow", "GET, POST, OPTIONS"),))
        query = _params(request.query)
        if path in TOKEN_PATHS and (method == "POST" or "Action" in (query or {})):
            return "token", self._create_token(request, query)
        if method != "GET":
            return "other", HttpResponse(
                405, b"Method not allowed.\n", headers=(("Allow", "GET, POST, OPTIONS"),)
            )
        if path == "/healthz":
            if self._draining():
                return "healthz", HttpResponse.text(503, "Server is shutting down.\n")
            if self._ready():
                return "healthz", HttpResponse.text(200, "OK\n")
            return "healthz", HttpResponse.text(503, "Engines are loading.\n")
        if path == "/metrics":
            return "metrics", HttpResponse(200, self._metrics.render(), METRICS_CONTENT_TYPE)
        if path == "/voices":
            tts = self._tts()
            if tts is None:
                return "voices", HttpResponse.text(503, "No TTS engine loaded.\n")
            voices = [
                {"name": v.name, "language": v.language, "gender": v.gender} for v in tts.voices()
            ]
            return "voices", HttpResponse.json(200, voices)
        static = self._static(path)
        if static is not None:
            return "console", static
        return "not_found", HttpResponse.text(404, "Not found.\n")

    def _create_token(self, request: HttpRequest, query: dict[str, str] | None) -> HttpResponse:
        form: dict[str, str] | None = {}
        ctype = request.headers.get("content-type", "")
        if request.body and ctype.startswith("application/x-www-form-urlencoded"):
            form = _params(request.body)
        if query is None or form is None:
            return HttpResponse.json(
                400, {"Code": "InvalidParameter", "Message": "Parameters are not valid UTF-8."}
            )
        status, body = self._auth.handle_create_token(request.method, query, form, self._clock())
        return HttpResponse.json(status, body)

    def _static(self, path: str) -> HttpResponse | None:
        # Hook for the web console (a later issue): files under nls_gateway/console/.
        if self._console is None:
            return None
        rel = path.lstrip("/") or "index.html"
        target = (self._console / rel).resolve()
        if not target.is_relative_to(self._console) or not target.is_file():
            return None
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
            ctype += "; charset=utf-8"
        return HttpResponse(200, target.read_bytes(), ctype)


def _params(data: str | bytes) -> dict[str, str] | None:
    try:
        return parse_params(data)
    except InvalidParameter:
        return None
