"""The cloud's envelope and state rules, enforced by ServerProtocol (§9, §14)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nls.exception import LocalProtocolError
from nls.protocol import ServerProtocol, Status, TaskState, parse_message

TASK = "a" * 32
MSG = "b" * 32


def _cmd(name: str, namespace: str = "SpeechRecognizer", **header: Any) -> str:
    h = {"message_id": MSG, "task_id": TASK, "namespace": namespace, "name": name, "appkey": "k"}
    h.update(header)
    payload = header.pop("payload", None)
    body: dict[str, Any] = {"header": {k: v for k, v in h.items() if v is not None}}
    if payload is not None:
        body["payload"] = payload
    return json.dumps(body)


def _failure(server: ServerProtocol) -> dict[str, Any]:
    (frame,) = server.data_to_send()
    assert isinstance(frame, str)
    header = json.loads(frame)["header"]
    assert header["name"] == "TaskFailed" and server.should_close
    return header  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("frame", "status"),
    [
        ("not json", 40000002),
        ("[1, 2]", 40000002),
        ('{"payload": {}}', 40000002),
        (_cmd("StartRecognition", message_id="xyz"), 40000002),
        (_cmd("StartRecognition", task_id="A" * 32), 40000002),
        (_cmd("StartRecognition", namespace="NoSuchNamespace"), 40010001),
        (_cmd("StartRecognition", appkey=None), 40000003),
        (_cmd("StopRecognition"), 40010005),
        (_cmd("Dance"), 40010005),
    ],
)
def test_bad_first_frame_fails_with_documented_status(frame: str, status: int) -> None:
    server = ServerProtocol()
    server.receive_text(frame)
    assert server.events_received() == []
    assert _failure(server)["status"] == status


def test_wrong_payload_type_is_directive_invalid() -> None:
    server = ServerProtocol()
    server.receive_text(
        json.dumps(
            {
                "header": json.loads(_cmd("StartRecognition"))["header"],
                "payload": {"sample_rate": "16000"},
            }
        )
    )
    header = _failure(server)
    assert header["status"] == 40010003 and "sample_rate" in header["status_text"]
    assert header["namespace"] == "SpeechRecognizer" and header["task_id"] == TASK


def test_second_stop_is_task_state_error() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartRecognition"))
    server.send_event("RecognitionStarted")
    server.receive_text(_cmd("StopRecognition"))
    server.data_to_send()
    assert len(server.events_received()) == 2
    server.receive_text(_cmd("StopRecognition"))
    header = _failure(server)
    assert header["status"] == 40010005
    assert header["status_text"].endswith("Got StopRecognition directive while task is stopping!")


def test_audio_before_start_is_task_state_error() -> None:
    server = ServerProtocol()
    server.receive_binary(b"\x00\x00")
    assert _failure(server)["status"] == Status.TASK_STATE_ERROR
    server.receive_text(_cmd("StartRecognition"))  # ignored once failed
    assert server.events_received() == [] and server.data_to_send() == []


def test_audio_after_completion_is_ignored() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartRecognition"))
    server.send_event("RecognitionStarted")
    server.send_event("RecognitionCompleted", {"result": ""})  # server VAD ended the task
    server.receive_binary(b"\x00\x00")
    assert [type(e).__name__ for e in server.events_received()] == ["CommandReceived"]
    assert not server.should_close


def test_task_id_mismatch_mid_task() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartRecognition"))
    server.receive_text(_cmd("StopRecognition", task_id="c" * 32))
    server.data_to_send()
    assert server.state is TaskState.FAILED


def test_gateway_failure_uses_default_namespace_and_idle_text() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartRecognition"))
    server.send_event("RecognitionStarted")
    server.data_to_send()
    server.fail(
        Status.IDLE_TIMEOUT, Status.IDLE_TIMEOUT.text.format(server.last_directive), gateway=True
    )
    header = _failure(server)
    assert header["namespace"] == "Default" and header["status"] == 40000004
    assert header["status_text"].endswith("the last directive is 'StartRecognition'!")


def test_server_cannot_emit_out_of_order() -> None:
    server = ServerProtocol()
    with pytest.raises(LocalProtocolError):
        server.send_event("RecognitionStarted")
    server.receive_text(_cmd("StartRecognition"))
    with pytest.raises(LocalProtocolError):
        server.send_event("RecognitionResultChanged")
    with pytest.raises(LocalProtocolError):
        server.send_audio(b"x")


def test_events_have_integer_status_and_status_text() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartRecognition"))
    server.send_event("RecognitionStarted")
    (frame,) = server.data_to_send()
    message = parse_message(frame)
    assert message.header.status == 20000000
    assert message.header.status_text == "Gateway:SUCCESS:Success."
    assert message.header.task_id == TASK


def test_flowing_accepts_volumn_and_cpp_style_run_synthesis() -> None:
    server = ServerProtocol()
    start = json.loads(_cmd("StartSynthesis", namespace="FlowingSpeechSynthesizer"))
    start["payload"] = {"voice": "longxiaochun", "volumn": 80}
    server.receive_text(json.dumps(start))
    server.send_event("SynthesisStarted")
    run = json.loads(_cmd("RunSynthesis", namespace="FlowingSpeechSynthesizer"))
    run["payload"] = {"text": "你好", "voice": "longxiaochun", "sample_rate": 16000}
    server.receive_text(json.dumps(run))
    first, second = server.events_received()
    assert first.command.volume == 80
    assert second.command.text == "你好" and second.command.extra["sample_rate"] == 16000


def test_node_control_transcription_spelling_accepted() -> None:
    server = ServerProtocol()
    server.receive_text(_cmd("StartTranscription", namespace="SpeechTranscriber"))
    server.send_event("TranscriptionStarted")
    server.receive_text(_cmd("ControlTranscription", namespace="SpeechTranscriber"))
    assert len(server.events_received()) == 2 and not server.should_close
