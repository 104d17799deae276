"""Fuzzing: the protocol parser in both roles, and random frames against a live gateway.

* ``ClientProtocol.receive_text`` / ``ServerProtocol.receive_text`` (and the binary and
  close inputs) never raise, whatever the peer sends: garbage becomes one TaskFailed.
* A bounded random-frame fuzzer against a gateway with scripted engines on loopback:
  no crash, no unexpected ERROR log record with a traceback, no leaked task (the active
  gauge returns to 0), and a healthy session afterwards still completes.

Longer runs: ``FUZZ_FRAMES=20000 pytest tests/reliability/test_fuzz.py`` and
``HYPOTHESIS_PROFILE``-free ``--hypothesis-seed``; the defaults keep this file ~10 s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from nls.protocol import (
    ClientProtocol,
    ServerProtocol,
    StartTranscription,
    TaskFailed,
    TaskState,
    new_id,
    serialize_command,
    serialize_event,
)
from reliability.helpers import assert_no_unexpected_errors, healthy_transcription, wait_for

NAMESPACES = [
    "SpeechRecognizer",
    "SpeechTranscriber",
    "SpeechSynthesizer",
    "SpeechLongSynthesizer",
    "FlowingSpeechSynthesizer",
    "Default",
    "",
    "Nope",
]
NAMES = [
    "StartRecognition",
    "StopRecognition",
    "StartTranscription",
    "StopTranscription",
    "ControlTranscriber",
    "StartSynthesis",
    "RunSynthesis",
    "FlushText",
    "StopSynthesis",
    "RecognitionStarted",
    "RecognitionCompleted",
    "TranscriptionStarted",
    "SentenceBegin",
    "SentenceEnd",
    "TranscriptionResultChanged",
    "TranscriptionCompleted",
    "SynthesisCompleted",
    "TaskFailed",
    "",
    "Bogus",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
ids = st.one_of(st.just(""), st.text(max_size=40), st.builds(new_id), st.integers(), st.none())
headers = st.fixed_dictionaries(
    {},
    optional={
        "namespace": st.one_of(st.sampled_from(NAMESPACES), json_values),
        "name": st.one_of(st.sampled_from(NAMES), json_values),
        "task_id": ids,
        "message_id": ids,
        "appkey": st.one_of(st.text(max_size=10), json_values),
        "status": st.one_of(st.integers(), json_values),
        "status_text": json_values,
    },
)
envelopes = st.fixed_dictionaries(
    {"header": st.one_of(headers, json_values)},
    optional={
        "payload": st.one_of(json_values, st.dictionaries(st.text(max_size=30), json_values)),
        "context": json_values,
    },
)


def _dump(obj: object) -> str:
    return json.dumps(obj, allow_nan=True)


frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    envelopes.map(_dump),
    json_values.map(_dump),
    envelopes.map(_dump).map(lambda s: s[: len(s) // 2]),  # truncated JSON
)
inputs = st.lists(
    st.one_of(
        frames.map(lambda f: ("text", f)),
        st.binary(max_size=300).map(lambda b: ("binary", b)),
        st.tuples(st.integers(min_value=0, max_value=5000), st.text(max_size=20)).map(
            lambda c: ("close", c)
        ),
    ),
    max_size=12,
)

_SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _started_server(namespace: str) -> ServerProtocol:
    server = ServerProtocol()
    server.receive_text(
        serialize_command(
            namespace=namespace,
            name={"SpeechTranscriber": "StartTranscription"}.get(namespace, "StartRecognition"),
            task_id=new_id(),
            message_id=new_id(),
            appkey="k",
            payload={"format": "pcm", "sample_rate": 16000},
        )
    )
    server.events_received()
    return server


@_SETTINGS
@given(inputs, st.booleans())
def test_server_protocol_never_raises(steps, started):
    server = _started_server("SpeechTranscriber") if started else ServerProtocol()
    for kind, value in steps:
        if kind == "text":
            server.receive_text(value)
        elif kind == "binary":
            server.receive_binary(value)
        else:
            continue  # the server side has no receive_close
        server.events_received()
        out = server.data_to_send()
        for frame in out:
            if isinstance(frame, str):
                event = json.loads(frame)
                assert event["header"]["name"] == "TaskFailed"
                assert isinstance(event["header"]["status"], int)
                assert 40000000 <= event["header"]["status"] < 60000000
        if server.should_close:
            assert server.state is TaskState.FAILED
            # after the TaskFailed nothing more is produced
            server.receive_text(value if kind == "text" else "{}")
            assert server.data_to_send() == []


@_SETTINGS
@given(inputs, st.sampled_from(["SpeechRecognizer", "SpeechTranscriber", "SpeechSynthesizer"]))
def test_client_protocol_never_raises(steps, namespace):
    client = ClientProtocol(namespace, "appkey")
    client.start(StartTranscription())
    client.data_to_send()
    failures = 0
    for kind, value in steps:
        if kind == "text":
            client.receive_text(value)
        elif kind == "binary":
            client.receive_binary(value)
        else:
            client.receive_close(*value)
        for event in client.events_received():
            if isinstance(event, TaskFailed):
                failures += 1
                assert isinstance(event.status, int)
    assert failures <= 1, "a task fails at most once"
    if failures:
        assert not client.state.live


@_SETTINGS
@given(st.lists(envelopes.map(_dump), max_size=6))
def test_client_protocol_valid_json_events_never_raise(texts):
    # Events shaped like the server's but with fuzzed fields.
    client = ClientProtocol("SpeechTranscriber", "appkey")
    client.start(StartTranscription())
    task = client.task_id
    client.receive_text(
        serialize_event(
            namespace="SpeechTranscriber",
            name="TranscriptionStarted",
            task_id=task,
            message_id=new_id(),
            status=20000000,
            status_text="Gateway:SUCCESS:Success.",
            payload={"session_id": "s"},
        )
    )
    for text in texts:
        client.receive_text(text)
    for event in client.events_received():
        # typed accessors never raise on odd payloads
        for attr in ("status", "status_text", "task_id", "result", "index", "time", "words"):
            getattr(event, attr, None)


# --------------------------------------------------------------- live fuzzer

_LIVE_FRAMES = int(os.environ.get("FUZZ_FRAMES", "600"))


def _random_frame(rng: random.Random, task_id: str) -> str | bytes:
    roll = rng.random()
    if roll < 0.25:
        return rng.randbytes(rng.choice([0, 1, 7, 320, 3200, 70000]))
    if roll < 0.35:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(0, 60)))
    namespace = rng.choice(NAMESPACES[:5] + ["Nope"])
    name = rng.choice(NAMES)
    payload = rng.choice(
        [
            None,
            {},
            {
                "format": rng.choice(["pcm", "wav", "opus", "xyz", 3]),
                "sample_rate": rng.choice([16000, 8000, 44100, -1, "x"]),
            },
            {
                "text": rng.choice(["你好。", "", "x" * 400, None, 5]),
                "voice": rng.choice(["xiaoyun", "nobody", 1]),
            },
            {"max_sentence_silence": rng.choice([0, 500, 99999, "a"])},
            {"enable_intermediate_result": rng.choice([True, "yes", 3])},
        ]
    )
    text = serialize_command(
        namespace=namespace,
        name=name,
        task_id=task_id if rng.random() < 0.8 else rng.choice(["", "x", new_id()]),
        message_id=new_id() if rng.random() < 0.9 else "bad",
        appkey=rng.choice(["k", "", None]) or "",
        payload=payload,
    )
    if rng.random() < 0.1:
        text = text[: rng.randrange(len(text))]
    return text


async def test_random_frames_against_live_gateway(gateway, caplog):
    caplog.set_level(logging.WARNING)
    gw = await gateway(max_concurrent_tasks=8, idle_timeout=2.0)
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "20240623")))
    sent = 0

    async def one_connection() -> None:
        nonlocal sent
        task_id = new_id()
        try:
            async with connect(gw.url, max_size=None, open_timeout=5) as ws:
                for _ in range(rng.randrange(1, 12)):
                    if sent >= _LIVE_FRAMES:
                        return
                    sent += 1
                    await ws.send(_random_frame(rng, task_id))
                    # drain whatever came back without waiting long
                    try:
                        while True:
                            await asyncio.wait_for(ws.recv(), 0.005)
                    except TimeoutError:
                        pass
        except ConnectionClosed:
            pass

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 25
    while sent < _LIVE_FRAMES and loop.time() < deadline:
        await asyncio.gather(*(one_connection() for _ in range(4)))
    assert sent >= min(_LIVE_FRAMES, 200), f"fuzzer only sent {sent} frames"
    await wait_for(lambda: gw.shared.admission.active == 0, 3.0, "active tasks back to 0")
    await wait_for(lambda: not gw.connections, 5.0, "all connections closed")
    assert await healthy_transcription(gw.url) == "completed"
    assert_no_unexpected_errors(caplog)


@pytest.mark.parametrize("text", ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000])
def test_deeply_nested_json_is_a_task_failure_in_both_roles(text):
    server = ServerProtocol()
    server.receive_text(text)
    (frame,) = server.data_to_send()
    assert json.loads(frame)["header"]["status"] == 40000002
    client = ClientProtocol("SpeechTranscriber", "appkey")
    client.start(StartTranscription())
    client.receive_text(text)
    (event,) = client.events_received()
    assert isinstance(event, TaskFailed) and event.local
