"""enable_semantic_sentence_detection: the break rules alone, then the transcriber with a
scripted engine that punctuates by meaning (a 。 after each burst of tone)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from nls.protocol import StartTranscription
from nls_gateway.engines.base import AsrOptions, AsrResult, Float32Array, Word
from nls_gateway.tasks import semantic
from nls_gateway.tasks.base import Engines, Limits
from nls_gateway.tasks.transcriber import Transcriber
from nls_gateway.testing import ScriptedVad
from tasks.fakes import RATE, FakeContext, drive, frames, pcm, silence, tone

# ------------------------------------------------------------------ the rules alone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天很好。我们走吧。", [5]),
        ("今天很好。", []),  # nothing after the mark yet
        ("你好吗？我很好！谢谢", [4, 8]),
        ("他说：“好。”然后走了", [7]),  # the closing quote stays with its sentence
        ("It is 3.5 m. Then we go", [12]),  # a decimal point is no end
        ("Mr. Smith came. I think... yes?! OK", [15, 32]),  # nor Mr. or an ellipsis
        ("没有标点的一句话", []),
    ],
)
def test_breaks(text: str, expected: list[int]) -> None:
    assert semantic.breaks(text) == expected


def _chars(text: str, step_ms: int = 100, gap_after: int | None = None) -> tuple[Word, ...]:
    """One Word per CJK character, ``step_ms`` each; a 400 ms gap after ``gap_after`` words."""
    words, t = [], 0
    for n, c in enumerate(ch for ch in text if ch.isalnum()):
        if n == gap_after:
            t += 400
        words.append(Word(c, t, t + step_ms))
        t += step_ms
    return tuple(words)


def test_split_cuts_in_the_quietest_part_of_the_gap() -> None:
    # 今天天气很好 (600 ms), a 400 ms gap, 我们去公园 (500 ms); the gap is silent only
    # from 750 to 850 ms, so the cut goes there, not at the words' edges.
    words = _chars("今天天气很好我们去公园", gap_after=6)
    audio = np.full(int(1.5 * RATE), 0.2, dtype=np.float32)
    audio[int(0.75 * RATE) : int(0.85 * RATE)] = 0.0
    result = AsrResult("今天天气很好。我们去公园", words, 0.8, "zh")
    first, rest = semantic.split(result, audio, RATE)
    assert first.result.text == "今天天气很好。"
    assert [w.text for w in first.result.words] == list("今天天气很好")
    assert (first.start_ms, rest.start_ms) == (0, first.end_ms)
    assert 750 <= first.end_ms < 850
    assert rest.end_ms == 1500
    assert rest.result.text == "我们去公园"
    # the rest's word times count from its own start
    assert rest.result.words[0] == Word("我", 1000 - first.end_ms, 1100 - first.end_ms)
    assert rest.result.confidence == 0.8


def test_split_with_more_speech_cuts_after_a_text_that_stopped_at_its_mark() -> None:
    # A decode of audio clipped mid-speech that stopped at the first mark: with ``more``
    # (a partial showed text after it) its end is a sentence end, cut in the quiet after
    # the last word; without, the text is the whole sentence.
    words = _chars("今天天气很好")  # 0…600 ms
    audio = np.full(int(1.6 * RATE), 0.2, dtype=np.float32)
    audio[int(0.70 * RATE) : int(0.80 * RATE)] = 0.0
    result = AsrResult("今天天气很好。", words)
    first, rest = semantic.split(result, audio, RATE, more=True)
    assert first.result.text == "今天天气很好。" and len(first.result.words) == 6
    assert 700 <= first.end_ms < 800 and rest.result.text == ""
    assert (rest.start_ms, rest.end_ms) == (first.end_ms, 1600)
    assert len(semantic.split(result, audio, RATE)) == 1
    # too little audio after the last word: it may still belong to the sentence
    assert len(semantic.split(result, audio[: int(0.9 * RATE)], RATE, more=True)) == 1


def test_split_keeps_whole_when_it_cannot_cut() -> None:
    audio = np.zeros(RATE, dtype=np.float32)
    no_words = AsrResult("你好。我们走吧")
    assert [p.result for p in semantic.split(no_words, audio, RATE)] == [no_words]
    # a mark after one syllable is a misreading, not a sentence
    short = AsrResult("嗯。我们走吧", _chars("嗯我们走吧"))
    assert len(semantic.split(short, audio, RATE)) == 1
    plain = AsrResult("我们走吧", _chars("我们走吧"))
    (only,) = semantic.split(plain, audio, RATE)
    assert only.result is plain and (only.start_ms, only.end_ms) == (0, 1000)


# ------------------------------------------------------------------ the transcriber


class MarkingAsr:
    """One 字 per 100 ms of tone, and a 。 after each burst followed by 200 ms of quiet
    (it "understands" the sentence ended); words as Whisper gives them: finals only,
    when asked. Without punctuation the marks are left out, as Whisper's are."""

    sample_rate = RATE

    def __init__(self) -> None:
        self.options: list[AsrOptions] = []

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        self.options.append(options)
        block = RATE // 100
        n = audio.size // block
        loud = np.sqrt((audio[: n * block].reshape(n, block) ** 2).mean(axis=1)) > 0.01
        bursts: list[tuple[int, int]] = []
        for i in np.flatnonzero(loud):
            if bursts and i - bursts[-1][1] < 20:
                bursts[-1] = (bursts[-1][0], int(i) + 1)
            else:
                bursts.append((int(i), int(i) + 1))
        text, words = "", []
        for begin, end in bursts:
            count = round((end - begin) / 10)
            words += [
                Word("字", (begin + 10 * k) * 10, (begin + 10 * k + 10) * 10) for k in range(count)
            ]
            text += "字" * count
            if options.punctuation and (n - end) >= 20:
                text += "。"
        keep = options.final and options.words
        return AsrResult(text, tuple(words) if keep else (), 0.9, "zh")

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        return [self.transcribe(a, o) for a, o in zip(audios, options, strict=True)]


def three_sentences() -> np.ndarray:
    # Three 1 s bursts 300 ms apart: the VAD hears one sentence (the pauses are below
    # max_sentence_silence), the engine three.
    parts = [silence(0.5), tone(1.0), silence(0.3), tone(1.0), silence(0.3), tone(1.0)]
    return np.concatenate([*parts, silence(1.5)])


@pytest.fixture
def marking() -> MarkingAsr:
    return MarkingAsr()


def _ctx(make_ctx, asr: MarkingAsr) -> FakeContext:
    ctx: FakeContext = make_ctx("SpeechTranscriber", engines=Engines(asr=asr, vad=ScriptedVad()))
    return ctx


async def _paced(handler: Transcriber, chunks: list[bytes], check=None) -> None:
    """Feed about 10× real time, letting each partial come back before the next frame."""
    await handler.on_start()
    try:
        for n, chunk in enumerate(chunks):
            await handler.on_audio(chunk)
            await asyncio.sleep(0.01)
            if check is not None:
                check(n)
        await handler.on_stop()
    finally:
        await handler.close()


def _assert_contiguous(ends: list[dict]) -> None:
    for before, after in zip(ends, ends[1:], strict=False):
        assert after["begin_time"] == before["time"]  # no audio lost between sentences
    for end in ends:
        for w in end.get("words", []):
            assert end["begin_time"] <= w["startTime"] <= w["endTime"] <= end["time"]


async def test_semantic_breaks_a_running_sentence_live(make_ctx, marking: MarkingAsr) -> None:
    ctx = _ctx(make_ctx, marking)
    cmd = StartTranscription(
        enable_intermediate_result=True,
        enable_semantic_sentence_detection=True,
        enable_words=True,
    )
    chunks = frames(pcm(three_sentences()))  # 100 ms each

    def check(n: int) -> None:
        if n == 37:  # 3.8 s fed, the third burst under way and the VAD still in the sentence
            assert ctx.names().count("SentenceEnd") == 2

    await _paced(Transcriber(ctx, cmd), chunks, check)
    ends = ctx.payloads("SentenceEnd")
    begins = ctx.payloads("SentenceBegin")
    # punctuation is off: the engine punctuated for the rule, the client sees no marks
    assert [e["result"] for e in ends] == ["字" * 10] * 3
    assert [e["index"] for e in ends] == [1, 2, 3] == [b["index"] for b in begins]
    assert [b["time"] for b in begins] == [e["begin_time"] for e in ends]
    assert 1500 <= ends[0]["time"] <= 1800 and 2800 <= ends[1]["time"] <= 3100
    _assert_contiguous(ends)
    assert sum(len(e["words"]) for e in ends) == 30  # every word once
    assert all(o.punctuation for o in marking.options)
    changed = ctx.payloads("TranscriptionResultChanged")
    assert changed and all("。" not in c["result"] for c in changed)
    names = [n for n in ctx.names() if n in ("SentenceBegin", "SentenceEnd")]
    assert names == ["SentenceBegin", "SentenceEnd"] * 3


async def test_semantic_off_keeps_the_vad_sentence(make_ctx, marking: MarkingAsr) -> None:
    ctx = _ctx(make_ctx, marking)
    cmd = StartTranscription(enable_intermediate_result=True, enable_punctuation_prediction=True)
    await _paced(Transcriber(ctx, cmd), frames(pcm(three_sentences())))
    assert [e["result"] for e in ctx.payloads("SentenceEnd")] == [
        "字" * 10 + "。" + "字" * 10 + "。" + "字" * 10 + "。"
    ]


async def test_semantic_without_intermediate_results(make_ctx, marking: MarkingAsr) -> None:
    # NLS says it requires intermediate results; the gateway decodes them unsent.
    ctx = _ctx(make_ctx, marking)
    cmd = StartTranscription(
        enable_semantic_sentence_detection=True, enable_punctuation_prediction=True
    )
    await _paced(Transcriber(ctx, cmd), frames(pcm(three_sentences())))
    assert [e["result"] for e in ctx.payloads("SentenceEnd")] == ["字" * 10 + "。"] * 3
    assert "TranscriptionResultChanged" not in ctx.names()
    _assert_contiguous(ctx.payloads("SentenceEnd"))


async def test_semantic_breaks_the_final_when_the_vad_ends_first(
    make_ctx, marking: MarkingAsr
) -> None:
    # Fed as fast as the handler takes it, the VAD ends the sentence before any partial
    # is back: the final is broken at its marks, and the next VAD sentence is numbered on.
    ctx = _ctx(make_ctx, marking)
    cmd = StartTranscription(enable_semantic_sentence_detection=True, enable_words=True)
    audio = np.concatenate([three_sentences(), tone(1.0), silence(1.5)])
    await drive(Transcriber(ctx, cmd), frames(pcm(audio), size=len(pcm(audio))))
    ends = ctx.payloads("SentenceEnd")
    assert [e["result"] for e in ends] == ["字" * 10] * 4
    assert [e["index"] for e in ends] == [1, 2, 3, 4]
    assert [b["index"] for b in ctx.payloads("SentenceBegin")] == [1, 2, 3, 4]
    _assert_contiguous(ends[:3])
    assert ends[3]["begin_time"] > ends[2]["time"] + 500  # a VAD sentence of its own
    names = [n for n in ctx.names() if n in ("SentenceBegin", "SentenceEnd")]
    assert names == ["SentenceBegin", "SentenceEnd"] * 4


async def test_semantic_break_then_a_forced_split_before_it(make_ctx, marking: MarkingAsr) -> None:
    # Sentences over max_sentence_ms are split at the best pause of their second half,
    # counted from where the VAD's sentence began; after semantic breaks that point can
    # lie before the open sentence's begin. It must neither end an empty sentence nor
    # move the begin back.
    ctx: FakeContext = make_ctx(
        "SpeechTranscriber",
        engines=Engines(asr=marking, vad=ScriptedVad()),
        limits=Limits(max_sentence_ms=3000),
    )
    cmd = StartTranscription(
        enable_intermediate_result=True, enable_semantic_sentence_detection=True
    )
    await _paced(Transcriber(ctx, cmd), frames(pcm(three_sentences())))
    ends = ctx.payloads("SentenceEnd")
    assert [e["result"] for e in ends] == ["字" * 10] * 3
    assert [e["index"] for e in ends] == [1, 2, 3]
    _assert_contiguous(ends)
