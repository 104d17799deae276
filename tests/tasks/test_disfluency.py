"""disfluency=true through the recognition tasks, with an engine that says fillers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from nls.protocol import StartRecognition, StartTranscription
from nls_gateway.engines.base import AsrOptions, AsrResult, Float32Array, Word
from nls_gateway.engines.text.asr_zh import strip_punctuation
from nls_gateway.tasks.base import Engines
from nls_gateway.tasks.recognizer import Recognizer
from nls_gateway.tasks.transcriber import Transcriber
from nls_gateway.testing import ScriptedVad
from tasks.fakes import RATE, FakeContext, drive, frames, pcm, silence, tone

SAID = "嗯，那个，我们走吧"
WORDS = ("嗯", "那个", "我", "们", "走", "吧")


class FillerAsr:
    """Always hears SAID, one word per 200 ms; punctuation and words as Whisper gives
    them (marks only when asked, words for finals only when asked)."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.options: list[AsrOptions] = []

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        self.options.append(options)
        text = SAID if options.punctuation else strip_punctuation(SAID)
        words = tuple(Word(w, 200 * k, 200 * k + 200) for k, w in enumerate(WORDS))
        return AsrResult(text, words if options.final and options.words else (), 0.9, "zh")

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        return [self.transcribe(a, o) for a, o in zip(audios, options, strict=True)]


@pytest.fixture
def filler() -> FillerAsr:
    return FillerAsr()


def _speech() -> list[bytes]:
    return frames(pcm(np.concatenate([silence(0.3), tone(2.0), silence(1.5)])))


def _ctx(make_ctx, asr: FillerAsr, namespace: str) -> FakeContext:
    ctx: FakeContext = make_ctx(namespace, engines=Engines(asr=asr, vad=ScriptedVad()))
    return ctx


@pytest.mark.parametrize(("punctuation", "expected"), [(True, "我们走吧。"), (False, "我们走吧")])
async def test_transcriber_removes_fillers_and_their_words(
    make_ctx, filler: FillerAsr, punctuation: bool, expected: str
) -> None:
    ctx = _ctx(make_ctx, filler, "SpeechTranscriber")
    cmd = StartTranscription(
        disfluency=True,
        enable_words=True,
        enable_intermediate_result=True,
        enable_punctuation_prediction=punctuation,
    )
    await drive(Transcriber(ctx, cmd), _speech())
    (end,) = ctx.payloads("SentenceEnd")
    assert end["result"] == expected
    assert [w["text"] for w in end["words"]] == ["我", "们", "走", "吧"]
    first = end["begin_time"] + 400  # 我 was the third word, 400 ms into the sentence
    assert end["words"][0]["startTime"] == first
    changed = ctx.payloads("TranscriptionResultChanged")
    assert changed and {c["result"] for c in changed} == {expected.rstrip("。")}
    # the filler rules need the marks, so the engine always punctuates
    assert all(o.punctuation for o in filler.options)


async def test_transcriber_keeps_fillers_without_disfluency(make_ctx, filler: FillerAsr) -> None:
    ctx = _ctx(make_ctx, filler, "SpeechTranscriber")
    await drive(Transcriber(ctx, StartTranscription(enable_words=True)), _speech())
    (end,) = ctx.payloads("SentenceEnd")
    assert end["result"] == "嗯那个我们走吧"
    assert len(end["words"]) == 6
    assert not any(o.punctuation for o in filler.options)


async def test_recognizer_removes_fillers(make_ctx, filler: FillerAsr) -> None:
    # StartRecognition does not document disfluency; it comes in the official ``ex``.
    ctx = _ctx(make_ctx, filler, "SpeechRecognizer")
    cmd = StartRecognition(
        enable_intermediate_result=True,
        enable_punctuation_prediction=True,
        extra={"disfluency": True},
    )
    await drive(Recognizer(ctx, cmd), _speech())
    (done,) = ctx.payloads("RecognitionCompleted")
    assert done["result"] == "我们走吧。"
    changed = ctx.payloads("RecognitionResultChanged")
    assert changed and all(c["result"] == "我们走吧" for c in changed)
