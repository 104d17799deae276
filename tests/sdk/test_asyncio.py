"""The asyncio API against the scripted server: typed events, helpers, TaskFailedError."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import nls.asyncio as nlsa
from nls.exception import ConnectionUnavailable, InvalidStateError, TaskFailedError
from nls.protocol import SentenceBegin, SentenceEnd, TranscriptionStarted

from .fakeserver import GOOD_TOKEN, FakeNls, running


@pytest.fixture
def server() -> Iterator[FakeNls]:
    with running() as fake:
        yield fake


async def test_recognize_helper_returns_text(server: FakeNls) -> None:
    text = await nlsa.recognize(b"\x00\x00" * 800, url=server.url, appkey="k", token=GOOD_TOKEN)
    assert text == "bytes=1600"


async def test_transcriber_typed_events(server: FakeNls) -> None:
    async with nlsa.AsyncSpeechTranscriber(
        server.url, appkey="k", token=GOOD_TOKEN, enable_intermediate_result=True
    ) as st:
        assert isinstance(st.started.result(), TranscriptionStarted)  # type: ignore[union-attr]
        await st.send_audio(b"\x00\x00" * 100)
        await st.control(max_sentence_silence=600)
        await st.finish()
        events = [e async for e in st.events()]
    kinds = [type(e) for e in events]
    assert kinds[0] is TranscriptionStarted and SentenceBegin in kinds and SentenceEnd in kinds
    end = next(e for e in events if isinstance(e, SentenceEnd))
    assert end.result == "bytes=200" and end.index == 1
    assert server.commands()[1]["payload"] == {"max_sentence_silence": 600}


async def test_transcribe_helper(server: FakeNls) -> None:
    sentences = await nlsa.transcribe(
        b"\x00\x00" * 100, url=server.url, appkey="k", token=GOOD_TOKEN
    )
    assert [s.result for s in sentences] == ["bytes=200"]


async def test_synthesize_helper_returns_bytes(server: FakeNls) -> None:
    audio = await nlsa.synthesize(
        "好", url=server.url, appkey="k", token=GOOD_TOKEN, voice="xiaoyun"
    )
    assert audio == "好".encode() * 1000


async def test_stream_input_synthesizer(server: FakeNls) -> None:
    async with nlsa.AsyncStreamInputSynthesizer(server.url, appkey="k", token=GOOD_TOKEN) as tts:
        await tts.send_text("一。")
        await tts.send_text("二。")
        await tts.finish()
        audio = b"".join([chunk async for chunk in tts.audio()])
    assert audio == "一。二。".encode()


async def test_task_failed_error_carries_status(server: FakeNls) -> None:
    server.mode = "fail_start"
    with pytest.raises(TaskFailedError) as info:
        await nlsa.recognize(b"\x00\x00", url=server.url, appkey="k", token=GOOD_TOKEN)
    assert info.value.status == 41010101
    assert info.value.status_text == "Realtime:UNSUPPORTED_SAMPLE_RATE:nope"
    assert len(info.value.task_id) == 32


async def test_failed_start_closes_the_connection(server: FakeNls) -> None:
    server.mode = "fail_start"
    sr = nlsa.AsyncSpeechRecognizer(server.url, appkey="k", token=GOOD_TOKEN)
    with pytest.raises(TaskFailedError):
        async with sr:
            pass
    assert sr.connection is not None
    assert sr.connection.closed.is_set()
    assert sr.connection.websocket.close_code == 1000


async def test_rejected_handshake_raises_connection_unavailable(server: FakeNls) -> None:
    with pytest.raises(ConnectionUnavailable) as info:
        await nlsa.recognize(b"\x00\x00", url=server.url, appkey="k", token="nope")
    assert info.value.http_status == 403
    assert info.value.body == "Meta:ACCESS_DENIED:The token 'nope' is invalid!"


async def test_send_audio_before_start_raises(server: FakeNls) -> None:
    st = nlsa.AsyncSpeechTranscriber(server.url, appkey="k", token=GOOD_TOKEN)
    with pytest.raises(InvalidStateError):
        await st.send_audio(b"\x00\x00")


async def test_audio_goes_out_at_once_unless_the_socket_has_a_backlog(server: FakeNls) -> None:
    async with nlsa.AsyncSpeechRecognizer(server.url, appkey="k", token=GOOD_TOKEN) as sr:
        conn = sr.connection
        assert conn is not None
        assert conn.send_audio_nowait(b"\x01\x00" * 100)  # written to the transport already
        transport = conn.websocket.transport
        backlog = transport.get_write_buffer_size
        transport.get_write_buffer_size = lambda: 1  # type: ignore[method-assign]
        assert not conn.send_audio_nowait(b"\x02\x00" * 200)  # nothing sent: caller awaits
        await sr.send_audio(b"\x03\x00" * 300)  # the awaiting path still sends, in order
        transport.get_write_buffer_size = backlog  # type: ignore[method-assign]
        result = await sr.finish()
    assert result.result == "bytes=800"
    assert [len(f) for f in server.frames if isinstance(f, bytes)] == [200, 600]
    with pytest.raises(InvalidStateError):
        await sr.send_audio(b"\x00\x00")  # the task is over: no fast path around the rules
