"""Getting NLS tokens: the original ``getToken`` and a caching ``TokenProvider`` (``nls.token``).

The original module path of the official SDK, kept for its users. The package owns the
client side of the token service (protocol.md §11), in two modules:

- ``service``: one signed ``CreateToken`` POST over stdlib ``http.client`` (no
  aliyunsdkcore, no requests), its ``Backoff`` retry policy, ``fetch_token`` and
  ``token_url_for``, which picks the token endpoint for a gateway URL;
- ``provider``: ``TokenProvider``, which caches by ``ExpireTime``, refreshes ahead of
  expiry, sends one request however many sessions need a token at once (single-flight)
  and backs off on throttling.

``getToken`` itself is here, at its original path. Signing and parsing live in
``nls.protocol.pop``. Nothing here logs or puts into an exception message a token, an
AccessKey secret or a signature.
"""

from __future__ import annotations

from nls.exception import GetTokenFailed
from nls.protocol import pop
from nls.protocol.pop import TokenGrant
from nls.token.provider import TokenProvider
from nls.token.service import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_TOKEN_HOST,
    DEFAULT_TOKEN_URL,
    INTL_TOKEN_URL,
    NO_RETRY,
    TOKEN_URL_ENV,
    Backoff,
    fetch_token,
    token_url_for,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOKEN_HOST",
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
