"""POP RPC signature v1.0 and CreateToken wire format (protocol.md §11), with its test vectors."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote

import pytest
from hypothesis import given, strategies as st

from nls.exception import GetTokenFailed
from nls.protocol import pop

SECRET = "testsecret"

# §11.3 test vector parameters (doc-style dashed nonce, no SignatureType).
VECTOR = {
    "AccessKeyId": "testid",
    "Action": "CreateToken",
    "Format": "JSON",
    "RegionId": "cn-shanghai",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "8d1e6a7a-f44e-40d5-aedb-fe4a1c80f434",
    "SignatureVersion": "1.0",
    "Timestamp": "2019-04-03T06:15:03Z",
    "Version": "2019-02-28",
}
GET_STS = (
    "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateToken%26Format%3DJSON%26RegionId%3D"
    "cn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D8d1e6a7a-f44e-40d5-aedb-"
    "fe4a1c80f434%26SignatureVersion%3D1.0%26Timestamp%3D2019-04-03T06%253A15%253A03Z%26"
    "Version%3D2019-02-28"
)
POST_STS = (
    "POST&%2F&AccessKeyId%3Dtestid%26Action%3DCreateToken%26Format%3DJSON%26RegionId%3D"
    "cn-shanghai%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D8d1e6a7a-f44e-40d5-aedb-"
    "fe4a1c80f434%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2019-04-03T06"
    "%253A15%253A03Z%26Version%3D2019-02-28"
)
# §11.2: the exact request line aliyunsdkcore 2.16.1 sent (query part).
CAPTURED_QUERY = (
    "Version=2019-02-28&Action=CreateToken&Format=JSON&RegionId=cn-shanghai&Timestamp="
    "2026-11-22T03%3A34%3A59Z&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0"
    "&SignatureNonce=06ad4f5b56bfd39a4d8ab4612b7a0a54&AccessKeyId=testid&Signature="
    "ZvtGcwThs6YoE1Ud6bO3WxeIsNE%3D"
)


def test_string_to_sign_get_vector() -> None:
    assert pop.string_to_sign("GET", VECTOR) == GET_STS
    assert pop.sign(GET_STS, SECRET) == "D/kI7h5xr97OTnuTaLl2mMWRvD4="


def test_string_to_sign_post_with_empty_signature_type_vector() -> None:
    params = {**VECTOR, "SignatureType": ""}
    assert pop.string_to_sign("post", params) == POST_STS
    assert pop.sign(POST_STS, SECRET) == "hDtUh7w+So94TuzOSFcdQoqRhxI="


def test_create_token_request_matches_live_capture_byte_for_byte() -> None:
    params = pop.create_token_params(
        "testid", timestamp="2026-11-22T03:34:59Z", nonce="06ad4f5b56bfd39a4d8ab4612b7a0a54"
    )
    signed = pop.sign_params("POST", params, SECRET)
    assert signed["Signature"] == "ZvtGcwThs6YoE1Ud6bO3WxeIsNE="
    assert pop.encode_query(signed) == CAPTURED_QUERY


def test_captured_request_verifies_on_the_server_side() -> None:
    params = dict(parse_qsl(CAPTURED_QUERY, keep_blank_values=True))
    check = pop.verify_signature("POST", params, {"testid": SECRET}.get)
    assert check.ok
    assert check.outcome == "ok"
    # Dropping the empty SignatureType= (a server parsing without keep_blank_values) breaks it.
    del params["SignatureType"]
    assert pop.verify_signature("POST", params, {"testid": SECRET}.get).outcome == "mismatch"


def test_verify_signature_reports_each_failure() -> None:
    signed = pop.sign_params("GET", VECTOR, SECRET)
    lookup = {"testid": SECRET}.get
    assert pop.verify_signature("GET", signed, lookup).ok
    assert pop.verify_signature("POST", signed, lookup).outcome == "mismatch"
    assert pop.verify_signature("GET", signed, {"testid": "other"}.get).outcome == "mismatch"
    none: dict[str, str] = {}
    assert pop.verify_signature("GET", signed, none.get).outcome == "unknown_key"
    no_sig = dict(VECTOR)
    check = pop.verify_signature("GET", no_sig, lookup)
    assert check.outcome == "missing"
    assert check.string_to_sign == GET_STS
    bad = {**signed, "Signature": "not ascii é"}
    assert pop.verify_signature("GET", bad, lookup).outcome == "mismatch"


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("*", "%2A"),
        ("~", "~"),
        ("-_.", "-_."),
        ("+/=", "%2B%2F%3D"),
        (":", "%3A"),
        ("中", "%E4%B8%AD"),
        ("", ""),
    ],
)
def test_percent_encode_rfc3986(raw: str, encoded: str) -> None:
    assert pop.percent_encode(raw) == encoded


_text = st.text(st.characters(codec="utf-8"))  # UTF-8-encodable text


@given(_text)
def test_percent_encode_round_trips_and_is_unreserved_only(text: str) -> None:
    encoded = pop.percent_encode(text)
    assert unquote(encoded) == text
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%")
    assert set(encoded) <= allowed


_chars = st.characters(codec="utf-8")
_names = st.text(_chars, min_size=1, max_size=12).filter(lambda s: s != "Signature")
_values = st.text(_chars, max_size=20)


@given(
    st.dictionaries(_names, _values, max_size=8),
    st.text(_chars, min_size=1, max_size=20),
    st.sampled_from(["GET", "POST"]),
)
def test_sign_then_verify_round_trip(extra: dict[str, str], secret: str, method: str) -> None:
    params = {**extra, "AccessKeyId": "ak"}
    signed = pop.sign_params(method, params, secret)
    # Order of insertion never matters: the canonical query is sorted.
    shuffled = dict(reversed(list(signed.items())))
    assert pop.verify_signature(method, shuffled, {"ak": secret}.get).ok
    # Through the wire encoding and back, too.
    wire = dict(parse_qsl(pop.encode_query(signed), keep_blank_values=True))
    assert pop.verify_signature(method, wire, {"ak": secret}.get).ok


@given(st.dictionaries(_names, _values, min_size=1, max_size=6), st.data())
def test_tampering_any_parameter_breaks_the_signature(
    extra: dict[str, str], data: st.DataObject
) -> None:
    params = {**extra, "AccessKeyId": "ak"}
    signed = pop.sign_params("POST", params, SECRET)
    name = data.draw(st.sampled_from(sorted(params)))
    tampered = {**signed, name: signed[name] + "x"}
    assert pop.verify_signature("POST", tampered, {"ak": SECRET}.get).outcome != "ok"


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_timestamp_round_trip(epoch: int) -> None:
    text = pop.format_timestamp(epoch)
    assert text.endswith("Z")
    assert len(text) == 20
    assert pop.parse_timestamp(text) == epoch


def test_timestamp_known_value_and_lenient_fraction() -> None:
    assert pop.format_timestamp(1554272103.9) == "2019-04-03T06:15:03Z"
    assert pop.parse_timestamp("2019-04-03T06:15:03.250Z") == 1554272103.25
    for bad in ("2019-04-03 06:15:03", "2019-04-03T06:15:03+08:00", "yesterday", ""):
        with pytest.raises(ValueError):
            pop.parse_timestamp(bad)


def test_create_token_params_without_signature_type() -> None:
    params = pop.create_token_params(
        "id", timestamp="t", nonce="n", region_id="ap-southeast-1", signature_type=False
    )
    assert "SignatureType" not in params
    assert params["RegionId"] == "ap-southeast-1"
    assert params["Action"] == "CreateToken"
    assert params["Version"] == "2019-02-28"


SUCCESS = {
    "RequestId": "E979F086-13F4-4A6D-9582-74F8D88B2C9B",
    "ErrMsg": "",
    "Token": {
        "UserId": "1460406656678944",
        "Id": "36258e6956724a2dac3dd59e6cd821fa",
        "ExpireTime": 1599188650,
    },
    "NlsRequestId": "d2dab9c604b349b6936069b07f5f2ab6",
}


def test_parse_success_response() -> None:
    grant = pop.parse_create_token_response(200, json.dumps(SUCCESS).encode())
    assert grant.token == "36258e6956724a2dac3dd59e6cd821fa"
    assert grant.expire_time == 1599188650
    assert grant.user_id == "1460406656678944"
    assert grant.request_id == SUCCESS["RequestId"]
    assert "36258e69" not in repr(grant)


def test_success_body_round_trips() -> None:
    grant = pop.TokenGrant("a" * 32, 1_700_000_000, "42")
    body = pop.create_token_response_body(grant, request_id="R", nls_request_id="b" * 32)
    assert list(body) == ["RequestId", "NlsRequestId", "ErrMsg", "Token"]
    parsed = pop.parse_create_token_response(200, json.dumps(body))
    assert (parsed.token, parsed.expire_time, parsed.user_id) == ("a" * 32, 1_700_000_000, "42")


def test_parse_pop_error_carries_code_message_request_id() -> None:
    body = pop.pop_error_body(
        "InvalidAccessKeyId.NotFound",
        "Specified access key is not found.",
        request_id="x",
        host_id="h",
    )
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    with pytest.raises(GetTokenFailed) as info:
        pop.parse_create_token_response(404, json.dumps(body))
    text = str(info.value)
    assert "404" in text
    assert "InvalidAccessKeyId.NotFound" in text
    assert "Specified access key is not found." in text
    assert "RequestId: x" in text
    err = pop.parse_pop_error(404, json.dumps(body))
    assert not err.is_throttling


@pytest.mark.parametrize(
    ("status", "code", "throttling"),
    [
        (400, "Throttling.User", True),
        (503, "ServiceUnavailable", True),
        (429, "", True),
        (400, "Throttling", True),
        (400, "SignatureDoesNotMatch", False),
        (500, "InternalError", False),
    ],
)
def test_throttling_detection(status: int, code: str, throttling: bool) -> None:
    body = json.dumps({"Code": code, "Message": "m", "RequestId": "r"})
    assert pop.parse_pop_error(status, body).is_throttling is throttling


def test_parse_pop_error_non_json_body() -> None:
    err = pop.parse_pop_error(502, b"<html>Bad Gateway</html>")
    assert err.code == ""
    assert "Bad Gateway" in err.message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"RequestId": "r", "ErrMsg": "No permission!", "NlsRequestId": "n"}, "No permission!"),
        ({"RequestId": "r", "Token": {"ExpireTime": 1}}, "no Token.Id"),
        ({"RequestId": "r", "Token": {"Id": "t"}}, "ExpireTime"),
        ({"RequestId": "r", "Token": {"Id": "t", "ExpireTime": "soon"}}, "ExpireTime"),
        ({"RequestId": "r", "Token": {"Id": "t", "ExpireTime": True}}, "ExpireTime"),
        ({"Code": "Forbidden.NoPermission", "Message": "denied"}, "Forbidden.NoPermission"),
    ],
)
def test_parse_2xx_without_token_raises(body: dict[str, object], needle: str) -> None:
    with pytest.raises(GetTokenFailed, match=needle.replace(".", r"\.")):
        pop.parse_create_token_response(200, json.dumps(body))


def test_parse_2xx_non_json_raises() -> None:
    with pytest.raises(GetTokenFailed, match="non-JSON"):
        pop.parse_create_token_response(200, b"hello")
