from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nls.protocol import ControlTranscriber, StartTranscription
from nls_gateway.tasks.base import Limits, Project, TaskError
from nls_gateway.tasks.transcriber import Transcriber
from tasks.fakes import FakeContext, ScriptedAsr, drive, frames, pcm, silence, tone


def two_sentences(gap: float = 1.5) -> bytes:
    return pcm(np.concatenate([silence(0.5), tone(1.0), silence(gap), tone(2.0), silence(1.5)]))


async def test_transcription_event_order_and_payloads(make_ctx) -> None:
    ctx: FakeContext = make_ctx("SpeechTranscriber")
    cmd = StartTranscription(enable_words=True)
    await drive(Transcriber(ctx, cmd), frames(two_sentences()))
    assert ctx.names() == [
        "TranscriptionStarted",
        "SentenceBegin",
        "SentenceEnd",
        "SentenceBegin",
        "SentenceEnd",
        "TranscriptionCompleted",
    ]
    started = ctx.payloads("TranscriptionStarted")[0]
    assert len(started["session_id"]) == 32
    begins = ctx.payloads("SentenceBegin")
    ends = ctx.payloads("SentenceEnd")
    assert [b["index"] for b in begins] == [1, 2]
    # Sentence 1 tone at 500–1500 ms, sentence 2 at 3000–5000 ms (pre-roll 300 ms).
    assert abs(begins[0]["time"] - 200) <= 64
    assert abs(begins[1]["time"] - 2700) <= 64
    assert ends[0]["begin_time"] == begins[0]["time"]
    assert 1500 <= ends[0]["time"] <= 2400
    assert ends[0]["result"] == "字" * 10
    assert ends[1]["result"] == "字" * 20
    assert set(ends[0]) >= {
        "index",
        "time",
        "begin_time",
        "result",
        "confidence",
        "words",
        "status",
    }
    assert ends[0]["status"] == 0
    words = ends[1]["words"]
    assert len(words) == 20
    assert set(words[0]) == {"text", "startTime", "endTime"}
    assert abs(words[0]["startTime"] - 3000) <= 20  # ms from the stream start
    assert ctx.payloads("TranscriptionCompleted") == [None]


async def test_transcription_session_id_echoed(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber")
    await drive(Transcriber(ctx, StartTranscription(session_id="abc")), [])
    assert ctx.payloads("TranscriptionStarted") == [{"session_id": "abc"}]
    assert ctx.names() == ["TranscriptionStarted", "TranscriptionCompleted"]


async def test_transcription_silence_gives_no_sentence(make_ctx, asr: ScriptedAsr) -> None:
    ctx = make_ctx("SpeechTranscriber")
    await drive(Transcriber(ctx, StartTranscription()), frames(pcm(silence(3.0))))
    assert ctx.names() == ["TranscriptionStarted", "TranscriptionCompleted"]
    assert asr.calls == []


async def test_transcription_stop_flushes_open_sentence(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber")
    await drive(
        Transcriber(ctx, StartTranscription()),
        frames(pcm(np.concatenate([silence(0.3), tone(1.5)]))),
    )
    assert ctx.names() == [
        "TranscriptionStarted",
        "SentenceBegin",
        "SentenceEnd",
        "TranscriptionCompleted",
    ]
    assert ctx.payloads("SentenceEnd")[0]["result"] == "字" * 15


async def test_transcription_intermediate_results(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber")
    handler = Transcriber(ctx, StartTranscription(enable_intermediate_result=True))
    await handler.on_start()
    for chunk in frames(pcm(np.concatenate([silence(0.3), tone(4.0), silence(1.5)]))):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.005)
    await handler.on_stop()
    await handler.close()
    names = ctx.names()
    assert names[:2] == ["TranscriptionStarted", "SentenceBegin"]
    assert names[-2:] == ["SentenceEnd", "TranscriptionCompleted"]
    partials = ctx.payloads("TranscriptionResultChanged")
    assert len(partials) >= 3  # about one per 0.8 s of a 4 s sentence
    assert all(p["index"] == 1 and p["status"] == 0 and "words" not in p for p in partials)
    assert [p["time"] for p in partials] == sorted(p["time"] for p in partials)
    assert set(names[2:-2]) == {"TranscriptionResultChanged"}


async def test_transcription_control_changes_max_sentence_silence(make_ctx) -> None:
    audio = two_sentences(gap=1.0)
    # With 1200 ms the 1 s gap does not end the sentence: one sentence.
    ctx = make_ctx("SpeechTranscriber")
    await drive(Transcriber(ctx, StartTranscription(max_sentence_silence=1200)), frames(audio))
    assert ctx.names().count("SentenceEnd") == 1
    # ControlTranscriber lowers it to 400 ms before the gap: two sentences.
    ctx = make_ctx("SpeechTranscriber")
    handler = Transcriber(ctx, StartTranscription(max_sentence_silence=1200))
    await handler.on_start()
    chunks = frames(audio)
    for i, chunk in enumerate(chunks):
        if i == 5:
            await handler.on_command(ControlTranscriber(max_sentence_silence=400))
        await handler.on_audio(chunk)
    await handler.on_stop()
    await handler.close()
    assert ctx.names().count("SentenceEnd") == 2
    with pytest.raises(TaskError) as err:
        await handler.on_command(ControlTranscriber(max_sentence_silence=100))
    assert err.value.status == 40000003


async def test_transcription_splits_over_long_speech(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber", limits=Limits(max_sentence_ms=2000))
    await drive(Transcriber(ctx, StartTranscription()), frames(pcm(tone(5.0))))
    ends = ctx.payloads("SentenceEnd")
    assert len(ends) >= 2
    assert all(e["time"] - e["begin_time"] <= 2100 for e in ends)
    assert [e["index"] for e in ends] == list(range(1, len(ends) + 1))


@pytest.mark.parametrize(
    ("cmd", "status"),
    [
        (StartTranscription(format="ogg"), 41010100),
        (StartTranscription(sample_rate=22050), 41010101),
        (StartTranscription(max_sentence_silence=100), 40000003),
        (StartTranscription(max_sentence_silence=7000), 40000003),
        (StartTranscription(speech_noise_threshold=1.5), 40000003),
    ],
)
async def test_transcription_start_validation(
    make_ctx, cmd: StartTranscription, status: int
) -> None:
    ctx = make_ctx("SpeechTranscriber")
    handler = Transcriber(ctx, cmd)
    with pytest.raises(TaskError) as err:
        await handler.on_start()
    await handler.close()
    assert err.value.status == status
    assert ctx.events == []


async def test_transcription_project_language_reaches_engine(make_ctx, runner) -> None:
    from nls_gateway.engines.base import AsrOptions
    from nls_gateway.tasks.base import Project

    seen: list[AsrOptions] = []
    original = runner.decode

    async def spy(asr, audio, options, *, stream):
        seen.append(options)
        return await original(asr, audio, options, stream=stream)

    runner.decode = spy
    ctx = make_ctx("SpeechTranscriber", project=Project(appkey="k", language="en"))
    cmd = StartTranscription(
        enable_punctuation_prediction=True, enable_inverse_text_normalization=True
    )
    await drive(Transcriber(ctx, cmd), frames(two_sentences()))
    assert seen and all(o.language == "en" and o.punctuation for o in seen)
    assert all(o.inverse_text_normalization and o.final for o in seen)


async def test_transcription_close_cancels_worker(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber")
    handler = Transcriber(ctx, StartTranscription())
    await handler.on_start()
    for chunk in frames(two_sentences()):
        await handler.on_audio(chunk)
    await handler.close()
    assert handler._worker is not None and handler._worker.done()


async def test_transcription_vocabulary_and_project_model_reach_the_engine(
    make_ctx, asr: ScriptedAsr
) -> None:
    project = Project(appkey="k", asr_model="/models/x", vocabularies={"v1": ("通义",)})
    ctx = make_ctx("SpeechTranscriber", project=project)
    await drive(Transcriber(ctx, StartTranscription(vocabulary_id="v1")), frames(two_sentences()))
    assert len(ctx.payloads("SentenceEnd")) == 2
    assert asr.options and all(o.hotwords == ("通义",) for o in asr.options)
    assert all(o.model == "/models/x" for o in asr.options)


async def test_transcription_unknown_vocabulary_id_is_40000003(make_ctx) -> None:
    ctx = make_ctx("SpeechTranscriber")
    with pytest.raises(TaskError) as err:
        await Transcriber(ctx, StartTranscription(vocabulary_id="v9")).on_start()
    assert err.value.status == 40000003
    assert "Invalid vocabulary_id 'v9'!" in err.value.status_text
    assert ctx.events == []


async def test_transcription_sentence_end_reuses_the_pause_decode(
    make_ctx, asr: ScriptedAsr
) -> None:
    ctx = make_ctx("SpeechTranscriber")
    handler = Transcriber(ctx, StartTranscription())
    await handler.on_start()
    for chunk in frames(two_sentences()):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.005)  # let the speculative decode run during the pause
    await handler.on_stop()
    await handler.close()
    assert [e["result"] for e in ctx.payloads("SentenceEnd")] == ["字" * 10, "字" * 20]
    assert len([c for c in asr.calls if c[1]]) == 2  # one final decode per sentence


async def test_transcription_speech_after_a_short_pause_drops_the_speculative_decode(
    make_ctx,
) -> None:
    ctx = make_ctx("SpeechTranscriber")
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.4), tone(1.0), silence(1.5)])
    handler = Transcriber(ctx, StartTranscription())
    await handler.on_start()
    for chunk in frames(pcm(audio)):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.005)
    await handler.on_stop()
    await handler.close()
    assert [e["result"] for e in ctx.payloads("SentenceEnd")] == ["字" * 20]
