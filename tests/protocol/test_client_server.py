"""Full task flows of every namespace through a ClientProtocol ↔ ServerProtocol pair."""

from __future__ import annotations

import json

import pytest

from nls.exception import LocalProtocolError
from nls.protocol import (
    AudioData,
    AudioReceived,
    ControlTranscriber,
    RecognitionCompleted,
    RecognitionStarted,
    RunSynthesis,
    SentenceEnd,
    StartRecognition,
    StartSynthesis,
    StartTranscription,
    Status,
    SynthesisCompleted,
    TaskFailed,
    TaskState,
)

from .helpers import ProtocolPair


def test_recognizer_flow_start_audio_stop_completed() -> None:
    pair = ProtocolPair("SpeechRecognizer")
    pair.client.start(StartRecognition(enable_intermediate_result=True))
    (start,) = pair.to_server()
    assert isinstance(start.command, StartRecognition)
    assert start.command.enable_intermediate_result is True
    assert pair.server.state is TaskState.STARTING
    pair.server.send_event("RecognitionStarted")
    (started,) = pair.to_client()
    assert isinstance(started, RecognitionStarted)
    assert pair.client.state is TaskState.STARTED
    pair.client.send_audio(b"\x00\x01" * 100)
    (audio,) = pair.to_server()
    assert isinstance(audio, AudioReceived) and len(audio.data) == 200
    pair.server.send_event("RecognitionResultChanged", {"result": "北京", "duration": 500})
    pair.client.stop()
    (stop,) = pair.to_server()
    assert stop.name == "StopRecognition"
    pair.server.send_event("RecognitionCompleted", {"result": "北京的天气。", "duration": 1200})
    changed, completed = pair.to_client()
    assert changed.result == "北京" and changed.duration == 500
    assert isinstance(completed, RecognitionCompleted)
    assert completed.result == "北京的天气。"
    assert pair.client.state is TaskState.COMPLETED is pair.server.state


def test_transcriber_control_and_sentence_events() -> None:
    pair = ProtocolPair("SpeechTranscriber")
    pair.client.start(StartTranscription(extra={"max_sentence_silence": 500}))
    (start,) = pair.to_server()
    assert start.command.max_sentence_silence == 500
    pair.server.send_event("TranscriptionStarted", {"session_id": "s" * 32})
    (started,) = pair.to_client()
    assert started.session_id == "s" * 32
    pair.client.control(ControlTranscriber(extra={"max_sentence_silence": 1000}))
    (ctrl,) = pair.to_server()
    assert ctrl.command.max_sentence_silence == 1000
    pair.server.send_event("SentenceBegin", {"index": 1, "time": 0})
    pair.server.send_event(
        "SentenceEnd",
        {"index": 1, "time": 1820, "begin_time": 0, "result": "好", "confidence": 0.9},
    )
    begin, end = pair.to_client()
    assert isinstance(end, SentenceEnd)
    assert (end.index, end.time, end.begin_time, end.result) == (1, 1820, 0, "好")
    pair.client.stop()
    pair.to_server()
    pair.server.send_event("TranscriptionCompleted")
    (done,) = pair.to_client()
    assert done.name == "TranscriptionCompleted" and done.payload == {}


def test_synthesizer_has_no_started_event_and_streams_audio() -> None:
    pair = ProtocolPair("SpeechSynthesizer")
    pair.client.start(StartSynthesis(text="你好", extra={"enable_subtitle": True}))
    (start,) = pair.to_server()
    assert start.command.text == "你好" and start.command.enable_subtitle is True
    assert pair.server.state is TaskState.STARTED
    pair.server.send_event("MetaInfo", {"subtitles": [{"text": "你"}]})
    pair.server.send_audio(b"a" * 70000)
    pair.server.send_event("SynthesisCompleted")
    events = pair.to_client()
    audio = b"".join(e.data for e in events if isinstance(e, AudioData))
    assert len(audio) == 70000
    assert [len(f) for f in pair.server_frames if isinstance(f, bytes)] == [65536, 4464]
    assert isinstance(events[-1], SynthesisCompleted)
    with pytest.raises(LocalProtocolError):
        pair.client.stop()


def test_flowing_synthesis_run_and_stop() -> None:
    pair = ProtocolPair("FlowingSpeechSynthesizer")
    pair.client.start(StartSynthesis(voice="longxiaochun", sample_rate=24000, session_id="a" * 32))
    (start,) = pair.to_server()
    assert start.command.session_id == "a" * 32
    with pytest.raises(LocalProtocolError):
        pair.client.control(RunSynthesis(text="早"))  # before SynthesisStarted
    pair.server.send_event("SynthesisStarted")
    pair.to_client()
    pair.client.control(RunSynthesis(text="今天天气不错。"))
    (run,) = pair.to_server()
    assert run.command.text == "今天天气不错。"
    pair.client.stop()
    pair.to_server()
    pair.server.send_event("SentenceBegin", {"index": 1})
    pair.server.send_audio(b"x" * 10)
    pair.server.send_event("SentenceEnd", {"subtitles": []})
    pair.server.send_event("SynthesisCompleted")
    names = [getattr(e, "name", "audio") for e in pair.to_client()]
    assert names == ["SentenceBegin", "audio", "SentenceEnd", "SynthesisCompleted"]


def test_connection_reuse_new_task_id() -> None:
    pair = ProtocolPair("SpeechSynthesizer")
    for _ in range(2):
        pair.client.start(StartSynthesis(text="一"))
        pair.to_server()
        pair.server.send_event("SynthesisCompleted")
        pair.to_client()
    first, second = (json.loads(f)["header"]["task_id"] for f in pair.client_frames)
    assert first != second


def test_server_failure_reaches_client_once() -> None:
    pair = ProtocolPair("SpeechRecognizer")
    pair.client.start(StartRecognition())
    pair.to_server()
    pair.server.fail(Status.UNSUPPORTED_SAMPLE_RATE, "Realtime:UNSUPPORTED_SAMPLE_RATE:x")
    (failed,) = pair.to_client()
    assert isinstance(failed, TaskFailed) and not failed.local
    assert failed.status == 41010101
    assert pair.server.should_close
    pair.client.receive_close(1000)
    assert pair.client.events_received() == []


def test_close_before_completion_becomes_local_task_failed() -> None:
    pair = ProtocolPair("SpeechTranscriber")
    pair.client.start(StartTranscription())
    pair.client.receive_close(1006, "")
    (failed,) = pair.client.events_received()
    assert isinstance(failed, TaskFailed) and failed.local
    header = json.loads(failed.raw)["header"]
    assert header["status"] == 50000000 and "1006" in header["status_text"]
    assert header["task_id"] == pair.client.task_id
    assert pair.client.fail(40000000, "again") is None  # no second failure


def test_client_rejects_garbage_from_server_without_raising() -> None:
    pair = ProtocolPair("SpeechRecognizer")
    pair.client.start(StartRecognition())
    pair.client.receive_text("not json")
    (failed,) = pair.client.events_received()
    assert failed.local and pair.client.remote_error is not None
    assert pair.client.state is TaskState.FAILED


def test_client_local_errors() -> None:
    client = ProtocolPair("SpeechRecognizer").client
    with pytest.raises(LocalProtocolError):
        client.send_audio(b"\x00\x00")
    with pytest.raises(LocalProtocolError):
        client.stop()
    client.start(StartRecognition())
    with pytest.raises(LocalProtocolError):
        client.start(StartRecognition())
    with pytest.raises(LocalProtocolError):
        client.send_audio(b"")
    assert len(client.data_to_send()) == 1


def test_unknown_event_passes_through() -> None:
    pair = ProtocolPair("SpeechTranscriber")
    pair.client.start(StartTranscription())
    pair.to_server()
    pair.server.send_event("TranscriptionStarted")
    pair.to_client()
    pair.client.receive_text(
        json.dumps(
            {
                "header": {"name": "SentenceSemantics", "task_id": pair.client.task_id},
                "payload": {"x": 1},
            }
        )
    )
    (event,) = pair.client.events_received()
    assert event.header.name == "SentenceSemantics" and event.payload == {"x": 1}


def test_generic_namespace_is_permissive() -> None:
    pair = ProtocolPair("DialogAssistant")
    pair.client.send_command("ExecuteDialog", {"query": "hi"})
    pair.client.send_command("StopWakeWordVerification")
    assert len(pair.client.data_to_send()) == 2
    assert pair.client.state is TaskState.STARTED
