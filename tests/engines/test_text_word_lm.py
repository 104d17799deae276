from __future__ import annotations

import pytest

from nls_gateway.engines.text.word_lm import WordLm, default_lm


@pytest.fixture(scope="module")
def lm() -> WordLm:
    model = default_lm()
    model.load()
    return model


def test_real_words_beat_homophone_misspellings(lm: WordLm) -> None:
    # The errors Whisper base makes on the eval set: the dictionary word must win.
    assert lm.logprob("交易几乎停滞") > lm.logprob("交易几乎停制")
    assert lm.logprob("语音识别模型") > lm.logprob("与您识别模型")
    assert lm.logprob("房地产中介协会") > lm.logprob("佛地产中间协会")


def test_only_chinese_characters_are_scored(lm: WordLm) -> None:
    assert lm.logprob("Hello, 2024!") == 0.0
    assert lm.logprob("你好，世界。") == pytest.approx(lm.logprob("你好世界"))
    assert lm.logprob("你好") < 0.0


def test_default_lm_is_shared() -> None:
    assert default_lm() is default_lm()
