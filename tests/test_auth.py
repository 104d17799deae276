"""nls_gateway.auth: TokenIssuer, Credentials, handshake verdicts and the CreateToken RPC.

The end-to-end tests put Authenticator.handle_create_token behind a tiny http.server on
127.0.0.1 and fetch tokens with the SDK's own nls.token, then check them at the handshake.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, strategies as st

from nls.exception import GetTokenFailed, InvalidParameter
from nls.protocol import pop
from nls.token import TokenProvider, getToken
from nls_gateway.auth import Authenticator, Credentials, TokenIssuer, parse_params
from nls_gateway.tasks.base import Project

AKID, SECRET = "LTAItestid", "testsecret"
KEY = b"k" * 32
NOW = 1_700_000_000.0


def _creds(**kw: Any) -> Credentials:
    base: dict[str, Any] = {"access_keys": {AKID: SECRET}, "appkeys": {"app1": Project("zh")}}
    base.update(kw)
    return Credentials(**base)


def _auth(**kw: Any) -> Authenticator:
    return Authenticator(_creds(**kw), TokenIssuer(KEY, clock=lambda: NOW))


def _signed(
    method: str = "POST",
    now: float = NOW,
    secret: str = SECRET,
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    params = pop.create_token_params(
        AKID, timestamp=pop.format_timestamp(now), nonce=uuid.uuid4().hex
    )
    params.update(overrides or {})
    return pop.sign_params(method, params, secret)


# --- TokenIssuer ------------------------------------------------------------------------


def test_issued_token_is_32_lowercase_hex_and_verifies() -> None:
    issuer = TokenIssuer(KEY, lifetime_s=100, clock=lambda: NOW)
    token, expire = issuer.issue()
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert expire == int(NOW) + 100
    assert issuer.verify(token) == "ok"
    assert issuer.verify(token, now=NOW + 99.9) == "ok"
    assert issuer.verify(token, now=NOW + 100) == "expired"
    assert "k" * 16 not in repr(issuer)


def test_replicas_sharing_a_secret_accept_each_others_tokens() -> None:
    a = TokenIssuer(KEY, clock=lambda: NOW)
    b = TokenIssuer(bytes(KEY), clock=lambda: NOW + 5)
    other = TokenIssuer(b"x" * 32, clock=lambda: NOW)
    token_a, _ = a.issue()
    token_b, _ = b.issue()
    assert b.verify(token_a) == "ok" and a.verify(token_b) == "ok"
    assert other.verify(token_a) == "invalid"


def test_secret_rotation_accepts_previous_secret() -> None:
    old = TokenIssuer(b"o" * 32, clock=lambda: NOW)
    new = TokenIssuer(KEY, clock=lambda: NOW, previous_secrets=[b"o" * 32])
    token, _ = old.issue()
    assert new.verify(token) == "ok"
    assert old.verify(new.issue()[0]) == "invalid"


@pytest.mark.parametrize(
    "token",
    ["", "abc", "0" * 32, "Z" * 32, "0" * 33, "é" * 32, " " * 32],
)
def test_garbage_tokens_are_invalid(token: str) -> None:
    assert TokenIssuer(KEY, clock=lambda: NOW).verify(token) == "invalid"


def test_uppercase_copy_of_a_token_is_invalid() -> None:
    issuer = TokenIssuer(KEY, clock=lambda: NOW)
    token, _ = issuer.issue()
    assert issuer.verify(token.upper()) == "invalid"


@given(st.integers(min_value=0, max_value=31), st.integers(min_value=1, max_value=15))
def test_flipping_any_hex_digit_invalidates(position: int, delta: int) -> None:
    issuer = TokenIssuer(KEY, clock=lambda: NOW)
    token, _ = issuer.issue()
    digit = format((int(token[position], 16) + delta) % 16, "x")
    forged = token[:position] + digit + token[position + 1 :]
    # Moving the expiry forward (or anything else) breaks the MAC.
    assert issuer.verify(forged) == "invalid"


def test_expired_forgery_is_invalid_not_expired() -> None:
    issuer = TokenIssuer(KEY, clock=lambda: NOW)
    forged = "00000001" + "0" * 24
    assert issuer.verify(forged) == "invalid"


def test_issuer_rejects_weak_settings() -> None:
    with pytest.raises(InvalidParameter):
        TokenIssuer(b"short")
    with pytest.raises(InvalidParameter):
        TokenIssuer(KEY, lifetime_s=0)
    with pytest.raises(InvalidParameter):
        TokenIssuer(KEY, previous_secrets=[b""])


# --- Credentials ------------------------------------------------------------------------


def test_credentials_from_dict_and_projects() -> None:
    creds = Credentials.from_dict(
        {
            "appkeys": {"a": {"language": "en", "voice": "xiaoyun"}, "b": {}},
            "tokens": ["static-token"],
            "access_keys": {"id": "secret"},
        }
    )
    assert creds.project_for("a") == Project("en", None, "xiaoyun")
    assert creds.project_for("b") == Project()
    assert creds.project_for("nope") is None and creds.project_for(None) is None
    assert "secret" not in repr(creds) and "static-token" not in repr(creds)
    with pytest.raises(TypeError):
        creds.appkeys["c"] = Project()  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        {"appkeys": {"a": {"language": "fr"}}},
        {"appkeys": {"a": {"colour": "red"}}},
        {"tokens": "abc"},
        {"tokens": [""]},
        {"dev_mode": "yes"},
        {"access_keys": {"id": ""}},
        {"access_keys": {"": "s"}},
        {"unknown": 1},
    ],
)
def test_credentials_from_dict_rejects_bad_config(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidParameter):
        Credentials.from_dict(data)


def test_dev_mode_accepts_any_appkey() -> None:
    assert Credentials(dev_mode=True).project_for("whatever") == Project()


# --- handshake --------------------------------------------------------------------------


def test_handshake_bodies() -> None:
    auth = _auth(tokens=frozenset({"static"}))
    token, _ = auth.issuer.issue()
    assert auth.check_handshake_token(token) is None
    assert auth.check_handshake_token("static") is None
    assert auth.check_handshake_token(None) == (
        403,
        "Gateway:ACCESS_DENIED:Missing authorization header!",
    )
    assert auth.check_handshake_token("") == auth.check_handshake_token(None)
    assert auth.check_handshake_token("fdf") == (
        403,
        "Meta:ACCESS_DENIED:The token 'fdf' is invalid!",
    )
    assert auth.check_handshake_token(token, now=NOW + 86400) == (
        403,
        f"Meta:ACCESS_DENIED:The token '{token}' has expired!",
    )


def test_handshake_echo_is_short_and_printable() -> None:
    status, body = _auth().check_handshake_token("a\r\nb" + "x" * 10_000) or (0, "")
    assert status == 403
    assert "\r" not in body and "\n" not in body
    assert len(body) < 300


def test_dev_mode_accepts_any_token_or_none() -> None:
    auth = _auth(dev_mode=True)
    assert auth.check_handshake_token(None) is None
    assert auth.check_handshake_token("anything") is None


# --- CreateToken ------------------------------------------------------------------------


def test_create_token_success_shape() -> None:
    auth = _auth()
    status, body = auth.handle_create_token("POST", _signed(), {}, NOW)
    assert status == 200
    assert list(body) == ["RequestId", "NlsRequestId", "ErrMsg", "Token"]
    assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", body["RequestId"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["NlsRequestId"])
    assert body["ErrMsg"] == ""
    tok = body["Token"]
    assert re.fullmatch(r"\d{16}", tok["UserId"])
    assert tok["ExpireTime"] == int(NOW) + 86400
    assert auth.check_handshake_token(tok["Id"], now=NOW + 1) is None


def test_create_token_get_and_form_body() -> None:
    auth = _auth()
    assert auth.handle_create_token("GET", _signed("GET"), {}, NOW)[0] == 200
    # Documented form: everything in an x-www-form-urlencoded body, signed over the union.
    params = _signed("POST")
    query = {"Action": params.pop("Action")}
    assert auth.handle_create_token("post", query, params, NOW)[0] == 200


def _code(result: tuple[int, dict[str, Any]]) -> tuple[int, str]:
    status, body = result
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    return status, body["Code"]


def test_wrong_signature_reports_server_string_to_sign() -> None:
    params = _signed(secret="wrong")
    status, body = _auth().handle_create_token("POST", params, {}, NOW)
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")
    assert body["Message"].endswith(
        "server string to sign is:" + pop.string_to_sign("POST", params)
    )
    # Signed for GET, sent as POST.
    assert _code(_auth().handle_create_token("POST", _signed("GET"), {}, NOW)) == (
        400,
        "SignatureDoesNotMatch",
    )


@pytest.mark.parametrize("skew", [-901, 901, -3600])
def test_old_or_future_timestamp_refused(skew: int) -> None:
    result = _auth().handle_create_token("POST", _signed(now=NOW + skew), {}, NOW)
    assert _code(result) == (400, "InvalidTimeStamp.Expired")


def test_timestamp_inside_window_accepted() -> None:
    assert _auth().handle_create_token("POST", _signed(now=NOW - 899), {}, NOW)[0] == 200


def test_replayed_nonce_refused_until_it_ages_out() -> None:
    auth = _auth()
    params = _signed()
    assert auth.handle_create_token("POST", params, {}, NOW)[0] == 200
    assert _code(auth.handle_create_token("POST", params, {}, NOW + 1)) == (
        400,
        "SignatureNonceUsed",
    )
    # Once its Timestamp is outside the window the nonce is forgotten — and refused anyway.
    assert _code(auth.handle_create_token("POST", params, {}, NOW + 901)) == (
        400,
        "InvalidTimeStamp.Expired",
    )


def test_bad_signature_does_not_burn_the_nonce() -> None:
    auth = _auth()
    good = _signed()
    bad = {**good, "Signature": pop.sign("x", "y")}
    assert auth.handle_create_token("POST", bad, {}, NOW)[0] == 400
    assert auth.handle_create_token("POST", good, {}, NOW)[0] == 200


def test_replay_cache_is_bounded() -> None:
    auth = Authenticator(_creds(), TokenIssuer(KEY), max_nonces=3)
    for _ in range(3):
        assert auth.handle_create_token("POST", _signed(), {}, NOW)[0] == 200
    assert _code(auth.handle_create_token("POST", _signed(), {}, NOW)) == (503, "Throttling")
    later = NOW + 2 * 900 + 1  # the first nonces have aged out
    assert auth.handle_create_token("POST", _signed(now=later), {}, later)[0] == 200


def test_unknown_access_key_is_404() -> None:
    params = pop.sign_params(
        "POST",
        pop.create_token_params("nobody", timestamp=pop.format_timestamp(NOW), nonce="n"),
        SECRET,
    )
    result = _auth().handle_create_token("POST", params, {}, NOW)
    assert _code(result) == (404, "InvalidAccessKeyId.NotFound")
    # Dev mode issues a token to anyone who signs.
    assert _auth(dev_mode=True).handle_create_token("POST", params, {}, NOW)[0] == 200


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"Version": "2018-05-18"}, (400, "InvalidVersion")),
        ({"Action": "DeleteToken"}, (404, "InvalidAction.NotFound")),
        ({"Action": ""}, (400, "MissingParameter")),
        ({"SignatureNonce": ""}, (400, "MissingParameter")),
        ({"Timestamp": ""}, (400, "MissingParameter")),
        ({"SignatureMethod": "HMAC-SHA256"}, (400, "InvalidParameter")),
        ({"SignatureVersion": "2.0"}, (400, "InvalidParameter")),
        ({"Timestamp": "yesterday"}, (400, "InvalidTimeStamp.Format")),
    ],
)
def test_parameter_errors(change: dict[str, str], expected: tuple[int, str]) -> None:
    params = _signed(overrides=change)
    assert _code(_auth().handle_create_token("POST", params, {}, NOW)) == expected


def test_missing_signature_and_method_errors() -> None:
    params = _signed()
    del params["Signature"]
    assert _code(_auth().handle_create_token("POST", params, {}, NOW)) == (400, "MissingParameter")
    result = _auth().handle_create_token("DELETE", _signed("DELETE"), {}, NOW)
    assert _code(result) == (404, "InvalidAction.NotFound")


def test_conflicting_query_and_body_refused() -> None:
    params = _signed()
    result = _auth().handle_create_token("POST", params, {"RegionId": "elsewhere"}, NOW)
    assert _code(result) == (400, "InvalidParameter")


def test_parse_params_keeps_blank_values() -> None:
    assert parse_params("a=1&SignatureType=&b=%2B") == {"a": "1", "SignatureType": "", "b": "+"}
    assert parse_params(b"x=%E4%B8%AD") == {"x": "中"}
    with pytest.raises(InvalidParameter):
        parse_params(b"\xff=1")
    with pytest.raises(InvalidParameter):
        parse_params("&".join(f"k{i}=v" for i in range(101)))


# --- end to end: nls.token against a CreateToken HTTP wrapper ---------------------------


@pytest.fixture
def gateway() -> Iterator[tuple[str, Authenticator]]:
    auth = Authenticator(_creds(), TokenIssuer(KEY))

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            form: dict[str, str] = {}
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("application/x-www-form-urlencoded"):
                form = parse_params(raw)
            query = parse_params(urlsplit(self.path).query)
            status, body = auth.handle_create_token(self.command, query, form, time.time())
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", auth
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_get_token_end_to_end_is_accepted_at_handshake(
    gateway: tuple[str, Authenticator],
) -> None:
    url, auth = gateway
    token = getToken(AKID, SECRET, url=url)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert auth.check_handshake_token(token) is None
    # A second replica sharing the secret accepts it too.
    replica = Authenticator(_creds(), TokenIssuer(KEY))
    assert replica.check_handshake_token(token) is None


def test_get_token_end_to_end_errors(gateway: tuple[str, Authenticator]) -> None:
    url, _ = gateway
    with pytest.raises(GetTokenFailed, match="InvalidAccessKeySecret"):
        getToken(AKID, "wrong", url=url)
    with pytest.raises(GetTokenFailed, match=r"404 InvalidAccessKeyId\.NotFound"):
        getToken("unknown", SECRET, url=url)


def test_token_provider_end_to_end(gateway: tuple[str, Authenticator]) -> None:
    url, auth = gateway
    provider = TokenProvider(AKID, SECRET, url=url)
    token = provider.get()
    assert provider.get() == token
    assert provider.expire_time is not None and provider.expire_time > time.time() + 86000
    assert auth.check_handshake_token(token) is None


def test_old_timestamp_end_to_end(gateway: tuple[str, Authenticator]) -> None:
    url, _ = gateway
    provider = TokenProvider(AKID, SECRET, url=url, clock=lambda: time.time() - 3600)
    with pytest.raises(GetTokenFailed, match=r"InvalidTimeStamp\.Expired"):
        provider.get()
