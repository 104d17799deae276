"""TokenProvider: a thread-safe, caching, single-flight source of tokens (``nls.token``).

This module owns keeping a token: caching it by ``ExpireTime``, refreshing ahead of
expiry in a background thread, and sending one request however many threads and
coroutines need a token at once. Each request is ``nls.token.service.fetch_token``.

It must never log or put into an exception message a token or an AccessKey secret.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from nls.exception import GetTokenFailed, InvalidParameter
from nls.protocol import pop
from nls.protocol.pop import TokenGrant
from nls.token.service import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOKEN_URL,
    Backoff,
    TokenEndpoint,
    fetch_token,
)

__all__ = ["TokenProvider"]

logger = logging.getLogger("nls.token")

# A token this close to its ExpireTime is not handed out: the handshake still has to reach
# the gateway before the gateway's "has expired" check (403 Meta:ACCESS_DENIED).
_USABLE_FOR_S = 5.0


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
        endpoint = TokenEndpoint.parse(url)  # fail fast on a bad url
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
