"""The token service client: one signed ``CreateToken`` request (protocol.md §11).

This module owns talking to the token service: the endpoints (``DEFAULT_TOKEN_URL``, the
international one, ``token_url_for`` choosing one for a gateway URL), the request itself
(one POST over stdlib ``http.client``, params signed by ``nls.protocol.pop``, exactly as
aliyunsdkcore sends it), the ``Backoff`` retry policy for throttling and transport errors,
and ``fetch_token``, which puts them together. Caching is ``nls.token.provider``'s.

It must never log or put into an exception message a token, an AccessKey secret or a
signature.
"""

from __future__ import annotations

import http.client
import logging
import os
import platform
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from nls.exception import GetTokenFailed, InvalidParameter
from nls.protocol import pop
from nls.protocol.pop import TokenGrant
from nls.version import __version__

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOKEN_HOST",
    "DEFAULT_TOKEN_URL",
    "INTL_TOKEN_URL",
    "NO_RETRY",
    "TOKEN_URL_ENV",
    "Backoff",
    "TokenEndpoint",
    "fetch_token",
    "token_url_for",
]

logger = logging.getLogger("nls.token")

DEFAULT_TOKEN_HOST = "nls-meta.cn-shanghai.aliyuncs.com"
DEFAULT_TOKEN_URL = f"http://{DEFAULT_TOKEN_HOST}"
"""The official token service; aliyunsdkcore talks plain HTTP to it by default (§11.2)."""
INTL_TOKEN_URL = "http://nlsmeta.ap-southeast-1.aliyuncs.com"
"""The international (Singapore) token service, ``RegionId=ap-southeast-1`` (§11.2)."""
TOKEN_URL_ENV = "NLS_TOKEN_URL"
"""Environment variable that overrides the token endpoint in :func:`token_url_for`."""

DEFAULT_TIMEOUT_S = 10.0
_MAX_BODY = 1 << 20
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
    endpoint = TokenEndpoint.parse(url)
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


@dataclass(frozen=True, slots=True)
class TokenEndpoint:
    """Where CreateToken goes: scheme, host, port and request path."""

    scheme: str
    host: str
    port: int | None
    path: str

    @classmethod
    def parse(cls, url: str) -> TokenEndpoint:
        """Parse a token host or origin.

        Raises:
            InvalidParameter: not ``host[:port]`` or ``http(s)://host[:port][/path]``.
        """
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
    endpoint: TokenEndpoint,
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
