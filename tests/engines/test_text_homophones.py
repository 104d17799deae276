from __future__ import annotations

import math

import pytest

from nls_gateway import modelstore
from nls_gateway.engines.text.homophones import HomophoneLm, shared
from nls_gateway.engines.whisper_models import ZH_LM


@pytest.fixture(scope="module")
def lm() -> HomophoneLm:
    model = shared(modelstore.locate(ZH_LM))
    model.load()
    return model


def respelt(lm: HomophoneLm, text: str, keep: tuple[str, ...] = ()) -> str:
    return lm.best(text, keep)[1]


@pytest.mark.parametrize(
    ("heard", "meant"),
    [
        # Whisper base on the eval set's long passage: same syllables and tones.
        ("秋天总是那么富有失忆。", "秋天总是那么富有诗意。"),
        ("棒碗十分，天空被染成了金黄和成红。", "傍晚时分，天空被染成了金黄和橙红。"),
        ("中午阳光明昧，照在身上暖阳阳的。", "中午阳光明媚，照在身上暖洋洋的。"),
        # in/ing merged: 营信 (ying xin) for 银杏 (yin xing).
        ("街道旁的营信数开始落叶。", "街道旁的银杏树开始落叶。"),
        # TTS round trips: 系 is jì in 系好, a word pypinyin's phrase table has, jieba's not.
        ("请各位乘客记好安全带，飞机即将起飞。", "请各位乘客系好安全带，飞机即将起飞。"),
    ],
)
def test_homophones_are_respelt(lm: HomophoneLm, heard: str, meant: str) -> None:
    assert respelt(lm, heard) == meant


@pytest.mark.parametrize(
    "correct",
    [
        "智能语音交互",
        "我们使用线程池处理依赖",
        "北京今天温度已达零下十度",
        "异步和云端建连并发起一次请求",
        "大壮正想去摘取花瓣，谁知阿丽和阿强突然内讧",
        "甚至出现交易几乎停滞的情况。",
        # Repeats stay: reduplication and spoken stutters look alike to the LM.
        "研究研究再说",
        "这个这个问题很难",
        # Spoken numbers and digit strings: not 二林二六, not 壹零壹.
        "会议定于二零二六年十一月二十二日下午两点召开",
        "请拨打客服电话一三八零一零一三八零零",
    ],
)
def test_correct_sentences_are_left_alone(lm: HomophoneLm, correct: str) -> None:
    assert respelt(lm, correct) == correct


def test_a_different_tone_is_not_a_homophone(lm: HomophoneLm) -> None:
    # 经理 jīnglǐ vs 经历 jīnglì: the LM would like 经历 here, the tones forbid it.
    assert respelt(lm, "刚才这个经理说完了") == "刚才这个经理说完了"


def test_kept_words_are_never_rewritten(lm: HomophoneLm) -> None:
    assert respelt(lm, "富有失忆", keep=("失忆",)) == "富有失忆"
    assert respelt(lm, "富有失忆", keep=("", "别的")) == "富有诗意"


def test_hot_words_are_respelt_into_whatever_the_tones(lm: HomophoneLm) -> None:
    # Whisper's misses of a hot word often differ in a tone (打 dǎ, 达 dá): a hot word
    # only needs the syllables, and the LM still has to prefer the sentence with it.
    heard = "欢迎大家来体验打模院推出的语音识别模型"
    assert respelt(lm, heard, keep=("达摩院",)) == "欢迎大家来体验达摩院推出的语音识别模型"
    assert respelt(lm, "交易几乎停止的情况", keep=("停滞",)) == "交易几乎停滞的情况"
    assert respelt(lm, "今天天气不错", keep=("天启",)) == "今天天气不错"
    assert "达摩院" not in respelt(lm, heard)


def test_only_chinese_characters_change(lm: HomophoneLm) -> None:
    text = "用Python 3写的，富有失忆。OK?"
    assert respelt(lm, text) == "用Python 3写的，富有诗意。OK?"
    assert respelt(lm, "") == ""
    assert respelt(lm, "Hello, world.") == "Hello, world."


def test_score_is_a_log_probability_less_penalties(lm: HomophoneLm) -> None:
    kept, _ = lm.best("富有诗意")
    fixed, _ = lm.best("富有失忆")
    assert math.isfinite(kept) and kept < 0
    assert fixed == pytest.approx(kept - 2 * 2.5)  # two characters changed


def test_each_sentence_ends_once(lm: HomophoneLm) -> None:
    # A final's end mark must not cost a second </s>: hypotheses with and without it
    # compete in the n-best ranking (a bias here picked the ones without).
    assert lm.best("富有诗意。")[0] == pytest.approx(lm.best("富有诗意")[0])
    assert lm.best("OK，富有诗意")[0] == pytest.approx(lm.best("富有诗意")[0])
    two = lm.best("富有诗意。富有诗意。")[0]
    assert two == pytest.approx(2 * lm.best("富有诗意")[0])


def test_one_model_per_file() -> None:
    path = modelstore.locate(ZH_LM)
    assert shared(path) is shared(path)


def test_missing_file_is_engine_unavailable(tmp_path) -> None:
    from nls_gateway.exception import EngineUnavailableError

    with pytest.raises(EngineUnavailableError, match="cannot load"):
        HomophoneLm(tmp_path / "none.lm").load()
