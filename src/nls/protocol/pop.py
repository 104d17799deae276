"""POP RPC signature v1.0 and the ``CreateToken`` wire format, for both sides (protocol.md §11).

This module owns the token service's wire rules: RFC 3986 percent-encoding, the
canonicalized query, the string-to-sign, the HMAC-SHA1 signature (key ``secret + "&"``),
the ``CreateToken`` request parameters, the success and POP error JSON bodies, and their
parsing. The SDK (``nls.token``) signs and parses with it; the gateway
(``nls_gateway.auth``) verifies and answers with it, so both halves agree byte for byte.

It must not do I/O, read a clock or draw random numbers: callers pass ``Timestamp`` and
``SignatureNonce`` in, and take strings/dicts out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import quote

from nls.exception import GetTokenFailed

__all__ = [
    "ACTION",
    "DEFAULT_REGION",
    "SIGNATURE_METHOD",
    "SIGNATURE_VERSION",
    "VERSION",
    "PopError",
    "SignatureCheck",
    "TokenGrant",
    "canonicalized_query",
    "create_token_params",
    "create_token_response_body",
    "encode_query",
    "format_timestamp",
    "parse_create_token_response",
    "parse_pop_error",
    "parse_timestamp",
    "percent_encode",
    "pop_error_body",
    "sign",
    "sign_params",
    "string_to_sign",
    "verify_signature",
]

ACTION = "CreateToken"
"""The RPC action name of the token service."""
VERSION = "2019-02-28"
"""The only API version of ``CreateToken`` (the SDK's ``version`` default)."""
DEFAULT_REGION = "cn-shanghai"
"""``RegionId`` the official SDK sends (its ``domain`` argument)."""
SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# POP flow-control codes: "Throttling", "Throttling.User", "Throttling.Api", … — the
# client backs off on these (and on HTTP 429/503) instead of failing at once.
_THROTTLING_PREFIX = "Throttling"
_THROTTLING_HTTP = frozenset({429, 503})


# --- signature (§11.3) ------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """Percent-encode one name or value the POP way (§11.3 step 2).

    RFC 3986 unreserved characters ``A–Z a–z 0–9 - _ . ~`` stay; every other UTF-8 byte
    becomes ``%XX`` with upper-case hex, so space is ``%20`` (never ``+``) and ``*`` is
    ``%2A``. This equals the SDKs' ``quote_plus`` + ``+→%20``, ``*→%2A``, ``%7E→~``.

    Args:
        value: the text to encode.

    Returns:
        The encoded text (ASCII only).
    """
    # urllib's always-safe set is exactly the RFC 3986 unreserved set (Python >= 3.7).
    return quote(value.encode("utf-8"), safe="")


def canonicalized_query(params: Mapping[str, str]) -> str:
    """Build the canonicalized query of §11.3 step 3 (``Signature`` itself is left out).

    Args:
        params: every request parameter (query ∪ form body), empty values included —
            aliyunsdkcore sends and signs ``SignatureType=``.

    Returns:
        ``name=value`` pairs, percent-encoded, sorted by encoded name, joined with ``&``.
    """
    pairs = sorted(
        (percent_encode(name), percent_encode(value))
        for name, value in params.items()
        if name != "Signature"
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """Build the string-to-sign of §11.3 step 4.

    The path is always ``/`` in the signature, even when a client posts elsewhere (the C++
    SDK posts to ``/pop/2019-02-28/tokens`` and still signs ``%2F``).

    Args:
        method: the HTTP method; it is upper-cased.
        params: the request parameters (``Signature`` is ignored).

    Returns:
        ``METHOD&%2F&<pe(canonicalized query)>``.
    """
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def sign(text: str, secret: str) -> str:
    """Sign a string-to-sign (§11.3 step 5).

    Args:
        text: the string-to-sign.
        secret: the AccessKey secret; the HMAC key is ``secret + "&"``.

    Returns:
        Base64 of HMAC-SHA1, e.g. ``D/kI7h5xr97OTnuTaLl2mMWRvD4=``.
    """
    digest = hmac.new(f"{secret}&".encode(), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_params(method: str, params: Mapping[str, str], secret: str) -> dict[str, str]:
    """Return a copy of ``params`` with its ``Signature`` added.

    Args:
        method: the HTTP method the request will use.
        params: the unsigned parameters.
        secret: the AccessKey secret.

    Returns:
        A new dict: ``params`` plus ``Signature``.
    """
    signed = dict(params)
    signed["Signature"] = sign(string_to_sign(method, params), secret)
    return signed


def encode_query(params: Mapping[str, str]) -> str:
    """Serialize parameters into a URL query string (§11.3 step 6).

    Args:
        params: the (signed) parameters, in the order to send them.

    Returns:
        ``name=value&…`` with the POP percent-encoding (``Signature``'s ``=``/``/``/``+``
        become ``%3D``/``%2F``/``%2B``), no leading ``?``.
    """
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The outcome of :func:`verify_signature`."""

    outcome: Literal["ok", "missing", "unknown_key", "mismatch"]
    """``ok``; ``missing`` (no AccessKeyId or Signature); ``unknown_key``; ``mismatch``."""
    string_to_sign: str
    """The server's string-to-sign (POP puts it in the SignatureDoesNotMatch message)."""

    @property
    def ok(self) -> bool:
        """True when the signature matched."""
        return self.outcome == "ok"


def verify_signature(
    method: str, params: Mapping[str, str], secret_for: Callable[[str], str | None]
) -> SignatureCheck:
    """Recompute a request's signature and compare it in constant time (server side).

    Args:
        method: the HTTP method the request arrived with.
        params: query ∪ form parameters, empty values kept, ``Signature`` included.
        secret_for: looks an AccessKeyId up; returns its secret or None when unknown.

    Returns:
        A :class:`SignatureCheck`; its ``string_to_sign`` is always filled in.
    """
    sts = string_to_sign(method, params)
    access_key_id = params.get("AccessKeyId", "")
    given = params.get("Signature", "")
    if not access_key_id or not given:
        return SignatureCheck("missing", sts)
    secret = secret_for(access_key_id)
    if secret is None:
        return SignatureCheck("unknown_key", sts)
    expected = sign(sts, secret)
    # compare_digest on bytes: a timing side channel must not leak the expected signature.
    same = hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))
    return SignatureCheck("ok" if same else "mismatch", sts)


# --- request (§11.2) ---------------------------------------------------------------------


def format_timestamp(epoch_s: float) -> str:
    """Format Unix seconds as the POP ``Timestamp`` (UTC ``YYYY-MM-DDThh:mm:ssZ``).

    Args:
        epoch_s: Unix time in seconds; fractions are dropped.

    Returns:
        e.g. ``2019-04-03T06:15:03Z``.
    """
    return datetime.fromtimestamp(int(epoch_s), tz=timezone.utc).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float:
    """Parse a POP ``Timestamp`` back into Unix seconds.

    Accepts the documented ``YYYY-MM-DDThh:mm:ssZ`` and, leniently, fractional seconds
    (``…:03.123Z``), which some hand-written clients send.

    Args:
        text: the ``Timestamp`` parameter.

    Returns:
        Unix seconds.

    Raises:
        ValueError: the text is not such a UTC timestamp.
    """
    for fmt in (_TIMESTAMP_FORMAT, "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=timezone.utc).timestamp()
    raise ValueError(f"not a POP timestamp: {text!r}")


def create_token_params(
    access_key_id: str,
    *,
    timestamp: str,
    nonce: str,
    region_id: str = DEFAULT_REGION,
    version: str = VERSION,
    signature_type: bool = True,
) -> dict[str, str]:
    """The unsigned parameters of a ``CreateToken`` request, in aliyunsdkcore's order.

    Args:
        access_key_id: the AccessKey ID.
        timestamp: from :func:`format_timestamp` (callers own the clock).
        nonce: unique per request; aliyunsdkcore sends 32 hex chars (callers own randomness).
        region_id: ``RegionId`` (the official ``getToken``'s misnamed ``domain``).
        version: the API version.
        signature_type: include the empty ``SignatureType=`` that aliyunsdkcore signs.

    Returns:
        A new dict; pass it to :func:`sign_params`.
    """
    params = {
        "Version": version,
        "Action": ACTION,
        "Format": "JSON",
        "RegionId": region_id,
        "Timestamp": timestamp,
        "SignatureMethod": SIGNATURE_METHOD,
    }
    if signature_type:
        params["SignatureType"] = ""
    params["SignatureVersion"] = SIGNATURE_VERSION
    params["SignatureNonce"] = nonce
    params["AccessKeyId"] = access_key_id
    return params


# --- response (§11.4) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """A parsed ``CreateToken`` success. ``repr`` hides the token: tokens are never logged."""

    token: str
    """``Token.Id``: the value for ``X-NLS-Token``."""
    expire_time: int
    """``Token.ExpireTime``: absolute expiry in Unix seconds."""
    user_id: str = ""
    """``Token.UserId``: the account UID."""
    request_id: str = ""
    """``RequestId`` (POP request id)."""

    def __repr__(self) -> str:
        return f"TokenGrant(token=<hidden>, expire_time={self.expire_time})"


@dataclass(frozen=True, slots=True)
class PopError:
    """A POP error answer: ``{"RequestId","HostId","Code","Message","Recommend"}``."""

    http_status: int
    code: str
    message: str
    request_id: str = ""

    @property
    def is_throttling(self) -> bool:
        """Flow control (``Throttling*`` codes, HTTP 429/503): worth retrying after a pause."""
        return self.code.startswith(_THROTTLING_PREFIX) or self.http_status in _THROTTLING_HTTP

    def describe(self) -> str:
        """One line for an exception message: status, code, message, request id."""
        rid = f" (RequestId: {self.request_id})" if self.request_id else ""
        return f"HTTP {self.http_status} {self.code or 'error'}: {self.message}{rid}"


def _load_json(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def parse_pop_error(http_status: int, body: bytes | str) -> PopError:
    """Parse a non-2xx answer into a :class:`PopError`, tolerating non-JSON bodies.

    Args:
        http_status: the HTTP status.
        body: the response body.

    Returns:
        The error; ``code`` is empty and ``message`` is the (shortened) body when the body
        is not POP JSON.
    """
    data = _load_json(body)
    if isinstance(data, dict):
        return PopError(
            http_status,
            str(data.get("Code", "")),
            str(data.get("Message", data.get("ErrMsg", ""))),
            str(data.get("RequestId", "")),
        )
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return PopError(http_status, "", text.strip()[:200])


def parse_create_token_response(http_status: int, body: bytes | str) -> TokenGrant:
    """Parse a ``CreateToken`` answer.

    Args:
        http_status: the HTTP status.
        body: the response body (JSON).

    Returns:
        The :class:`TokenGrant` (``Token.Id`` and ``Token.ExpireTime``).

    Raises:
        GetTokenFailed: non-2xx (message carries Code/Message/RequestId), or a 2xx body
            without ``Token.Id``/``Token.ExpireTime`` (message carries ``ErrMsg``, e.g.
            ``No permission!`` for a RAM user without AliyunNLSFullAccess).
    """
    if not 200 <= http_status < 300:
        raise GetTokenFailed(f"CreateToken failed: {parse_pop_error(http_status, body).describe()}")
    data = _load_json(body)
    if not isinstance(data, dict):
        raise GetTokenFailed(f"CreateToken answered HTTP {http_status} with a non-JSON body")
    token = data.get("Token")
    request_id = str(data.get("RequestId", ""))
    if not isinstance(token, dict) or not token.get("Id"):
        err = data.get("ErrMsg") or data.get("Message") or "no Token.Id in the response"
        code = f"{data['Code']}: " if data.get("Code") else ""
        raise GetTokenFailed(f"CreateToken failed: {code}{err} (RequestId: {request_id})")
    expire = token.get("ExpireTime")
    if isinstance(expire, bool) or not isinstance(expire, (int, float, str)):
        raise GetTokenFailed("CreateToken response has no usable Token.ExpireTime")
    try:
        expire_time = int(expire)
    except ValueError:
        raise GetTokenFailed("CreateToken response has no usable Token.ExpireTime") from None
    return TokenGrant(str(token["Id"]), expire_time, str(token.get("UserId", "")), request_id)


def create_token_response_body(
    grant: TokenGrant, *, request_id: str, nls_request_id: str
) -> dict[str, Any]:
    """The success JSON of §11.4 (HTTP 200).

    Args:
        grant: the issued token, expiry and user id.
        request_id: POP ``RequestId`` (dashed upper-case UUID in the real service).
        nls_request_id: ``NlsRequestId`` (32 hex).

    Returns:
        ``{"RequestId","NlsRequestId","ErrMsg":"","Token":{"UserId","Id","ExpireTime"}}``.
    """
    return {
        "RequestId": request_id,
        "NlsRequestId": nls_request_id,
        "ErrMsg": "",
        "Token": {"UserId": grant.user_id, "Id": grant.token, "ExpireTime": grant.expire_time},
    }


def pop_error_body(code: str, message: str, *, request_id: str, host_id: str) -> dict[str, Any]:
    """A POP-style error JSON (§11.4): ``{"RequestId","HostId","Code","Message","Recommend"}``.

    Args:
        code: e.g. ``SignatureDoesNotMatch``.
        message: the human text; for SignatureDoesNotMatch it must end with
            ``server string to sign is:<sts>`` (aliyunsdkcore splits on ``:`` to compare).
        request_id: POP request id.
        host_id: the host that answered.

    Returns:
        The error body.
    """
    return {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=nls-meta",
    }
