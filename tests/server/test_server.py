"""The listening side: handshake tolerance, token checks, plain-HTTP routes, CreateToken."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

import nls_gateway.server as server_module
from nls.protocol import new_id
from nls.token import getToken
from nls_gateway.config import ServerConfig
from nls_gateway.server import serve
from server.scripted import HANDLERS, start

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def http(gw, method: str, target: str, body: bytes = b"", headers: str = "") -> tuple:
    """One raw HTTP/1.1 request; returns (status, headers text, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head_text, _, payload = data.partition(b"\r\n\r\n")
    status_line, _, header_text = head_text.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), header_text, payload


async def test_duplicate_key_handshake_answers_the_first_key(gateway):
    gw = await gateway(handlers=HANDLERS)
    first, fixed = "UCFL0k26TpUgi99kdg9tBQ==", "x3JJHMbDL1EzLkh9GBhXDw=="
    request = (
        "GET /ws/v1 HTTP/1.1\r\n"
        "Upgrade: websocket\r\n"
        f"Host: 127.0.0.1:{gw.port}\r\n"
        f"Origin: http://127.0.0.1:{gw.port}\r\n"
        f"Sec-WebSocket-Key: {first}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {fixed}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "X-NLS-Token: abc\r\n\r\n"
    )
    expected = base64.b64encode(hashlib.sha1((first + GUID).encode()).digest()).decode()
    for _ in range(2):  # the same (static) key again is fine
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        text = head.decode()
        assert text.startswith("HTTP/1.1 101 ")
        assert f"Sec-WebSocket-Accept: {expected}\r\n" in text
        assert "Sec-WebSocket-Extensions" not in text  # no compression negotiated
        writer.close()


async def test_403_bodies_for_missing_invalid_and_expired_tokens(gateway):
    gw = await gateway(handlers=HANDLERS, token=["goodtoken"])
    expired, _ = gw.authenticator.issuer.issue(now=time.time() - 3 * 86400)
    cases = [
        ({}, "Gateway:ACCESS_DENIED:Missing authorization header!"),
        ({"X-NLS-Token": "bad"}, "Meta:ACCESS_DENIED:The token 'bad' is invalid!"),
        ({"X-NLS-Token": expired}, f"Meta:ACCESS_DENIED:The token '{expired}' has expired!"),
    ]
    for headers, body in cases:
        with pytest.raises(InvalidStatus) as info:
            await connect(gw.url, additional_headers=headers)
        response = info.value.response
        assert response.status_code == 403
        assert response.body.decode() == body
        assert response.headers["Content-Length"] == str(len(response.body))
    async with connect(gw.url, additional_headers={"X-NLS-Token": "goodtoken"}) as ws:
        assert (await start(ws, new_id()))["header"]["name"] == "RecognitionStarted"
    rejected = gw.metrics.registry.get_sample_value(
        "nls_rejected_handshakes_total", {"reason": "token_refused"}
    )
    assert rejected == 2


async def test_token_in_query_string(gateway):
    gw = await gateway(handlers=HANDLERS, token=["qtoken"])
    async with connect(gw.url + "?token=qtoken") as ws:
        assert (await start(ws, new_id()))["header"]["name"] == "RecognitionStarted"


async def test_healthz_is_503_until_engines_load(monkeypatch):
    release = threading.Event()

    def slow_load(config):
        release.wait(5)
        from conftest import scripted_engines

        return scripted_engines()

    monkeypatch.setattr(server_module, "load_engines", slow_load)
    async with serve(ServerConfig(port=0, engines="scripted"), handlers=HANDLERS) as gw:
        status, _, body = await http(gw, "GET", "/healthz")
        assert (status, body) == (503, b"Engines are loading.\n")
        with pytest.raises(InvalidStatus) as info:
            await connect(gw.url)
        assert info.value.response.status_code == 503
        release.set()
        await asyncio.wait_for(gw.wait_ready(), 5)
        status, _, body = await http(gw, "GET", "/healthz")
        assert (status, body) == (200, b"OK\n")


async def test_metrics_voices_and_404(gateway, tmp_path):
    gw = await gateway(handlers=HANDLERS, console_dir=str(tmp_path / "absent"))
    async with connect(gw.url) as ws:
        await start(ws, new_id())
    status, headers, body = await http(gw, "GET", "/metrics")
    assert status == 200
    assert "text/plain" in headers
    text = body.decode()
    for name in (
        "nls_sessions_total",
        "nls_active_tasks",
        "nls_rejected_handshakes_total",
        "nls_engine_latency_seconds",
        "nls_audio_in_seconds_total",
        "nls_audio_out_seconds_total",
    ):
        assert name in text
    status, headers, body = await http(gw, "GET", "/voices")
    assert status == 200 and "application/json" in headers
    voices = json.loads(body)
    assert {"name": "xiaoyun", "language": "zh", "gender": "female"} in voices
    assert (await http(gw, "GET", "/nope"))[0] == 404
    assert (await http(gw, "GET", "/"))[0] == 404  # no console directory
    with pytest.raises(InvalidStatus) as info:
        await connect(gw.url.replace("/ws/v1", "/ws/v2"))
    assert info.value.response.status_code == 404


async def test_console_hook_serves_static_files(gateway, tmp_path):
    (tmp_path / "index.html").write_text("<h1>console</h1>")
    gw = await gateway(handlers=HANDLERS, console_dir=str(tmp_path))
    status, headers, body = await http(gw, "GET", "/")
    assert (status, body) == (200, b"<h1>console</h1>")
    assert "text/html" in headers
    assert (await http(gw, "GET", "/../etc/passwd"))[0] == 404


async def test_options_and_other_methods(gateway):
    gw = await gateway(handlers=HANDLERS)
    status, headers, _ = await http(gw, "OPTIONS", "/")
    assert status == 204 and "Allow: GET, POST, OPTIONS" in headers
    assert (await http(gw, "PUT", "/healthz"))[0] == 405
    assert (await http(gw, "POST", "/", b"x" * 100_000))[0] == 413


async def test_create_token_post_end_to_end_with_get_token(gateway):
    gw = await gateway(handlers=HANDLERS, access_keys={"akid": "aksecret"})
    host = f"127.0.0.1:{gw.port}"
    token = await asyncio.to_thread(getToken, "akid", "aksecret", url=host)
    assert len(token) == 32
    async with connect(gw.url, additional_headers={"X-NLS-Token": token}) as ws:
        assert (await start(ws, new_id()))["header"]["name"] == "RecognitionStarted"
    with pytest.raises(Exception, match="InvalidAccessKeyId|access key"):
        await asyncio.to_thread(getToken, "nobody", "x", url=host)


async def test_create_token_get_with_bad_signature_is_pop_error(gateway):
    gw = await gateway(handlers=HANDLERS, access_keys={"akid": "aksecret"})
    status, headers, body = await http(
        gw, "GET", "/?Action=CreateToken&Version=2019-02-28&AccessKeyId=akid"
    )
    assert status == 400 and "application/json" in headers
    assert json.loads(body)["Code"] == "MissingParameter"


async def test_tokens_never_reach_the_log_even_at_debug(gateway, caplog):
    caplog.set_level("DEBUG")
    gw = await gateway(handlers=HANDLERS, token=["sekret-token-1234"])
    async with connect(gw.url, additional_headers={"X-NLS-Token": "sekret-token-1234"}) as ws:
        await start(ws, new_id())
    async with connect(gw.url + "?token=sekret-token-1234") as ws:
        await start(ws, new_id())
    with pytest.raises(InvalidStatus):
        await connect(gw.url, additional_headers={"X-NLS-Token": "wrong-sekret"})
    server_side = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    assert server_side  # the gateway did log at DEBUG
    assert not [r for r in server_side if "sekret" in r.getMessage()]
