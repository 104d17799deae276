"""Bad input catalogue: every case gets its exact answer, and a healthy session survives.

Each case in :data:`CASES` drives a live gateway (scripted engines, credentials on, short
timeouts) with one kind of bad input and returns what it observed: an NLS status from a
``TaskFailed`` (e.g. ``40000002``), ``"http 403"`` for a refused handshake or HTTP
request, ``"close 1009"`` for a WebSocket close without TaskFailed, ``"closed"`` for a
socket the gateway dropped, or ``"completed"`` when the input is legal after all. While
the case runs, a correct SpeechTranscriber session on the same gateway must complete.

The table in ``docs/bad-input.md`` lists the same cases; ``test_catalogue_is_documented``
keeps the two in step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audio_fixtures import ogg_opus_bytes, wav_bytes
from nls.protocol import new_id, pop
from nls_gateway.server import Gateway
from nls_gateway.tasks.base import Limits
from reliability.helpers import (
    assert_no_unexpected_errors,
    command,
    healthy_transcription,
    pcm_tone,
    recv_event,
    utterance,
)

TOKEN = "good-token"
APPKEY = "k"
AKID, AKSECRET = "test-akid", "test-aksecret"
HEADERS = {"X-NLS-Token": TOKEN}
DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
GATEWAY_CONFIG = {
    "token": [TOKEN],
    "appkey": [APPKEY],
    "access_keys": {AKID: AKSECRET},
    "open_timeout": 1.0,
    "idle_timeout": 1.5,
    "limits": Limits(max_recognition_ms=3000, max_long_tts_chars=2000),
}

Outcome = int | str
CaseFn = Callable[[Gateway], Awaitable[Outcome]]


@dataclass(frozen=True)
class Case:
    id: str
    area: str
    input: str
    expected: Outcome
    run: CaseFn


CASES: list[Case] = []


def case(id: str, area: str, input: str, expected: Outcome) -> Callable[[CaseFn], CaseFn]:
    def register(fn: CaseFn) -> CaseFn:
        CASES.append(Case(id, area, input, expected, fn))
        return fn

    return register


# ------------------------------------------------------------------ drivers


async def _outcome(ws: ClientConnection, timeout: float = 5.0) -> Outcome:
    """Read until the task ends: TaskFailed status, ``completed`` or the close code."""
    try:
        while True:
            event = await recv_event(ws, timeout)
            header = event["header"]
            if header["name"] == "TaskFailed":
                return int(header["status"])
            if header["name"].endswith("Completed"):
                return "completed"
    except ConnectionClosed:
        code = ws.close_code
        return "closed" if code in (None, 1006) else f"close {code}"


async def _send_frames(gw: Gateway, *frames: str | bytes, timeout: float = 5.0) -> Outcome:
    """Connect with a good token, send ``frames`` (text or binary), report the outcome."""
    ws = await connect(gw.url, additional_headers=HEADERS, max_size=None)
    try:
        for frame in frames:
            await ws.send(frame)
    except (ConnectionClosed, AttributeError):  # AttributeError: see _close()
        pass
    try:
        return await _outcome(ws, timeout)
    finally:
        await _close(ws)


async def _close(ws: ClientConnection) -> None:
    """Close our end; after the server failed a huge frame the client transport may already
    be torn down, and websockets' close() then trips over it (client-side only)."""
    try:
        await ws.close()
    except (ConnectionClosed, AttributeError):
        ws.transport.abort()


def _start(namespace: str = "SpeechTranscriber", task: str = "", **payload: object) -> str:
    name = {"SpeechRecognizer": "StartRecognition", "SpeechTranscriber": "StartTranscription"}.get(
        namespace, "StartSynthesis"
    )
    if name != "StartSynthesis":
        payload = {"format": "pcm", "sample_rate": 16000, **payload}
    return command(name, task or new_id(), namespace=namespace, appkey=APPKEY, payload=payload)


async def _asr_task(
    gw: Gateway,
    audio: bytes | list[bytes],
    *,
    namespace: str = "SpeechTranscriber",
    chunk: int = 3200,
    **payload: object,
) -> Outcome:
    """Start an ASR task with ``payload``, send ``audio``, stop, report the outcome."""
    task = new_id()
    stop = "StopTranscription" if namespace == "SpeechTranscriber" else "StopRecognition"
    ws = await connect(gw.url, additional_headers=HEADERS, max_size=None)
    try:
        await ws.send(_start(namespace, task, **payload))
        started = await recv_event(ws)
        if started["header"]["name"] == "TaskFailed":
            return int(started["header"]["status"])
        frames = (
            audio
            if isinstance(audio, list)
            else [audio[i : i + chunk] for i in range(0, len(audio), chunk)]
        )
        try:
            for frame in frames:
                await ws.send(frame)
            await ws.send(command(stop, task, namespace=namespace, appkey=APPKEY))
        except ConnectionClosed:
            pass
        return await _outcome(ws)
    finally:
        await _close(ws)


async def _tts(gw: Gateway, namespace: str = "SpeechSynthesizer", **payload: object) -> Outcome:
    body = {"text": "你好。", "voice": "xiaoyun", "format": "pcm", "sample_rate": 16000}
    body.update(payload)
    body = {k: v for k, v in body.items() if v is not None}
    return await _send_frames(gw, _start(namespace, **body))


async def _handshake(
    gw: Gateway, url: str | None = None, headers: dict[str, str] | None = None
) -> Outcome:
    try:
        async with connect(url or gw.url, additional_headers=headers or {}) as ws:
            await ws.send(_start())
            return await _outcome(ws)
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"


async def _raw_http(
    gw: Gateway, data: bytes, *, trickle_s: float = 0.0, timeout: float = 4.0
) -> Outcome:
    """Write ``data`` on a bare TCP socket (optionally one byte per ``trickle_s``)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        if trickle_s:
            for i in range(len(data)):
                writer.write(data[i : i + 1])
                await writer.drain()
                await asyncio.sleep(trickle_s)
                if reader.at_eof():
                    break
        else:
            writer.write(data)
            await writer.drain()
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            return "closed"
        if not line:
            return "closed"
        return f"http {int(line.split()[1])}"
    except ConnectionError:
        return "closed"
    finally:
        writer.close()


def _create_token_query(**override: str) -> str:
    params = pop.create_token_params(
        AKID, timestamp=pop.format_timestamp(time.time()), nonce=new_id()
    )
    params.update(override)
    signed = pop.sign_params("GET", params, AKSECRET)
    return pop.encode_query(signed)


def _get(query: str) -> bytes:
    return f"GET /?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


def _envelope(header: object, payload: object = None) -> str:
    message: dict[str, object] = {"header": header}
    if payload is not None:
        message["payload"] = payload
    return json.dumps(message)


def _header(**fields: object) -> dict[str, object]:
    header: dict[str, object] = {
        "message_id": new_id(),
        "task_id": new_id(),
        "namespace": "SpeechTranscriber",
        "name": "StartTranscription",
        "appkey": APPKEY,
    }
    header.update(fields)
    return {k: v for k, v in header.items() if v is not None}


# ------------------------------------------------------------- envelope


@case("not_json", "envelope", "text frame `hello`", 40000002)
async def _(gw):
    return await _send_frames(gw, "hello")


@case("json_array", "envelope", "text frame `[]`", 40000002)
async def _(gw):
    return await _send_frames(gw, "[]")


@case("json_number", "envelope", "text frame `42`", 40000002)
async def _(gw):
    return await _send_frames(gw, "42")


@case("truncated_json", "envelope", "first half of a StartTranscription", 40000002)
async def _(gw):
    text = _start()
    return await _send_frames(gw, text[: len(text) // 2])


@case("deep_nesting", "envelope", "JSON nested 100,000 levels deep", 40000002)
async def _(gw):
    return await _send_frames(gw, "[" * 100_000 + "]" * 100_000)


@case("no_header", "envelope", '`{"payload":{}}`', 40000002)
async def _(gw):
    return await _send_frames(gw, '{"payload":{}}')


@case("header_not_object", "envelope", '`{"header":"x"}`', 40000002)
async def _(gw):
    return await _send_frames(gw, '{"header":"x"}')


@case("no_name", "envelope", "header without `name`", 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(name=None)))


@case("empty_message_id", "envelope", '`message_id: ""`', 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(message_id="")))


@case("uppercase_message_id", "envelope", "message_id of 32 upper-case hex digits", 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(message_id=new_id().upper())))


@case("short_task_id", "envelope", "task_id of 31 hex digits", 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(task_id=new_id()[:31])))


@case("numeric_task_id", "envelope", "task_id is a JSON number", 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(task_id=12345)))


@case("unknown_namespace", "envelope", "namespace `SpeechNope`", 40010001)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(namespace="SpeechNope")))


@case("no_namespace", "envelope", "header without `namespace`", 40010001)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(namespace=None)))


@case("no_appkey", "envelope", "StartTranscription without `appkey`", 40000003)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(appkey=None), {"format": "pcm"}))


@case("payload_not_object", "envelope", "`payload: [1,2]`", 40000002)
async def _(gw):
    return await _send_frames(gw, _envelope(_header(), [1, 2]))


@case("payload_wrong_type", "envelope", '`sample_rate: "16000"` (a string)', 40010003)
async def _(gw):
    return await _send_frames(gw, _start(sample_rate="16000"))


@case("invalid_utf8_text", "envelope", "text frame with invalid UTF-8", "close 1007")
async def _(gw):
    async with connect(gw.url, additional_headers=HEADERS) as ws:
        await ws.send(b'{"header":\xff\xfe}', text=True)
        return await _outcome(ws)


@case("huge_text_frame", "envelope", "5 MiB text frame (limit 4 MiB)", "close 1009")
async def _(gw):
    return await _send_frames(gw, '{"header":{},"x":"' + "a" * (5 << 20) + '"}')


# ------------------------------------------------------------------ order


@case("stop_before_start", "order", "StopTranscription first", 40010005)
async def _(gw):
    return await _send_frames(gw, command("StopTranscription", new_id(), appkey=APPKEY))


@case("audio_before_start", "order", "binary audio first", 40010005)
async def _(gw):
    return await _send_frames(gw, pcm_tone(0.1))


@case("control_before_start", "order", "ControlTranscriber first", 40010005)
async def _(gw):
    return await _send_frames(gw, command("ControlTranscriber", new_id(), appkey=APPKEY))


@case("start_twice", "order", "a second StartTranscription while running", 40010005)
async def _(gw):
    task = new_id()
    return await _send_frames(gw, _start(task=task), _start(task=task))


@case("stop_other_task", "order", "StopTranscription with another task_id", 40000002)
async def _(gw):
    return await _send_frames(gw, _start(), command("StopTranscription", new_id(), appkey=APPKEY))


@case("unknown_directive", "order", "`FooBar` inside a running task", 40010003)
async def _(gw):
    task = new_id()
    return await _send_frames(gw, _start(task=task), command("FooBar", task, appkey=APPKEY))


@case("foreign_directive", "order", "StopRecognition inside a SpeechTranscriber task", 40010003)
async def _(gw):
    task = new_id()
    return await _send_frames(
        gw, _start(task=task), command("StopRecognition", task, appkey=APPKEY)
    )


@case("stop_twice", "order", "two StopTranscription in a row", 40010005)
async def _(gw):
    task = new_id()
    stop = command("StopTranscription", task, appkey=APPKEY)
    async with connect(gw.url, additional_headers=HEADERS) as ws:
        await ws.send(_start(task=task))
        await recv_event(ws)
        await ws.send(stop)
        await ws.send(stop)
        events = []
        try:
            while True:
                events.append(await recv_event(ws))
        except ConnectionClosed:
            pass
        failed = [e for e in events if e["header"]["name"] == "TaskFailed"]
        return int(failed[0]["header"]["status"]) if failed else "completed"


@case("audio_to_tts", "order", "binary frame during SpeechSynthesizer", 40010005)
async def _(gw):
    long_text = "这是一段很长的测试文本，" * 20
    return await _send_frames(
        gw, _start("SpeechLongSynthesizer", text=long_text, voice="xiaoyun"), pcm_tone(0.1)
    )


@case("idle_after_start", "order", "StartTranscription, then nothing", 40000004)
async def _(gw):
    async with connect(gw.url, additional_headers=HEADERS) as ws:
        await ws.send(_start())
        return await _outcome(ws, timeout=4.0)


@case("command_after_failure", "order", "commands after a TaskFailed", 40000002)
async def _(gw):
    # The first frame fails the task; the rest are never answered (the socket closes).
    return await _send_frames(gw, "garbage", _start(), pcm_tone(0.1))


# ------------------------------------------------------------------ audio


@case("huge_audio_frame", "audio", "one 4 MiB + 1 binary frame", "close 1009")
async def _(gw):
    return await _send_frames(gw, _start(), b"\0" * ((4 << 20) + 1))


@case("garbage_pcm", "audio", "64 KiB of random bytes as `pcm`", "completed")
async def _(gw):
    rng = np.random.default_rng(1)
    return await _asr_task(gw, rng.integers(0, 256, 65536, dtype=np.uint8).tobytes())


@case("odd_length_pcm", "audio", "`pcm` in 3-byte frames", "completed")
async def _(gw):
    audio = utterance()[:9600]
    return await _asr_task(gw, [audio[i : i + 3] for i in range(0, 3000, 3)])


@case("empty_audio_frame", "audio", "zero-length binary frames", "completed")
async def _(gw):
    return await _asr_task(gw, [b"", pcm_tone(0.1), b""])


@case("no_audio_at_all", "audio", "Start then Stop with no audio", "completed")
async def _(gw):
    return await _asr_task(gw, [])


@case("wav_garbage_header", "audio", "`wav` whose first bytes are not RIFF", 40000009)
async def _(gw):
    return await _asr_task(gw, b"JUNK" * 100, format="wav")


@case("wav_truncated_header", "audio", "`wav`: 20 bytes of a RIFF header, then Stop", 40000009)
async def _(gw):
    return await _asr_task(gw, wav_bytes(np.zeros(1600, np.int16))[:20], format="wav")


@case("wav_bad_rate", "audio", "`wav` header says 44100 Hz", 41010101)
async def _(gw):
    return await _asr_task(gw, wav_bytes(np.zeros(4410, np.int16), rate=44100), format="wav")


@case("wav_huge_header", "audio", "`wav` with a 70 KiB chunk before `data`", 40000009)
async def _(gw):
    extra = b"LIST" + (70000).to_bytes(4, "little") + b"\0" * 70000
    return await _asr_task(gw, wav_bytes(np.zeros(1600, np.int16), extra=extra), format="wav")


@case("opus_garbage", "audio", "random bytes as `opus` (no Ogg page)", 40000009)
async def _(gw):
    rng = np.random.default_rng(2)
    return await _asr_task(gw, rng.integers(0, 256, 8000, dtype=np.uint8).tobytes(), format="opus")


@case("opus_truncated", "audio", "Ogg Opus cut in the middle of a page, then Stop", 40000009)
async def _(gw):
    data = ogg_opus_bytes((np.sin(np.arange(16000) / 5) * 8000).astype(np.int16))
    return await _asr_task(gw, data[: len(data) // 2 + 7], format="opus")


@case("unsupported_format", "audio", "`format: xyz`", 41010100)
async def _(gw):
    return await _asr_task(gw, b"", format="xyz")


@case("unsupported_rate", "audio", "`sample_rate: 44100`", 41010101)
async def _(gw):
    return await _asr_task(gw, b"", sample_rate=44100)


@case("negative_rate", "audio", "`sample_rate: -16000`", 41010101)
async def _(gw):
    return await _asr_task(gw, b"", sample_rate=-16000)


@case("silence_out_of_range", "audio", "`max_sentence_silence: 99999`", 40000003)
async def _(gw):
    return await _asr_task(gw, b"", max_sentence_silence=99999)


@case("too_long_speech", "audio", "SpeechRecognizer: 4 s of audio (limit 3 s here)", 41010104)
async def _(gw):
    return await _asr_task(gw, pcm_tone(4.0), namespace="SpeechRecognizer")


# -------------------------------------------------------------------- TTS


@case("tts_empty_text", "tts", '`text: ""`', 40010003)
async def _(gw):
    return await _tts(gw, text="")


@case("tts_no_text", "tts", "StartSynthesis without `text`", 40010003)
async def _(gw):
    return await _tts(gw, text=None)


@case("tts_blank_text", "tts", "text of spaces and newlines", 40010003)
async def _(gw):
    return await _tts(gw, text="  \n\t ")


@case("tts_too_long", "tts", "SpeechSynthesizer text of 301 characters", 41020001)
async def _(gw):
    return await _tts(gw, text="好" * 301)


@case("long_tts_too_long", "tts", "SpeechLongSynthesizer beyond its limit (2,000 here)", 41020001)
async def _(gw):
    return await _tts(gw, "SpeechLongSynthesizer", text="好" * 2001)


@case("tts_text_wrong_type", "tts", "`text: 42`", 40010003)
async def _(gw):
    return await _tts(gw, text=42)


@case("tts_unknown_voice", "tts", "`voice: nobody`", 40000003)
async def _(gw):
    return await _tts(gw, voice="nobody")


@case("tts_bad_format", "tts", "`format: ogg`", 40000003)
async def _(gw):
    return await _tts(gw, format="ogg")


@case("tts_bad_rate", "tts", "`sample_rate: 1000`", 40000003)
async def _(gw):
    return await _tts(gw, sample_rate=1000)


@case("tts_bad_volume", "tts", "`volume: 101`", 40000003)
async def _(gw):
    return await _tts(gw, volume=101)


@case("tts_bad_speech_rate", "tts", "`speech_rate: 600`", 40000003)
async def _(gw):
    return await _tts(gw, speech_rate=600)


@case("tts_punctuation_only", "tts", "text `。。。！` (nothing to speak)", 41020001)
async def _(gw):
    return await _tts(gw, text="。。。！")


@case("ssml_unclosed", "tts", "`<speak>你好` (no `</speak>`)", 41020001)
async def _(gw):
    return await _tts(gw, text="<speak>你好")


@case("ssml_bad_break", "tts", '`<speak>你<break time="abc"/>好</speak>`', 41020001)
async def _(gw):
    return await _tts(gw, text='<speak>你<break time="abc"/>好</speak>')


@case("ssml_unknown_tag", "tts", "`<speak><foo>你好</foo></speak>`", 41020001)
async def _(gw):
    return await _tts(gw, text="<speak><foo>你好</foo></speak>")


@case("flowing_run_before_start", "tts", "RunSynthesis as the first command", 40010005)
async def _(gw):
    frame = command(
        "RunSynthesis",
        new_id(),
        namespace="FlowingSpeechSynthesizer",
        appkey=APPKEY,
        payload={"text": "你好"},
    )
    return await _send_frames(gw, frame)


@case("flowing_text_too_long", "tts", "RunSynthesis with 10,001 characters", 40010003)
async def _(gw):
    task = new_id()
    ns = "FlowingSpeechSynthesizer"
    return await _send_frames(
        gw,
        _start(ns, task, voice="xiaoyun", format="pcm", sample_rate=16000),
        command("RunSynthesis", task, namespace=ns, appkey=APPKEY, payload={"text": "好" * 10001}),
    )


# --------------------------------------------------------- auth, handshake


@case("bad_token", "auth", "`X-NLS-Token: wrong`", "http 403")
async def _(gw):
    return await _handshake(gw, headers={"X-NLS-Token": "wrong"})


@case("no_token", "auth", "no token at all", "http 403")
async def _(gw):
    return await _handshake(gw)


@case("token_in_query_bad", "auth", "`?token=wrong`", "http 403")
async def _(gw):
    return await _handshake(gw, url=gw.url + "?token=wrong")


@case("wrong_path", "auth", "WebSocket on `/ws/v2`", "http 404")
async def _(gw):
    return await _handshake(gw, url=gw.url.replace("/ws/v1", "/ws/v2"), headers=HEADERS)


@case("unknown_appkey", "auth", "StartTranscription with appkey `nope`", 40020105)
async def _(gw):
    frame = command("StartTranscription", new_id(), appkey="nope", payload={"format": "pcm"})
    return await _send_frames(gw, frame)


@case("token_replayed_nonce", "auth", "CreateToken request sent twice (same nonce)", "http 400")
async def _(gw):
    query = _create_token_query()
    first = await _raw_http(gw, _get(query))
    assert first == "http 200", first
    return await _raw_http(gw, _get(query))


@case("token_bad_signature", "auth", "CreateToken with a tampered Signature", "http 400")
async def _(gw):
    query = _create_token_query().replace("Signature=", "Signature=AA")
    return await _raw_http(gw, _get(query))


@case("token_stale_timestamp", "auth", "CreateToken signed 1 hour ago", "http 400")
async def _(gw):
    stamp = pop.format_timestamp(time.time() - 3600)
    return await _raw_http(gw, _get(_create_token_query(Timestamp=stamp)))


@case("token_unknown_key", "auth", "CreateToken with an unknown AccessKeyId", "http 404")
async def _(gw):
    return await _raw_http(gw, _get(_create_token_query(AccessKeyId="nobody")))


@case("token_huge_post", "auth", "POST CreateToken with a 1 MB body", "http 413")
async def _(gw):
    body = b"a=" + b"b" * 1_000_000
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return await _raw_http(gw, head + body)


@case("garbage_request", "auth", "binary garbage instead of HTTP", "http 400")
async def _(gw):
    return await _raw_http(gw, bytes(range(256)))


@case("slowloris_get", "auth", "GET handshake trickled 1 byte / 50 ms (open_timeout 1 s)", "closed")
async def _(gw):
    head = f"GET /ws/v1 HTTP/1.1\r\nHost: x\r\nX-NLS-Token: {TOKEN}\r\n" + "X-Pad: y\r\n" * 20
    return await _raw_http(gw, head.encode(), trickle_s=0.05)


@case("slowloris_post", "auth", "POST body trickled 1 byte / 50 ms (open_timeout 1 s)", "closed")
async def _(gw):
    body = b"Action=CreateToken&" * 10
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return await _raw_http(gw, head + body, trickle_s=0.05)


# ------------------------------------------------------------------- tests


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
async def test_bad_input(gateway, caplog, bad: Case):
    caplog.set_level(logging.WARNING)
    gw = await gateway(**GATEWAY_CONFIG)
    healthy = asyncio.create_task(healthy_transcription(gw.url + f"?token={TOKEN}"))
    observed = await asyncio.wait_for(bad.run(gw), 15)
    assert observed == bad.expected, f"{bad.id}: expected {bad.expected}, got {observed}"
    assert await healthy == "completed"
    await asyncio.sleep(0)  # let the gateway finish the case's task before counting
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while gw.shared.admission.active and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert gw.shared.admission.active == 0, "a task leaked"
    assert_no_unexpected_errors(caplog)


def test_catalogue_is_documented():
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*\d+\s*\|\s*`([a-z0-9_]+)`\s*\|[^|]*\|.*\|\s*([^|]+?)\s*\|$", line)
        if match:
            rows[match.group(1)] = match.group(2).strip("` ")
    assert len(CASES) >= 40
    expected = {c.id: str(c.expected) for c in CASES}
    assert rows == expected
