"""Frames match protocol.md field for field (the official client's JSON, §4.1, §6.1, §7.1)."""

from __future__ import annotations

import json

from nls.protocol import (
    ClientProtocol,
    StartRecognition,
    StartSynthesis,
    StartTranscription,
    default_context,
)

from .helpers import counting_ids

SDK = {"sdk": {"name": "nls-python-sdk", "version": "0.0.1", "language": "python"}}


def _frames(namespace: str, start: object, stop: bool = True) -> list[dict[str, object]]:
    client = ClientProtocol(namespace, "k", id_factory=counting_ids())
    client.start(start)  # type: ignore[arg-type]
    if stop and client.spec.started:
        client.receive_text(
            json.dumps(
                {
                    "header": {
                        "namespace": namespace,
                        "name": client.spec.started,
                        "status": 20000000,
                        "task_id": client.task_id,
                        "message_id": "f" * 32,
                    }
                }
            )
        )
        client.stop()
    return [json.loads(f) for f in client.data_to_send() if isinstance(f, str)]


def test_start_recognition_matches_official_sdk() -> None:
    start, stop = _frames("SpeechRecognizer", StartRecognition(extra={"max_end_silence": 800}))
    assert list(start) == ["header", "payload", "context"]
    assert list(start["header"]) == ["message_id", "task_id", "namespace", "name", "appkey"]
    assert start["payload"] == {
        "format": "pcm",
        "sample_rate": 16000,
        "enable_intermediate_result": False,
        "enable_punctuation_prediction": False,
        "enable_inverse_text_normalization": False,
        "max_end_silence": 800,
    }
    assert list(start["payload"])[:5] == [
        "format",
        "sample_rate",
        "enable_intermediate_result",
        "enable_punctuation_prediction",
        "enable_inverse_text_normalization",
    ]
    assert start["context"] == SDK
    assert stop == {
        "header": {
            "message_id": "00000000000000000000000000000003",
            "task_id": start["header"]["task_id"],
            "namespace": "SpeechRecognizer",
            "name": "StopRecognition",
            "appkey": "k",
        },
        "context": SDK,
    }


def test_start_transcription_payload() -> None:
    start, _ = _frames("SpeechTranscriber", StartTranscription(enable_intermediate_result=True))
    assert start["header"]["name"] == "StartTranscription"
    assert start["payload"]["enable_intermediate_result"] is True
    assert len(start["payload"]) == 5


def test_start_synthesis_matches_official_sdk() -> None:
    (start,) = _frames("SpeechLongSynthesizer", StartSynthesis(text="你好"), stop=False)
    assert list(start["payload"].items()) == [
        ("text", "你好"),
        ("voice", "xiaoyun"),
        ("format", "pcm"),
        ("sample_rate", 16000),
        ("volume", 50),
        ("speech_rate", 0),
        ("pitch_rate", 0),
    ]


def test_flowing_start_sends_volume_and_no_context() -> None:
    start, stop = _frames(
        "FlowingSpeechSynthesizer",
        StartSynthesis(session_id="s" * 32, voice="longxiaochun", sample_rate=24000),
    )
    assert list(start) == ["header", "payload"]
    assert list(start["payload"]) == [
        "session_id",
        "voice",
        "format",
        "sample_rate",
        "volume",
        "speech_rate",
        "pitch_rate",
    ]
    assert list(stop) == ["header"]


def test_ids_are_32_lowercase_hex_by_default() -> None:
    client = ClientProtocol("SpeechRecognizer", "k")
    client.start(StartRecognition())
    header = json.loads(client.data_to_send()[0])["header"]  # type: ignore[arg-type]
    for key in ("message_id", "task_id"):
        assert len(header[key]) == 32 and header[key] == header[key].lower()
        int(header[key], 16)


def test_default_context_is_a_fresh_copy() -> None:
    ctx = default_context()
    ctx["sdk"]["name"] = "changed"
    assert default_context() == SDK
