"""nls.token: getToken, fetch_token, TokenProvider and token_url_for against a local server.

The server is a tiny http.server on 127.0.0.1 that verifies every request's POP signature
with nls.protocol.pop and answers from a script, so caching, refresh-ahead, single-flight,
throttling backoff and error mapping are checked on real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from nls.exception import GetTokenFailed, InvalidParameter
from nls.protocol import pop
from nls.token import (
    DEFAULT_TOKEN_URL,
    INTL_TOKEN_URL,
    NO_RETRY,
    Backoff,
    TokenProvider,
    fetch_token,
    getToken,
    token_url_for,
)

AKID, SECRET = "testid", "testsecret"


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class TokenServer:
    """Scripted CreateToken server; ``script`` answers first, then it issues tokens."""

    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    script: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    delay_s: float = 0.0
    lifetime_s: int = 3600
    clock: Callable[[], float] = time.time
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        parts = urlsplit(target)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self.lock:
            self.requests.append(Recorded(method, parts.path, params, headers, body))
        check = pop.verify_signature(method, params, {AKID: SECRET}.get)
        if not check.ok:
            msg = (
                "Specified signature is not matched with our calculation. server string to sign is:"
            )
            return (
                400,
                pop.pop_error_body(
                    "SignatureDoesNotMatch", msg + check.string_to_sign, request_id="r", host_id="h"
                ),
                {},
            )
        time.sleep(self.delay_s)
        with self.lock:
            if self.script:
                return self.script.pop(0)
            token = uuid.uuid4().hex
            self.issued.append(token)
        grant = pop.TokenGrant(token, int(self.clock()) + self.lifetime_s, "1")
        return 200, pop.create_token_response_body(grant, request_id="R", nls_request_id="N"), {}


def _throttled(retry_after: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = pop.pop_error_body(
        "Throttling.User",
        "Request was denied due to user flow control.",
        request_id="t",
        host_id="h",
    )
    return 400, body, ({"Retry-After": retry_after} if retry_after else {})


def _not_found() -> tuple[int, dict[str, Any], dict[str, str]]:
    body = pop.pop_error_body(
        "InvalidAccessKeyId.NotFound",
        "Specified access key is not found.",
        request_id="x",
        host_id="h",
    )
    return 404, body, {}


@pytest.fixture
def server() -> Iterator[TokenServer]:
    state = TokenServer()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status, payload, extra = state.answer(
                self.command, self.path, dict(self.headers.items()), body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


# --- getToken -------------------------------------------------------------------------


def test_get_token_sends_what_aliyunsdkcore_sends(server: TokenServer) -> None:
    token = getToken(AKID, SECRET, url=server.url)
    assert token == server.issued[0]
    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == "/"
    assert req.body == b""
    assert req.headers["Content-Length"] == "0"
    assert req.headers["x-acs-action"] == "CreateToken"
    p = req.params
    assert p["SignatureType"] == ""
    assert re.fullmatch(r"[0-9a-f]{32}", p["SignatureNonce"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["Timestamp"])
    assert abs(pop.parse_timestamp(p["Timestamp"]) - time.time()) < 60
    assert (p["Action"], p["Version"], p["RegionId"], p["Format"]) == (
        "CreateToken", "2019-02-28", "cn-shanghai", "JSON",
    )  # fmt: skip
    assert (p["SignatureMethod"], p["SignatureVersion"]) == ("HMAC-SHA1", "1.0")


def test_get_token_accepts_bare_host_port_and_region(server: TokenServer) -> None:
    getToken(AKID, SECRET, domain="ap-southeast-1", url=f"127.0.0.1:{server.port}")
    assert server.requests[0].params["RegionId"] == "ap-southeast-1"


@pytest.mark.parametrize(("akid", "secret"), [(None, SECRET), (AKID, None), ("", SECRET)])
def test_get_token_without_credentials_raises(
    server: TokenServer, akid: str | None, secret: str | None
) -> None:
    with pytest.raises(GetTokenFailed, match="No akid or aksecret"):
        getToken(akid, secret, url=server.url)
    assert server.requests == []


def test_wrong_secret_is_reported_as_invalid_secret(server: TokenServer) -> None:
    with pytest.raises(GetTokenFailed) as info:
        getToken(AKID, "wrong", url=server.url)
    assert "InvalidAccessKeySecret" in str(info.value)
    assert "wrong" not in str(info.value).replace("InvalidAccessKeySecret", "")


def test_server_errors_map_to_get_token_failed_without_retry(server: TokenServer) -> None:
    server.script.append(_not_found())
    with pytest.raises(GetTokenFailed, match=r"HTTP 404 InvalidAccessKeyId\.NotFound"):
        getToken(AKID, SECRET, url=server.url)
    server.script.append((200, {"RequestId": "r", "ErrMsg": "No permission!"}, {}))
    with pytest.raises(GetTokenFailed, match="No permission!"):
        getToken(AKID, SECRET, url=server.url)
    server.script.append(_throttled())
    with pytest.raises(GetTokenFailed, match="Throttling.User"):
        getToken(AKID, SECRET, url=server.url)  # the original API does not retry
    assert len(server.requests) == 3


def test_connection_refused_is_get_token_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GetTokenFailed, match="failed") as info:
        getToken(AKID, SECRET, url=f"http://127.0.0.1:{port}")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://h:notaport", "http://h/?a=b"])
def test_bad_token_url_is_invalid_parameter(url: str) -> None:
    with pytest.raises(InvalidParameter):
        getToken(AKID, SECRET, url=url)


# --- fetch_token backoff ----------------------------------------------------------------


def test_fetch_token_backs_off_on_throttling_then_succeeds(server: TokenServer) -> None:
    server.script += [_throttled(), _throttled()]
    sleeps: list[float] = []
    grant = fetch_token(AKID, SECRET, url=server.url, backoff=Backoff(3), sleep=sleeps.append)
    assert grant.token == server.issued[0]
    assert len(server.requests) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # equal-jitter doubling


def test_fetch_token_honours_retry_after_within_cap(server: TokenServer) -> None:
    server.script += [_throttled("3"), _throttled("100")]
    sleeps: list[float] = []
    fetch_token(AKID, SECRET, url=server.url, backoff=Backoff(2), sleep=sleeps.append)
    assert sleeps == [3.0, 8.0]


def test_fetch_token_retries_are_bounded(server: TokenServer) -> None:
    server.script += [_throttled() for _ in range(5)]
    sleeps: list[float] = []
    with pytest.raises(GetTokenFailed, match="Throttling"):
        fetch_token(AKID, SECRET, url=server.url, backoff=Backoff(2), sleep=sleeps.append)
    assert len(server.requests) == 3
    assert len(sleeps) == 2


def test_fetch_token_retries_503_without_pop_body(server: TokenServer) -> None:
    server.script.append((503, {}, {}))
    sleeps: list[float] = []
    fetch_token(AKID, SECRET, url=server.url, backoff=Backoff(1), sleep=sleeps.append)
    assert len(server.requests) == 2


# --- TokenProvider ----------------------------------------------------------------------


def test_provider_caches_until_refresh(server: TokenServer) -> None:
    provider = TokenProvider(AKID, SECRET, url=server.url)
    assert provider.get() == provider.get() == server.issued[0]
    assert len(server.requests) == 1
    assert provider.expire_time is not None
    assert SECRET not in repr(provider) and server.issued[0] not in repr(provider)


def test_provider_refreshes_ahead_without_blocking(server: TokenServer) -> None:
    clock = FakeClock()
    server.clock = clock
    server.lifetime_s = 1000  # margin = max(60 s, 10 % = 100 s) = 100 s
    provider = TokenProvider(AKID, SECRET, url=server.url, clock=clock)
    first = provider.get()
    clock.now += 899
    assert provider.get() == first
    assert len(server.requests) == 1
    clock.now += 2  # inside the margin: old token returned at once, refresh in background
    server.delay_s = 0.2
    assert provider.get() == first
    _wait_for(lambda: len(server.issued) == 2)
    _wait_for(lambda: provider.get() == server.issued[1])
    assert len(server.requests) == 2


def test_provider_fetches_synchronously_once_expired(server: TokenServer) -> None:
    clock = FakeClock()
    server.clock = clock
    provider = TokenProvider(AKID, SECRET, url=server.url, clock=clock)
    first = provider.get()
    clock.now += 3600
    second = provider.get()
    assert second != first and second == server.issued[1]


def test_provider_single_flight_under_50_threads(server: TokenServer) -> None:
    server.delay_s = 0.3
    provider = TokenProvider(AKID, SECRET, url=server.url)
    barrier = threading.Barrier(50)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait(timeout=10)
        try:
            results.append(provider.get())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert len(results) == 50 and set(results) == {server.issued[0]}
    assert len(server.requests) == 1


def test_provider_failed_flight_fails_every_waiter_once(server: TokenServer) -> None:
    server.delay_s = 0.2
    server.script.append(_not_found())
    provider = TokenProvider(AKID, SECRET, url=server.url)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            outcomes.append(provider.get())
        except GetTokenFailed as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert outcomes == ["GetTokenFailed"] * 10
    assert len(server.requests) == 1
    server.delay_s = 0
    assert provider.get() == server.issued[0]  # the next call starts a new flight


def test_provider_backs_off_on_throttling(server: TokenServer) -> None:
    server.script += [_throttled(), _throttled()]
    sleeps: list[float] = []
    provider = TokenProvider(AKID, SECRET, url=server.url, backoff=Backoff(2), sleep=sleeps.append)
    assert provider.get() == server.issued[0]
    assert len(sleeps) == 2 and len(server.requests) == 3


def test_provider_keeps_old_token_when_background_refresh_fails(server: TokenServer) -> None:
    clock = FakeClock()
    server.clock = clock
    provider = TokenProvider(
        AKID, SECRET, url=server.url, clock=clock, backoff=NO_RETRY, retry_refresh_s=30
    )
    first = provider.get()
    clock.now += 3600 - 100  # inside the 360 s margin
    server.script.append(_not_found())
    assert provider.get() == first
    _wait_for(lambda: len(server.requests) == 2)
    _wait_for(lambda: provider._flight is None)
    assert provider.get() == first  # no new request before retry_refresh_s
    assert len(server.requests) == 2
    clock.now += 31
    assert provider.get() == first
    _wait_for(lambda: provider.get() == server.issued[-1] != first)


def test_provider_invalidate_forces_a_new_token(server: TokenServer) -> None:
    provider = TokenProvider(AKID, SECRET, url=server.url)
    first = provider.get()
    provider.invalidate()
    assert provider.get() != first
    assert len(server.requests) == 2


def test_provider_rejects_a_token_already_expired_by_local_clock(server: TokenServer) -> None:
    clock = FakeClock(time.time() + 10 * 86400)  # local clock 10 days ahead of the server
    provider = TokenProvider(AKID, SECRET, url=server.url, clock=clock)
    with pytest.raises(GetTokenFailed, match="system time"):
        provider.get()


def test_provider_needs_credentials() -> None:
    with pytest.raises(InvalidParameter):
        TokenProvider("", SECRET)


async def test_provider_aget_shares_one_flight_with_threads(server: TokenServer) -> None:
    server.delay_s = 0.3
    provider = TokenProvider(AKID, SECRET, url=server.url)
    loop = asyncio.get_running_loop()
    threaded = [loop.run_in_executor(None, provider.get) for _ in range(5)]
    coros = [provider.aget() for _ in range(20)]
    results = await asyncio.wait_for(asyncio.gather(*coros, *threaded), timeout=20)
    assert set(results) == {server.issued[0]}
    assert len(server.requests) == 1


async def test_provider_aget_cancellation_does_not_cancel_the_flight(
    server: TokenServer,
) -> None:
    server.delay_s = 0.3
    provider = TokenProvider(AKID, SECRET, url=server.url)
    task = asyncio.create_task(provider.aget())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(provider.aget(), timeout=10) == server.issued[0]
    assert len(server.requests) == 1


async def test_provider_aget_raises_get_token_failed(server: TokenServer) -> None:
    server.script.append(_not_found())
    provider = TokenProvider(AKID, SECRET, url=server.url)
    with pytest.raises(GetTokenFailed, match="NotFound"):
        await asyncio.wait_for(provider.aget(), timeout=10)


def test_secrets_and_tokens_never_logged(
    server: TokenServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="nls")
    server.script += [_throttled(), _not_found()]
    provider = TokenProvider(AKID, SECRET, url=server.url, backoff=Backoff(3), sleep=lambda _: None)
    with pytest.raises(GetTokenFailed):
        provider.get()
    token = provider.get()
    assert caplog.records  # the retry and the failure were logged…
    assert SECRET not in caplog.text and token not in caplog.text  # …without secrets
    assert all("Signature=" not in r.getMessage() for r in caplog.records)


# --- token_url_for ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gateway", "expected"),
    [
        ("wss://nls-gateway.cn-shanghai.aliyuncs.com/ws/v1", DEFAULT_TOKEN_URL),
        ("wss://nls-gateway-cn-beijing.aliyuncs.com/ws/v1", DEFAULT_TOKEN_URL),
        ("ws://nls-gateway-cn-shanghai-internal.aliyuncs.com:80/ws/v1", DEFAULT_TOKEN_URL),
        ("wss://nls-gateway-ap-southeast-1.aliyuncs.com/ws/v1", INTL_TOKEN_URL),
        ("ws://127.0.0.1:8080/ws/v1", "http://127.0.0.1:8080"),
        ("wss://speech.example.org/ws/v1?token=x", "https://speech.example.org"),
        ("ws://user:pw@[::1]:9000/ws/v1", "http://[::1]:9000"),
        ("WS://LocalHost/ws/v1", "http://LocalHost"),
    ],
)
def test_token_url_for_gateway(
    gateway: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NLS_TOKEN_URL", raising=False)
    assert token_url_for(gateway) == expected


def test_token_url_for_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = "wss://nls-gateway.cn-shanghai.aliyuncs.com/ws/v1"
    monkeypatch.setenv("NLS_TOKEN_URL", "http://10.0.0.1:1")
    assert token_url_for(gateway) == "http://10.0.0.1:1"
    assert token_url_for(gateway, explicit="http://explicit") == "http://explicit"


@pytest.mark.parametrize("gateway", ["ftp://x/ws/v1", "/ws/v1", "ws:///ws/v1"])
def test_token_url_for_rejects_bad_gateway(gateway: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NLS_TOKEN_URL", raising=False)
    with pytest.raises(InvalidParameter):
        token_url_for(gateway)


def test_provider_infers_international_region(server: TokenServer) -> None:
    provider = TokenProvider(AKID, SECRET, url=INTL_TOKEN_URL)
    assert provider._region == "ap-southeast-1"
