from __future__ import annotations

import asyncio

import pytest

from nls.protocol import StartSynthesis
from nls_gateway.tasks import HANDLERS
from nls_gateway.tasks.base import Limits, Project, TaskError
from nls_gateway.tasks.synthesizer import Synthesizer
from tasks.fakes import FakeContext, ScriptedTts


async def run(ctx: FakeContext, cmd: StartSynthesis) -> Synthesizer:
    handler = Synthesizer(ctx, cmd)
    await handler.on_start()
    await handler.on_stop()  # no stop command: waits for the background synthesis
    await handler.close()
    return handler


def test_handlers_cover_every_namespace() -> None:
    assert set(HANDLERS) == {
        "SpeechRecognizer",
        "SpeechTranscriber",
        "SpeechSynthesizer",
        "SpeechLongSynthesizer",
        "FlowingSpeechSynthesizer",
    }


async def test_synthesis_pcm_audio_then_completed(make_ctx) -> None:
    ctx = make_ctx("SpeechSynthesizer")
    handler = await run(ctx, StartSynthesis(text="你好，世界。", sample_rate=16000))
    assert handler.done
    assert ctx.names() == ["SynthesisCompleted"]
    assert ctx.payloads("SynthesisCompleted") == [None]
    assert ctx.log[-1] == "SynthesisCompleted" and ctx.log[0] == "audio"
    total = sum(len(a) for a in ctx.audio)
    # 6 characters × 50 ms = 300 ms at 16 kHz, 16-bit
    assert abs(total - 0.3 * 16000 * 2) <= 200


async def test_long_synthesis_is_sent_as_it_is_encoded(make_ctx) -> None:
    # Frames of at most 64 KiB are the protocol core's (tests/protocol/test_client_server.py).
    ctx = make_ctx("SpeechLongSynthesizer")
    await run(ctx, StartSynthesis(text="很长的一句话。" * 60, sample_rate=48000, format="wav"))
    assert len(ctx.audio) > 1
    assert ctx.audio[0][:4] == b"RIFF"


async def test_synthesis_streams_chunk_by_chunk(make_ctx, tts: ScriptedTts) -> None:
    ctx = make_ctx("SpeechLongSynthesizer")
    handler = Synthesizer(ctx, StartSynthesis(text="第一句。" * 50))
    await handler.on_start()
    while not ctx.audio:
        await asyncio.sleep(0.001)
    assert tts.pulled < 50  # audio flows before the whole text is synthesized
    await handler.on_stop()
    await handler.close()
    assert tts.pulled == 50


async def test_synthesis_metainfo_subtitles(make_ctx) -> None:
    ctx = make_ctx("SpeechSynthesizer")
    text = "你好，世界。再见！"
    await run(ctx, StartSynthesis(text=text, enable_subtitle=True))
    metas = ctx.payloads("MetaInfo")
    assert len(metas) == 3  # one per chunk (three clauses)
    # MetaInfo precedes the audio of its chunk.
    assert ctx.log[0] == "MetaInfo" and ctx.log[1] == "audio"
    first, second, third = (m["subtitles"] for m in metas)
    keys = {"text", "begin_time", "end_time", "begin_index", "end_index", "sentence", "phoneme"}
    assert all(set(e) == keys for e in first + second + third)
    assert first[0]["sentence"] is True and first[0]["phoneme"] == "null"
    assert [e["text"] for e in first[1:]] == ["你", "好"]
    # Cumulative within the first sentence, restarting with the second.
    assert [e["text"] for e in second[1:]] == ["你", "好", "世", "界"]
    assert [e["text"] for e in third[1:]] == ["再", "见"]
    assert second[0]["begin_index"] == 0 and second[0]["end_index"] == 5
    assert third[1]["begin_index"] == 6
    # Times in ms from the audio start: 50 ms per character (clause "你好，" = 150 ms).
    assert second[3]["begin_time"] == 150
    assert third[1]["begin_time"] == 300
    assert ctx.names()[-1] == "SynthesisCompleted"


async def test_synthesis_ssml_break_and_indexes(make_ctx) -> None:
    ctx = make_ctx("SpeechSynthesizer")
    text = '<speak>你好<break time="500ms"/>世界</speak>'
    await run(ctx, StartSynthesis(text=text, enable_subtitle=True))
    # One sentence: the last MetaInfo holds it all (cumulative), indexes into the SSML.
    entries = [e for e in ctx.payloads("MetaInfo")[-1]["subtitles"] if not e["sentence"]]
    assert [(e["text"], e["begin_index"]) for e in entries] == [
        ("你", 7),
        ("好", 8),
        ("世", 30),
        ("界", 31),
    ]
    assert entries[2]["begin_time"] == 100 + 500
    total = sum(len(a) for a in ctx.audio)
    assert abs(total - 0.7 * 16000 * 2) <= 200


async def test_synthesis_default_voice_from_project(make_ctx, tts: ScriptedTts) -> None:
    ctx = make_ctx("SpeechSynthesizer", project=Project(appkey="k", voice="xiaogang"))
    handler = Synthesizer(ctx, StartSynthesis(text="你好"))
    await handler.on_start()
    assert handler._voice.options.voice == "xiaogang"
    await handler.close()


@pytest.mark.parametrize(
    ("cmd", "status", "fragment"),
    [
        (StartSynthesis(text=""), 40010003, "No text specified!"),
        (StartSynthesis(text=None), 40010003, "No text specified!"),
        (StartSynthesis(text="好" * 301), 41020001, "should be less than 300"),
        (StartSynthesis(text="。，！"), 41020001, "nothing to speak"),
        (StartSynthesis(text="你好", voice="nobody"), 40000003, "Invalid voice name 'nobody'!"),
        (StartSynthesis(text="你好", format="ogg"), 40000003, "format"),
        (StartSynthesis(text="你好", sample_rate=4000), 40000003, "sample_rate"),
        (StartSynthesis(text="你好", volume=101), 40000003, "volume"),
        (StartSynthesis(text="你好", speech_rate=600), 40000003, "speech_rate"),
        (StartSynthesis(text="你好", pitch_rate=-501), 40000003, "pitch_rate"),
        (
            StartSynthesis(text="<speak>你好<prosody rate='2'>x</prosody></speak>"),
            41020001,
            "Illegal ssml text",
        ),
        (StartSynthesis(text="<speak>你好"), 41020001, "Illegal ssml text"),
    ],
)
async def test_synthesis_validation(make_ctx, cmd, status: int, fragment: str) -> None:
    ctx = make_ctx("SpeechSynthesizer")
    handler = Synthesizer(ctx, cmd)
    with pytest.raises(TaskError) as err:
        await handler.on_start()
    await handler.close()
    assert err.value.status == status
    assert fragment in err.value.status_text
    assert ctx.events == [] and ctx.audio == []


async def test_long_synthesis_limit(make_ctx) -> None:
    ctx = make_ctx("SpeechLongSynthesizer", limits=Limits(max_long_tts_chars=1000))
    await run(ctx, StartSynthesis(text="好" * 1000))
    assert ctx.names() == ["SynthesisCompleted"]
    ctx = make_ctx("SpeechLongSynthesizer", limits=Limits(max_long_tts_chars=1000))
    with pytest.raises(TaskError) as err:
        await Synthesizer(ctx, StartSynthesis(text="好" * 1001)).on_start()
    assert err.value.status == 41020001


async def test_synthesis_close_cancels_background(make_ctx, tts: ScriptedTts) -> None:
    ctx = make_ctx("SpeechLongSynthesizer")
    handler = Synthesizer(ctx, StartSynthesis(text="第一句。" * 200))
    await handler.on_start()
    while not ctx.audio:
        await asyncio.sleep(0.001)
    await handler.close()
    # A chunk already being made ahead in the executor may still finish; nothing after it.
    await asyncio.sleep(0.05)
    pulled = tts.pulled
    await asyncio.sleep(0.05)
    assert tts.pulled == pulled < 200
    assert "SynthesisCompleted" not in ctx.names()
    assert not handler.done


async def test_synthesis_mp3_and_volume(make_ctx) -> None:
    ctx = make_ctx("SpeechSynthesizer")
    await run(ctx, StartSynthesis(text="你好，世界。", format="mp3", volume=80, pitch_rate=200))
    data = b"".join(ctx.audio)
    assert data[:3] == b"ID3" or data[0] == 0xFF
    assert ctx.names() == ["SynthesisCompleted"]
