"""Getting NLS tokens: the original ``getToken`` and a caching ``TokenProvider`` (``nls.token``).

This module owns the client side of the token service (protocol.md §11): one signed
``CreateToken`` POST over stdlib ``http.client`` (no aliyunsdkcore, no requests), the
original ``getToken(akid, aksecret, domain, version, url)`` on top of it, a thread-safe
``TokenProvider`` that caches by ``ExpireTime``, refreshes ahead of expiry, sends one
request however many sessions need a token at once (single-flight) and backs off on
throttling, and ``token_url_for``, which picks the token endpoint for a gateway URL.
Signing and parsing live in ``nls.protocol.pop``.

It must never log or put into an exception message a token, an AccessKey secret or a
signature.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import logging
import os
import platform
import random
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from urllib.parse import urlsplit

from nls.exception import GetTokenFailed, InvalidParameter
from nls.protocol import pop
from nls.protocol.pop import TokenGrant
from nls.version import __version__

__all__ = [
    "DEFAULT_TOKEN_URL",
    "INTL_TOKEN_URL",
    "NO_RETRY",
    "TOKEN_URL_ENV",
    "Backoff",
    "TokenGrant",
    "TokenProvider",
    "fetch_token",
    "getToken",
    "token_url_for",
]

logger = logging.getLogger(__name__)

DEFAULT_TOKEN_HOST = "nls-meta.cn-shanghai.aliyuncs.com"
DEFAULT_TOKEN_URL = f"http://{DEFAULT_TOKEN_HOST}"
"""The official token service; aliyunsdkcore talks plain HTTP to it by default (§11.2)."""
INTL_TOKEN_URL = "http://nlsmeta.ap-southeast-1.aliyuncs.com"
"""The international (Singapore) token service, ``RegionId=ap-southeast-1`` (§11.2)."""
TOKEN_URL_ENV = "NLS_TOKEN_URL"
"""Environment variable that overrides the token endpoint in :func:`token_url_for`."""

DEFAULT_TIMEOUT_S = 10.0
_MAX_BODY = 1 << 20
# A token this close to its ExpireTime is not handed out: the handshake still has to reach
# the gateway before the gateway's "has expired" check (403 Meta:ACCESS_DENIED).
_USABLE_FOR_S = 5.0
_USER_AGENT = f"OpenNLS/{__version__} Python/{platform.python_version()}"


@dataclass(frozen=True, slots=True)
class Backoff:
    """How to retry throttling (``Throttling*`` codes, HTTP 429/503) and transport errors."""

    max_retries: int = 3
    """Extra attempts after a retryable failure (0 = one attempt)."""
    base_s: float = 0.5
    """The first pause; it doubles per retry."""
    max_s: float = 8.0
    """Cap on one pause, also on a server's ``Retry-After``."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to pause after ``attempt`` retries, given the server's ``Retry-After``."""
        delay = min(self.max_s, self.base_s * 2.0**attempt)
        # Equal jitter: many clients throttled together do not come back together.
        delay = delay / 2 + random.uniform(0, delay / 2)
        if retry_after is not None:
            delay = min(self.max_s, max(delay, retry_after))
        return delay


NO_RETRY = Backoff(max_retries=0)
"""One attempt only, like the original ``getToken``."""


def getToken(  # noqa: N802 - original name
    akid: str | None,
    aksecret: str | None,
    domain: str = pop.DEFAULT_REGION,
    version: str = pop.VERSION,
    url: str = DEFAULT_TOKEN_HOST,
) -> str:
    """Get a token from the token service with an AccessKey pair (original API).

    One ``CreateToken`` POST, exactly as aliyunsdkcore sends it (§11.2), no retries.

    Args:
        akid: AccessKey ID.
        aksecret: AccessKey secret.
        domain: the region (``RegionId``), despite its name; default ``cn-shanghai``.
        version: API version, default ``2019-02-28``.
        url: the token host (``nls-meta.cn-shanghai.aliyuncs.com``, spoken to over http
            like aliyunsdkcore) or a full origin such as ``http://127.0.0.1:8080`` for a
            local gateway; ``https://…`` uses TLS.

    Returns:
        The token (``Token.Id``), for ``X-NLS-Token``.

    Raises:
        GetTokenFailed: no akid/aksecret, the request failed, or the answer had no token;
            the message carries the server's Code/Message/RequestId.
        InvalidParameter: ``url`` is not an http(s) host or origin.
    """
    if not akid or not aksecret:
        raise GetTokenFailed("No akid or aksecret")
    return fetch_token(akid, aksecret, region=domain, version=version, url=url).token


def fetch_token(
    akid: str,
    aksecret: str,
    *,
    region: str = pop.DEFAULT_REGION,
    version: str = pop.VERSION,
    url: str = DEFAULT_TOKEN_URL,
    timeout: float = DEFAULT_TIMEOUT_S,
    backoff: Backoff = NO_RETRY,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenGrant:
    """Send ``CreateToken`` and return the token with its expiry (blocking).

    Throttling and transport errors are retried as ``backoff`` says; others fail at once.

    Args:
        akid: AccessKey ID.
        aksecret: AccessKey secret.
        region: ``RegionId``.
        version: API version.
        url: token host or origin (see :func:`getToken`).
        timeout: socket timeout per attempt, in seconds.
        backoff: the retry policy; by default a single attempt.
        clock: Unix time source for ``Timestamp``.
        sleep: how to wait between attempts.

    Returns:
        The :class:`TokenGrant`.

    Raises:
        GetTokenFailed: the last attempt failed (see :func:`getToken`).
        InvalidParameter: bad ``url``.
    """
    endpoint = _Endpoint.parse(url)
    attempt = 0
    while True:
        result = _attempt(endpoint, akid, aksecret, region, version, timeout, clock())
        if isinstance(result, TokenGrant):
            return result
        if not result.retryable or attempt >= backoff.max_retries:
            raise GetTokenFailed(result.message)
        delay = backoff.delay(attempt, result.retry_after)
        attempt += 1
        logger.info(
            "! %s; retry %d/%d in %.2f s", result.message, attempt, backoff.max_retries, delay
        )
        sleep(delay)


def token_url_for(gateway_url: str, explicit: str | None = None) -> str:
    """Pick the token endpoint that belongs to a gateway URL.

    Order: ``explicit`` → env ``NLS_TOKEN_URL`` → the official service for Alibaba Cloud
    gateways (``*.aliyuncs.com``; ``ap-southeast-1`` hosts → ``nlsmeta.ap-southeast-1``;
    tokens from Shanghai work in every mainland region) → otherwise the gateway's own HTTP
    origin (``ws://h:p/ws/v1`` → ``http://h:p``, ``wss`` → ``https``), where a local
    gateway serves ``CreateToken``.

    Args:
        gateway_url: the WebSocket URL the session will connect to.
        explicit: a token URL given by the caller, used as is.

    Returns:
        A token host or origin for :func:`getToken`/:class:`TokenProvider`.

    Raises:
        InvalidParameter: ``gateway_url`` is not a ws/wss/http/https URL with a host.
    """
    if explicit:
        return explicit
    from_env = os.environ.get(TOKEN_URL_ENV, "").strip()
    if from_env:
        return from_env
    parts = urlsplit(gateway_url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("ws", "wss", "http", "https") or not host:
        raise InvalidParameter(f"gateway url must be ws(s)://host[:port]/…, got {gateway_url!r}")
    if host == "aliyuncs.com" or host.endswith(".aliyuncs.com"):
        return INTL_TOKEN_URL if "ap-southeast-1" in host else DEFAULT_TOKEN_URL
    http_scheme = "https" if scheme in ("wss", "https") else "http"
    netloc = parts.netloc.rpartition("@")[2]  # never carry userinfo over
    return f"{http_scheme}://{netloc}"


class TokenProvider:
    """A thread-safe, caching source of tokens for one AccessKey pair.

    Theory of operation: a token is handed out while ``now < refresh_at``. From
    ``refresh_at`` (``ExpireTime`` minus a margin of ``margin_ratio`` of the lifetime, at
    least ``min_margin_s``, at most half the lifetime) until shortly before ``ExpireTime``
    the cached token is still handed out while one background thread fetches its successor
    (refresh-ahead: no caller waits). Without a usable token, the first caller starts a
    *flight* (one ``CreateToken`` request, with bounded throttling backoff) and every other
    caller — thread or coroutine — waits for that same flight, so N sessions starting at once
    send exactly one request. A failed flight fails all its waiters; the next call starts a
    new one. A failed background refresh keeps the old token and retries after
    ``retry_refresh_s``.

    ``get()`` blocks; ``aget()`` never blocks the event loop (the request runs in a thread).
    The secret is kept private and never logged; ``repr`` shows neither token nor secret.
    """

    def __init__(
        self,
        akid: str,
        aksecret: str,
        *,
        url: str = DEFAULT_TOKEN_URL,
        region: str | None = None,
        version: str = pop.VERSION,
        timeout: float = DEFAULT_TIMEOUT_S,
        backoff: Backoff = Backoff(),  # noqa: B008 - frozen, shared safely
        margin_ratio: float = 0.1,
        min_margin_s: float = 60.0,
        retry_refresh_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a provider; nothing is fetched until the first ``get()``/``aget()``.

        Args:
            akid: AccessKey ID.
            aksecret: AccessKey secret.
            url: token host or origin (see :func:`token_url_for`).
            region: ``RegionId``; by default ``ap-southeast-1`` for that region's host,
                else ``cn-shanghai``.
            version: API version.
            timeout: socket timeout per request.
            backoff: retry policy for throttling/transport errors, per flight.
            margin_ratio: refresh this fraction of the lifetime before expiry.
            min_margin_s: but at least this many seconds before.
            retry_refresh_s: after a failed background refresh, wait this long.
            clock: Unix time source (tests inject a fake one).
            sleep: how to wait between retries.

        Raises:
            InvalidParameter: empty akid/aksecret or a bad url.
        """
        if not akid or not aksecret:
            raise InvalidParameter("TokenProvider needs both akid and aksecret")
        endpoint = _Endpoint.parse(url)  # fail fast on a bad url
        self._url = url
        self._region = region or (
            "ap-southeast-1" if "ap-southeast-1" in endpoint.host else pop.DEFAULT_REGION
        )
        self._fetch: Callable[[], TokenGrant] = functools.partial(
            fetch_token, akid, aksecret, region=self._region, version=version, url=url,
            timeout=timeout, backoff=backoff, clock=clock, sleep=sleep,
        )  # fmt: skip
        self._margin_ratio = margin_ratio
        self._min_margin_s = min_margin_s
        self._retry_refresh_s = retry_refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._grant: TokenGrant | None = None
        self._refresh_at = 0.0
        self._flight: Future[TokenGrant] | None = None

    def __repr__(self) -> str:
        return f"TokenProvider(url={self._url!r}, expire_time={self.expire_time})"

    @property
    def expire_time(self) -> int | None:
        """``ExpireTime`` (Unix seconds) of the cached token, or None."""
        grant = self._grant
        return grant.expire_time if grant is not None else None

    def get(self) -> str:
        """Return a valid token, fetching one if needed (blocking, thread-safe).

        Returns:
            The token for ``X-NLS-Token``.

        Raises:
            GetTokenFailed: the flight this call waited for failed.
        """
        state = self._acquire()
        if isinstance(state, str):
            return state
        flight, leader = state
        if leader:
            self._run_flight(flight)
        return flight.result().token

    async def aget(self) -> str:
        """Return a valid token without blocking the event loop.

        Same cache and single-flight as :meth:`get` (threads and coroutines share flights);
        a cancelled ``aget`` does not cancel the shared request.

        Returns:
            The token for ``X-NLS-Token``.

        Raises:
            GetTokenFailed: the flight this call waited for failed.
        """
        state = self._acquire()
        if isinstance(state, str):
            return state
        flight, leader = state
        if leader:
            self._start_thread(flight)
        return (await asyncio.wrap_future(flight)).token

    def invalidate(self) -> None:
        """Forget the cached token (e.g. the gateway answered ``…has expired!``)."""
        with self._lock:
            self._grant = None
            self._refresh_at = 0.0

    # --- internals ---------------------------------------------------------------------

    def _acquire(self) -> str | tuple[Future[TokenGrant], bool]:
        """Decide under the lock: a cached token, or the flight to wait for and whether to
        lead it (the leader runs the request; everybody else only waits)."""
        with self._lock:
            now = self._clock()
            grant = self._grant
            if grant is not None and now + _USABLE_FOR_S < grant.expire_time:
                if now >= self._refresh_at and self._flight is None:
                    self._start_thread(self._new_flight())  # refresh-ahead, nobody waits
                return grant.token
            if self._flight is not None:
                return self._flight, False
            return self._new_flight(), True

    def _new_flight(self) -> Future[TokenGrant]:
        flight: Future[TokenGrant] = Future()
        # RUNNING futures cannot be cancelled: a cancelled waiter (asyncio.wrap_future
        # propagates cancellation) must not cancel the request others are waiting for.
        flight.set_running_or_notify_cancel()
        self._flight = flight
        return flight

    def _start_thread(self, flight: Future[TokenGrant]) -> None:
        threading.Thread(
            target=self._run_flight, args=(flight,), name="nls-token-fetch", daemon=True
        ).start()

    def _run_flight(self, flight: Future[TokenGrant]) -> None:
        try:
            grant = self._fetch()
            now = self._clock()
            lifetime = grant.expire_time - now
            if lifetime <= _USABLE_FOR_S:
                raise GetTokenFailed(
                    f"CreateToken returned ExpireTime {grant.expire_time}, already past by the"
                    f" local clock ({int(now)}); check the system time"
                )
        except BaseException as exc:
            with self._lock:
                self._flight = None
                if self._grant is not None:
                    # Keep the still-valid token; try again later, not on every call.
                    self._refresh_at = self._clock() + self._retry_refresh_s
            logger.warning("! token request failed: %s", exc)
            if isinstance(exc, Exception):
                flight.set_exception(exc)
                return
            # KeyboardInterrupt & co. belong to the leader's thread; waiters get an error.
            flight.set_exception(GetTokenFailed("the token request was interrupted"))
            raise
        margin = min(max(self._min_margin_s, self._margin_ratio * lifetime), lifetime / 2)
        with self._lock:
            self._grant = grant
            self._refresh_at = grant.expire_time - margin
            self._flight = None
        logger.debug(
            "= token fetched, valid for %d s, refresh in %d s", lifetime, lifetime - margin
        )
        flight.set_result(grant)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """Where CreateToken goes: scheme, host, port and request path."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, url: str) -> _Endpoint:
        # The original `url` is a bare host ("nls-meta.cn-shanghai.aliyuncs.com"), which
        # aliyunsdkcore reaches over plain http (§11.2); a full origin is also accepted.
        text = url.strip()
        parts = urlsplit(text if "://" in text else f"http://{text}")
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            port = -1
        if scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.query:
            raise InvalidParameter(
                f"token url must be host[:port] or http(s)://host[:port], got {url!r}"
            )
        return cls(scheme, parts.hostname, port, parts.path or "/")

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port else "")


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed attempt: a safe message and whether backing off may help."""

    message: str
    retryable: bool
    retry_after: float | None = None


def _attempt(
    endpoint: _Endpoint,
    akid: str,
    aksecret: str,
    region: str,
    version: str,
    timeout: float,
    now: float,
) -> TokenGrant | _Failure:
    """One CreateToken POST: params in the query, empty body, like aliyunsdkcore (§11.2)."""
    params = pop.create_token_params(
        akid,
        timestamp=pop.format_timestamp(now),
        nonce=uuid.uuid4().hex,  # aliyunsdkcore: 32 hex, unique per request
        region_id=region,
        version=version,
    )
    signed = pop.sign_params("POST", params, aksecret)
    conn: http.client.HTTPConnection
    if endpoint.scheme == "https":
        conn = http.client.HTTPSConnection(
            endpoint.host, endpoint.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            f"{endpoint.path}?{pop.encode_query(signed)}",
            body=b"",
            headers={
                "Accept": "application/json",
                "User-Agent": _USER_AGENT,
                "x-acs-version": version,
                "x-acs-action": pop.ACTION,
            },
        )
        response = conn.getresponse()
        status, body = response.status, response.read(_MAX_BODY)
        retry_after = _seconds(response.getheader("Retry-After", ""))
    except (OSError, http.client.HTTPException) as exc:
        # Transport errors: connection refused, timeout, reset — worth a retry.
        reason = f"{type(exc).__name__}: {exc}"
        return _Failure(f"CreateToken request to {endpoint.origin} failed: {reason}", True)
    finally:
        conn.close()
    if 200 <= status < 300:
        try:
            return pop.parse_create_token_response(status, body)
        except GetTokenFailed as exc:
            return _Failure(str(exc), False)
    err = pop.parse_pop_error(status, body)
    message = f"CreateToken failed: {err.describe()}"
    if err.code == "SignatureDoesNotMatch":
        # aliyunsdkcore's rule: if the server signed the same string we did, only the
        # secret can differ → it reports InvalidAccessKeySecret instead.
        server_sts = err.message.partition("server string to sign is:")[2]
        if server_sts == pop.string_to_sign("POST", params):
            message = (
                f"CreateToken failed: HTTP {status} InvalidAccessKeySecret: Specified Access"
                f" Key Secret is not valid. (RequestId: {err.request_id})"
            )
    return _Failure(message, err.is_throttling, retry_after)


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # absent, or an HTTP-date Retry-After: use our own backoff
