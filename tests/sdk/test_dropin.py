"""The drop-in classes against a scripted server: callbacks, arguments, return values,
failures reaching on_error/on_close exactly once, timeouts, shutdown from callbacks."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import nls
from nls.exception import InvalidParameter, WrongStateException

from .fakeserver import GOOD_TOKEN, FakeNls, running


class Recorder:
    """Collects callback calls as (name, args) in order, thread-safe."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        def callback(*args: Any) -> None:
            with self.lock:
                self.calls.append((name, args))
            if name == "on_close":
                self.closed.set()

        return callback

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [a for n, a in self.calls if n == name]


@pytest.fixture
def server() -> Iterator[FakeNls]:
    with running() as fake:
        yield fake


def _recognizer(url: str, rec: Recorder, token: str = GOOD_TOKEN) -> nls.NlsSpeechRecognizer:
    return nls.NlsSpeechRecognizer(
        url=url,
        token=token,
        appkey="appkey",
        on_start=rec.on_start,
        on_result_changed=rec.on_result_changed,
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
        callback_args=["A", "B"],
    )


def test_recognizer_callbacks_and_arguments(server: FakeNls) -> None:
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    assert sr.start(aformat="pcm", enable_intermediate_result=True, ex={"hello": 123}) is True
    for _ in range(5):
        assert sr.send_audio(b"\x00\x01" * 320) is True
    assert sr.stop() is True
    assert rec.closed.wait(5)
    assert rec.names() == ["on_start", "on_result_changed", "on_completed", "on_close"]
    message, *extra = rec.args("on_completed")[0]
    assert extra == ["A", "B"]
    assert json.loads(message)["payload"]["result"] == "bytes=3200"
    assert rec.args("on_close") == [("A", "B")]
    start = server.commands()[0]
    assert start["payload"]["hello"] == 123
    assert start["context"]["sdk"]["name"] == "nls-python-sdk"


def test_send_audio_before_start_returns_false(server: FakeNls) -> None:
    sr = _recognizer(server.url, Recorder())
    assert sr.send_audio(b"\x00\x00") is False
    assert sr.stop() is False
    sr.shutdown()
    sr.shutdown()  # idempotent, also before start


def test_handshake_403_reaches_on_error_with_body(server: FakeNls) -> None:
    rec = Recorder()
    sr = _recognizer(server.url, rec, token="bad")
    assert sr.start() is False
    assert rec.closed.wait(5)
    assert rec.names() == ["on_error", "on_close"]
    header = json.loads(rec.args("on_error")[0][0])["header"]
    assert header["status"] == 40000001
    assert "The token 'bad' is invalid!" in header["status_text"]
    assert {"status", "status_text", "task_id"} <= set(header)
    assert sr.send_audio(b"\x00\x00") is False


def test_refused_connection_reaches_on_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = Recorder()
    sr = _recognizer(f"ws://127.0.0.1:{port}/ws/v1", rec)
    assert sr.start(timeout=3) is False
    assert rec.closed.wait(5)
    assert rec.names() == ["on_error", "on_close"]


def test_task_failed_at_start(server: FakeNls) -> None:
    server.mode = "fail_start"
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    assert sr.start(sample_rate=8000) is False
    assert rec.closed.wait(5)
    assert rec.names() == ["on_error", "on_close"]
    assert json.loads(rec.args("on_error")[0][0])["header"]["status"] == 41010101


def test_start_timeout_is_honoured(server: FakeNls) -> None:
    server.mode = "silent"
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    t0 = time.monotonic()
    assert sr.start(timeout=0.5) is False
    assert time.monotonic() - t0 < 2.0
    assert rec.closed.wait(5)
    assert rec.names() == ["on_error", "on_close"]
    assert (
        "StartTimeoutException" in json.loads(rec.args("on_error")[0][0])["header"]["status_text"]
    )


def test_stop_timeout_is_honoured(server: FakeNls) -> None:
    server.mode, server.delay = "slow_stop", 3.0
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    assert sr.start() is True
    sr.send_audio(b"\x00\x00" * 100)
    t0 = time.monotonic()
    assert sr.stop(timeout=0.5) is False
    assert time.monotonic() - t0 < 2.0
    assert rec.closed.wait(5)
    assert rec.names().count("on_error") == 1 and rec.names().count("on_close") == 1


def test_server_closing_early(server: FakeNls) -> None:
    server.mode = "close_early"
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    assert sr.start() is True
    sr.send_audio(b"\x00\x00" * 100)
    assert rec.closed.wait(5)
    assert sr.send_audio(b"\x00\x00") is False
    assert sr.stop(timeout=1) is False
    assert rec.names() == ["on_start", "on_error", "on_close"]
    assert "1011" in json.loads(rec.args("on_error")[0][0])["header"]["status_text"]


def test_non_json_frame_reaches_on_error(server: FakeNls) -> None:
    server.mode = "garbage"
    rec = Recorder()
    sr = _recognizer(server.url, rec)
    sr.start()
    assert rec.closed.wait(5)
    assert rec.names().count("on_error") == 1 and rec.names().count("on_close") == 1


def test_shutdown_inside_on_completed_does_not_deadlock(server: FakeNls) -> None:
    rec = Recorder()
    holder: dict[str, nls.NlsSpeechRecognizer] = {}

    def on_completed(message: str, *args: Any) -> None:
        holder["sr"].shutdown()
        rec.on_completed(message, *args)

    sr = holder["sr"] = nls.NlsSpeechRecognizer(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        on_completed=on_completed,
        on_close=rec.on_close,
    )
    assert sr.start()
    sr.send_audio(b"\x00\x00" * 10)
    assert sr.stop(timeout=5) is True
    assert rec.closed.wait(5)
    assert rec.names() == ["on_completed", "on_close"]


def test_stop_inside_a_callback_does_not_deadlock(server: FakeNls) -> None:
    rec = Recorder()
    result: dict[str, bool] = {}
    holder: dict[str, nls.NlsSpeechTranscriber] = {}

    def on_sentence_begin(message: str, *args: Any) -> None:
        result["stop"] = holder["st"].stop(timeout=5)

    st = holder["st"] = nls.NlsSpeechTranscriber(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        on_sentence_begin=on_sentence_begin,
        on_completed=rec.on_completed,
        on_close=rec.on_close,
    )
    assert st.start(enable_intermediate_result=True)
    st.send_audio(b"\x00\x00" * 10)
    assert rec.closed.wait(5)
    assert result == {"stop": True}


def test_transcriber_ctrl_both_forms_and_sentence_callbacks(server: FakeNls) -> None:
    rec = Recorder()
    st = nls.NlsSpeechTranscriber(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        on_start=rec.on_start,
        on_sentence_begin=rec.on_sentence_begin,
        on_sentence_end=rec.on_sentence_end,
        on_result_changed=rec.on_result_changed,
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
        callback_args=[7],
    )
    assert st.start(enable_punctutation_prediction=True)
    st.send_audio(b"\x00\x00" * 100)
    assert st.ctrl(ex={"test": "tttt"}) is True
    assert st.ctrl(max_sentence_silence=1000) is True
    assert st.stop() is True
    assert rec.closed.wait(5)
    assert rec.names() == [
        "on_start",
        "on_sentence_begin",
        "on_sentence_end",
        "on_completed",
        "on_close",
    ]
    assert all(args[-1] == 7 for _, args in rec.calls)
    commands = server.commands()
    assert commands[0]["payload"]["enable_punctuation_prediction"] is True
    controls = [c for c in commands if c["header"]["name"] == "ControlTranscriber"]
    assert [c["payload"] for c in controls] == [{"test": "tttt"}, {"max_sentence_silence": 1000}]
    with pytest.raises(InvalidParameter):
        st.ctrl()


def test_synthesizer_streams_on_data_and_blocks_until_complete(server: FakeNls) -> None:
    rec = Recorder()
    tts = nls.NlsSpeechSynthesizer(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        long_tts=True,
        on_metainfo=rec.on_metainfo,
        on_data=rec.on_data,
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
        callback_args=["X"],
    )
    assert tts.start("你好", voice="ailun", ex={"enable_subtitle": True}) is True
    audio = b"".join(args[0] for args in rec.args("on_data"))
    assert audio == "你好".encode() * 1000
    assert rec.names()[0] == "on_metainfo"
    assert "on_completed" in rec.names()
    assert rec.closed.wait(5)
    assert server.commands()[0]["header"]["namespace"] == "SpeechLongSynthesizer"


def test_stream_input_tts(server: FakeNls) -> None:
    rec = Recorder()
    tts = nls.NlsStreamInputTtsSynthesizer(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        on_data=rec.on_data,
        on_sentence_begin=rec.on_sentence_begin,
        on_sentence_synthesis=rec.on_sentence_synthesis,
        on_sentence_end=rec.on_sentence_end,
        on_completed=rec.on_completed,
        on_error=rec.on_error,
        on_close=rec.on_close,
    )
    with pytest.raises(WrongStateException):
        tts.sendStreamInputTts("早")
    assert tts.startStreamInputTts(volumn=70) is True
    assert tts.sendStreamInputTts("今天天气不错。") is True
    assert tts.stopStreamInputTts() is True
    assert rec.closed.wait(5)
    assert rec.names() == [
        "on_sentence_begin",
        "on_data",
        "on_sentence_synthesis",
        "on_sentence_end",
        "on_completed",
        "on_close",
    ]
    start = server.commands()[0]
    assert start["payload"]["volume"] == 70 and "volumn" not in start["payload"]
    assert "context" not in start


def test_common_proto_user_callbacks(server: FakeNls) -> None:
    rec = Recorder()
    proto = nls.NlsCommonProto(
        url=server.url,
        token=GOOD_TOKEN,
        appkey="k",
        namespace="SpeechRecognizer",
        on_open=rec.on_open,
        on_data=rec.on_data,
        on_error=rec.on_error,
        on_close=rec.on_close,
        user_callback={
            "RecognitionStarted": rec.on_start,
            "RecognitionCompleted": rec.on_completed,
        },
        callback_args=[1],
    )
    assert proto.start(name="StartRecognition", payload={"format": "pcm", "sample_rate": 16000})
    deadline = time.monotonic() + 5
    while "on_start" not in rec.names() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proto.send_binary(b"\x00\x00" * 10)
    assert proto.send_text(name="StopRecognition")
    assert rec.closed.wait(5)
    assert rec.names() == ["on_open", "on_start", "on_completed", "on_close"]
    assert rec.args("on_open") == [(1,)]


def test_invalid_parameters_raise_before_io() -> None:
    with pytest.raises(InvalidParameter, match="appkey"):
        nls.NlsSpeechRecognizer(token="t")
    with pytest.raises(InvalidParameter, match="token"):
        nls.NlsSpeechRecognizer(appkey="k")
    sr = nls.NlsSpeechRecognizer(url="ws://127.0.0.1:9/ws/v1", token="t", appkey="k")
    with pytest.raises(InvalidParameter, match="aformat"):
        sr.start(aformat="flac")
    with pytest.raises(InvalidParameter, match="ch"):
        sr.start(ch=2)
    with pytest.raises(InvalidParameter, match="sample_rate"):
        sr.start(sample_rate=44100)
    tts = nls.NlsSpeechSynthesizer(url="ws://127.0.0.1:9/ws/v1", token="t", appkey="k")
    with pytest.raises(InvalidParameter, match="volume"):
        tts.start("x", volume=101)


def test_many_concurrent_sessions_use_bounded_threads(server: FakeNls) -> None:
    count = 500
    rec = Recorder()
    sessions = [_recognizer(server.url, rec) for _ in range(count)]
    for sr in sessions:
        assert sr.start(timeout=20)
    assert threading.active_count() <= 16 + 2  # test server thread + pytest's own
    for sr in sessions:
        assert sr.send_audio(b"\x00\x00" * 160)
    for sr in sessions:
        assert sr.stop(timeout=20)
    deadline = time.monotonic() + 20
    while len(rec.args("on_close")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(rec.args("on_completed")) == count
    assert len(rec.args("on_close")) == count
    assert not rec.args("on_error")
