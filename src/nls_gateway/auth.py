"""Gateway authentication: credentials, self-verifying tokens, handshake checks and CreateToken.

This module owns who may use the gateway: the ``Credentials`` config (appkeys → projects,
static tokens, AccessKey pairs, dev mode), the ``TokenIssuer`` that mints and checks
tokens without any shared store, the handshake verdict (the documented ``403`` plain-text
bodies, protocol.md §2.2), and the server half of the ``CreateToken`` RPC (§11): parameter
checks, POP signature v1.0 (via ``nls.protocol.pop``), timestamp window, nonce replay
cache and the POP-shaped JSON answers.

It must not touch sockets or parse HTTP framing: the gateway's HTTP layer hands it the
method and the decoded parameters and writes back the ``(status, body)`` it returns. It
never logs tokens or secrets.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import secrets
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import parse_qsl

from nls.exception import InvalidParameter
from nls.protocol import pop
from nls_gateway.tasks.base import Project

__all__ = [
    "Authenticator",
    "Credentials",
    "TokenIssuer",
    "TokenStatus",
    "parse_params",
]

TokenStatus = Literal["ok", "expired", "invalid"]
"""The verdict on a token: accepted, correctly signed but past its expiry, or unknown."""

DEFAULT_LIFETIME_S = 86400
"""Token lifetime; console tokens live 24 h (protocol.md §11.5)."""
TIMESTAMP_WINDOW_S = 900.0
"""POP accepts a request ``Timestamp`` within ±15 minutes of the server clock."""
MAX_NONCES = 100_000
"""Replay-cache capacity; when full of live nonces, CreateToken answers 503 Throttling."""

_TOKEN_MAC_CONTEXT = b"opennls-token-v1\x00"
_MAX_ECHO = 128

# 403 bodies the C++ SDK matches by substring (protocol.md §2.2, §14 item 2).
_MISSING = "Gateway:ACCESS_DENIED:Missing authorization header!"
_INVALID = "Meta:ACCESS_DENIED:The token '{}' is invalid!"
_EXPIRED = "Meta:ACCESS_DENIED:The token '{}' has expired!"

_REQUIRED = (
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
)


class TokenIssuer:
    """Mints and verifies self-verifying tokens; replicas sharing ``secret`` agree.

    Format: exactly 32 lowercase hex characters, like real NLS tokens (§11.4), so clients
    that check the shape keep working::

        token = hex(expire_time as uint32, big-endian)            8 hex  (32 bits)
              + hex(HMAC-SHA256(secret, ctx + those 4 bytes)[:12]) 24 hex (96 bits)

    Why this is safe enough: the only thing a token asserts is "this gateway deployment
    issued me and I expire at T", so it needs an expiry and a MAC, nothing else. A 96-bit
    truncated HMAC is the size IPsec/TLS use (HMAC-SHA1-96, TLS Finished) and within RFC 2104
    §5's advice (at least half the output and at least 80 bits); forging one means about
    2^95 online handshake guesses. The expiry travels in clear — no secret, the CreateToken
    answer states it as ``ExpireTime`` anyway — and uint32 seconds last until 2106. Tokens
    minted in the same second are identical, which is harmless for a bearer token that
    names no user. No store is needed: any replica with the secret verifies any token, and
    a token cannot be revoked before its expiry except by rotating the secret (old secrets
    can be kept in ``previous_secrets`` during a rollover).
    """

    def __init__(
        self,
        secret: bytes,
        lifetime_s: int = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
        *,
        previous_secrets: Iterable[bytes] = (),
    ) -> None:
        """Create an issuer.

        Args:
            secret: the shared signing key, at least 16 bytes (use ``secrets.token_bytes(32)``).
            lifetime_s: seconds from issue to ``ExpireTime``.
            clock: Unix time source.
            previous_secrets: older keys still accepted by :meth:`verify` (rotation).

        Raises:
            InvalidParameter: a key shorter than 16 bytes or a non-positive lifetime.
        """
        keys = [secret, *previous_secrets]
        if any(len(k) < 16 for k in keys):
            raise InvalidParameter("token secret must be at least 16 bytes")
        if lifetime_s <= 0:
            raise InvalidParameter("token lifetime_s must be positive")
        self._keys = keys
        self.lifetime_s = lifetime_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenIssuer(lifetime_s={self.lifetime_s})"

    def issue(self, now: float | None = None) -> tuple[str, int]:
        """Mint a token.

        Args:
            now: Unix time of issue; the clock by default.

        Returns:
            ``(token, expire_time)``, expire_time in Unix seconds.
        """
        issued = self._clock() if now is None else now
        expire_time = min(int(issued) + self.lifetime_s, 0xFFFFFFFF)
        head = struct.pack(">I", expire_time)
        return (head + self._mac(self._keys[0], head)).hex(), expire_time

    def verify(self, token: str, now: float | None = None) -> TokenStatus:
        """Check a token's MAC, then its expiry.

        Args:
            token: the presented token.
            now: Unix time of the check; the clock by default.

        Returns:
            ``ok``, ``expired`` (genuine but past its expiry) or ``invalid``.
        """
        if len(token) != 32 or token.strip("0123456789abcdef"):
            return "invalid"
        raw = bytes.fromhex(token)
        head, mac = raw[:4], raw[4:]
        # MAC first: "has expired" is only ever said about tokens we really issued.
        if not any(hmac.compare_digest(mac, self._mac(key, head)) for key in self._keys):
            return "invalid"
        (expire_time,) = struct.unpack(">I", head)
        checked = self._clock() if now is None else now
        return "ok" if checked < expire_time else "expired"

    @staticmethod
    def _mac(key: bytes, head: bytes) -> bytes:
        return hmac.new(key, _TOKEN_MAC_CONTEXT + head, hashlib.sha256).digest()[:12]


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who may use the gateway. ``repr`` hides tokens and AccessKey secrets."""

    appkeys: Mapping[str, Project] = field(default_factory=dict)
    """appkey → project; an unknown appkey is refused (TaskFailed 40020105)."""
    tokens: frozenset[str] = field(default=frozenset(), repr=False)
    """Static tokens accepted forever (like console debug tokens)."""
    access_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    """AccessKey ID → secret, for CreateToken."""
    dev_mode: bool = False
    """Accept any token (even none) and any appkey; CreateToken accepts unknown AccessKeys."""

    def __post_init__(self) -> None:
        # Freeze the mappings: a shared config must not change under a running gateway.
        for name in ("appkeys", "access_keys"):
            value = dict(getattr(self, name))
            if not all(isinstance(k, str) and k for k in value):
                raise InvalidParameter(f"credentials {name}: keys must be non-empty strings")
            object.__setattr__(self, name, MappingProxyType(value))
        if not all(isinstance(p, Project) for p in self.appkeys.values()):
            raise InvalidParameter("credentials appkeys: values must be Project")
        if not all(isinstance(s, str) and s for s in self.access_keys.values()):
            raise InvalidParameter("credentials access_keys: secrets must be non-empty strings")
        object.__setattr__(self, "tokens", frozenset(self.tokens))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Credentials:
        """Build credentials from plain config data (e.g. a TOML table).

        Args:
            data: ``{"appkeys": {key: {"language", "asr_model", "voice"}}, "tokens": [...],
                "access_keys": {id: secret}, "dev_mode": bool}``; every key optional.

        Returns:
            The credentials.

        Raises:
            InvalidParameter: unknown keys or wrong types.
        """
        unknown = set(data) - {"appkeys", "tokens", "access_keys", "dev_mode"}
        if unknown:
            raise InvalidParameter(f"unknown credentials keys: {sorted(unknown)}")
        try:
            appkeys = {k: Project(**dict(v)) for k, v in dict(data.get("appkeys", {})).items()}
        except TypeError as exc:
            raise InvalidParameter(f"credentials appkeys: {exc}") from None
        tokens = data.get("tokens", [])
        if isinstance(tokens, str) or not all(isinstance(t, str) and t for t in tokens):
            raise InvalidParameter("credentials tokens must be a list of non-empty strings")
        dev_mode = data.get("dev_mode", False)
        if not isinstance(dev_mode, bool):
            raise InvalidParameter("credentials dev_mode must be true or false")
        return cls(appkeys, frozenset(tokens), dict(data.get("access_keys", {})), dev_mode)

    def project_for(self, appkey: str | None) -> Project | None:
        """The project an appkey selects, or None when the appkey is not allowed.

        Args:
            appkey: the command header's ``appkey``.

        Returns:
            Its project; in dev mode unknown appkeys get the default ``Project()``.
        """
        if appkey and appkey in self.appkeys:
            return self.appkeys[appkey]
        return Project() if self.dev_mode else None


def parse_params(data: str | bytes) -> dict[str, str]:
    """Decode a query string or ``application/x-www-form-urlencoded`` body for CreateToken.

    Empty values are kept: aliyunsdkcore signs ``SignatureType=`` (dropping it breaks the
    signature). A repeated name keeps its last value.

    Args:
        data: the raw query (without ``?``) or body.

    Returns:
        name → value.

    Raises:
        InvalidParameter: not UTF-8, or more than 100 fields.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=100))
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidParameter(f"bad CreateToken parameters: {exc}") from None


class Authenticator:
    """Applies :class:`Credentials` and a :class:`TokenIssuer` to handshakes and CreateToken.

    Thread-safe; cheap to call from the event loop (no I/O, a few HMACs).
    """

    def __init__(
        self,
        credentials: Credentials,
        issuer: TokenIssuer | None = None,
        *,
        timestamp_window_s: float = TIMESTAMP_WINDOW_S,
        max_nonces: int = MAX_NONCES,
        host_id: str = "nls-meta.cn-shanghai.aliyuncs.com",
    ) -> None:
        """Create an authenticator.

        Args:
            credentials: who may connect.
            issuer: the token issuer; by default one with a random per-process secret
                (then tokens are valid only on this process — share a secret for replicas).
            timestamp_window_s: allowed |Timestamp − now| for CreateToken.
            max_nonces: replay-cache capacity.
            host_id: ``HostId`` in POP error bodies.
        """
        self.credentials = credentials
        self.issuer = issuer or TokenIssuer(secrets.token_bytes(32))
        self._window = timestamp_window_s
        self._nonces = _NonceCache(max_nonces)
        self._host_id = host_id

    def check_token(self, token: str, now: float | None = None) -> TokenStatus:
        """Judge a token: static tokens and issued tokens; anything in dev mode.

        Args:
            token: the presented token.
            now: Unix time; the issuer's clock by default.

        Returns:
            ``ok``, ``expired`` or ``invalid``.
        """
        if self.credentials.dev_mode or token in self.credentials.tokens:
            return "ok"
        return self.issuer.verify(token, now)

    def check_handshake_token(
        self, token: str | None, now: float | None = None
    ) -> tuple[int, str] | None:
        """Decide a WebSocket handshake (token from ``X-NLS-Token`` or ``?token=``).

        Args:
            token: the token, None (or empty) when the client sent none.
            now: Unix time; the issuer's clock by default.

        Returns:
            None to accept, else ``(403, body)`` with the documented plain-text body
            (§2.2): ``Gateway:ACCESS_DENIED:Missing authorization header!``,
            ``Meta:ACCESS_DENIED:The token '<t>' is invalid!`` or ``…has expired!``.
        """
        if self.credentials.dev_mode:
            return None
        if not token:
            return 403, _MISSING
        verdict = self.check_token(token, now)
        if verdict == "ok":
            return None
        template = _EXPIRED if verdict == "expired" else _INVALID
        return 403, template.format(_echo(token))

    def handle_create_token(
        self, method: str, query: Mapping[str, str], form: Mapping[str, str], now: float
    ) -> tuple[int, dict[str, Any]]:
        """Answer one CreateToken RPC like the real token service (§11).

        Args:
            method: the HTTP method (GET or POST).
            query: decoded query parameters (see :func:`parse_params`).
            form: decoded ``application/x-www-form-urlencoded`` body parameters, or empty.
            now: Unix time of arrival.

        Returns:
            ``(http_status, json_body)``: 200 with ``{"RequestId","NlsRequestId","ErrMsg",
            "Token":{"UserId","Id","ExpireTime"}}``, or a POP error body with 400 (missing /
            invalid parameter, InvalidVersion, InvalidTimeStamp.*, SignatureDoesNotMatch,
            SignatureNonceUsed), 404 (InvalidAction.NotFound, InvalidAccessKeyId.NotFound)
            or 503 (Throttling: replay cache full).
        """
        method = method.upper()
        params = dict(query)
        for name, value in form.items():
            if params.setdefault(name, value) != value:
                return self._error(400, "InvalidParameter", f'"{name}" differs in query and body.')
        for name in ("Action", "Version"):
            if not params.get(name):
                return self._missing(name)
        if params["Version"] != pop.VERSION:
            return self._error(400, "InvalidVersion", "Specified parameter Version is not valid.")
        if params["Action"] != pop.ACTION or method not in ("GET", "POST"):
            # POP answers an unknown action (or method) with 404 and this text.
            msg = "Specified api is not found, please check your url and method."
            return self._error(404, "InvalidAction.NotFound", msg)
        for name in _REQUIRED:
            if not params.get(name):
                return self._missing(name)
        for name, expected in (
            ("SignatureMethod", pop.SIGNATURE_METHOD),
            ("SignatureVersion", pop.SIGNATURE_VERSION),
        ):
            if params[name] != expected:
                return self._error(400, "InvalidParameter", f'Specified "{name}" is not valid.')
        try:
            timestamp = pop.parse_timestamp(params["Timestamp"])
        except ValueError:
            msg = "Specified time stamp or date value is not well formatted."
            return self._error(400, "InvalidTimeStamp.Format", msg)
        if abs(timestamp - now) > self._window:
            msg = "Specified time stamp or date value is expired."
            return self._error(400, "InvalidTimeStamp.Expired", msg)
        check = pop.verify_signature(method, params, self.credentials.access_keys.get)
        if check.outcome == "unknown_key" and not self.credentials.dev_mode:
            return self._error(
                404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        if check.outcome == "mismatch":
            # aliyunsdkcore splits this message on ':' and compares the string to sign.
            msg = (
                "Specified signature is not matched with our calculation. "
                f"server string to sign is:{check.string_to_sign}"
            )
            return self._error(400, "SignatureDoesNotMatch", msg)
        # The nonce is recorded only after the signature checks out, so unauthenticated
        # traffic cannot fill the cache; it is kept while its Timestamp is still acceptable.
        akid = params["AccessKeyId"]
        seen = self._nonces.add((akid, params["SignatureNonce"]), timestamp + self._window, now)
        if seen == "used":
            return self._error(
                400, "SignatureNonceUsed", "Specified signature nonce was used already."
            )
        if seen == "full":
            msg = "Request was denied due to request throttling."
            return self._error(503, "Throttling", msg)
        token, expire_time = self.issuer.issue(now)
        grant = pop.TokenGrant(token, expire_time, _user_id(akid))
        body = pop.create_token_response_body(
            grant, request_id=_request_id(), nls_request_id=uuid.uuid4().hex
        )
        return 200, body

    def _missing(self, name: str) -> tuple[int, dict[str, Any]]:
        msg = (
            f'The input parameter "{name}" that is mandatory for processing this request'
            " is not supplied."
        )
        return self._error(400, "MissingParameter", msg)

    def _error(self, status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        body = pop.pop_error_body(code, message, request_id=_request_id(), host_id=self._host_id)
        return status, body


class _NonceCache:
    """Bounded set of recently used nonces, each forgotten at its own expiry."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._expiry: dict[tuple[str, str], float] = {}
        self._heap: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def add(
        self, key: tuple[str, str], expires_at: float, now: float
    ) -> Literal["new", "used", "full"]:
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, old = heapq.heappop(self._heap)
                if self._expiry.get(old, now + 1) <= now:
                    del self._expiry[old]
            if key in self._expiry:
                return "used"
            # Refuse rather than evict a live nonce: evicting would let it be replayed.
            if len(self._expiry) >= self._capacity:
                return "full"
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return "new"

    def __len__(self) -> int:
        return len(self._expiry)


def _request_id() -> str:
    """A POP ``RequestId``: dashed upper-case UUID, like ``E979F086-13F4-…``."""
    return str(uuid.uuid4()).upper()


def _user_id(akid: str) -> str:
    """A stable 16-digit ``UserId`` per AccessKey (real UIDs are 16 digits)."""
    digest = hashlib.sha256(akid.encode("utf-8")).digest()
    return str(10**15 + int.from_bytes(digest[:8], "big") % (9 * 10**15))


def _echo(token: str) -> str:
    """The token as echoed in a 403 body: printable ASCII, short (Java caps bodies at 8 KiB)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in token[:_MAX_ECHO])
    return clean + ("..." if len(token) > _MAX_ECHO else "")
