from __future__ import annotations

import pytest

from nls_gateway.engines.zh_text import (
    inverse_normalize,
    normalize_punctuation,
    postprocess,
    scoring_form,
    strip_punctuation,
    to_simplified,
)


def test_to_simplified_converts_traditional() -> None:
    assert to_simplified("廣州市房地產") == "广州市房地产"


def test_normalize_punctuation_full_width_and_spaces_for_zh() -> None:
    assert normalize_punctuation("我 想 问, 你好吗?", "zh") == "我想问，你好吗？"
    assert normalize_punctuation("气温3.5度.", "zh") == "气温3.5度。"
    assert normalize_punctuation("Hello, world?", "en") == "Hello, world?"


def test_strip_punctuation_keeps_latin_word_spaces() -> None:
    assert strip_punctuation("你好，世界！") == "你好世界"
    assert strip_punctuation("It's cold, John.") == "It's cold John"


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("今天是二零二四年三月五日", "今天是2024年3月5日"),
        ("北京今天温度已达零下十度", "北京今天温度已达零下10度"),
        ("百分之八十", "80%"),
        ("一三八零零一三八零零零", "13800138000"),
        ("第一百二十三号", "第123号"),
        ("三点二十五分", "3点25分"),
        ("三点五米", "3.5米"),
        ("一二线城市", "一二线城市"),
        ("说一下", "说一下"),
        ("一些人一起走", "一些人一起走"),
        ("有一点累", "有一点累"),
        ("十分好", "十分好"),
    ],
)
def test_inverse_normalize_guards(spoken: str, written: str) -> None:
    assert inverse_normalize(spoken) == written


def test_postprocess_keeps_whisper_numerals_without_itn() -> None:
    raw = "今天二十三度, 好吗?"
    assert postprocess(raw, language="zh", punctuation=True, itn=False) == "今天二十三度，好吗？"
    assert postprocess(raw, language="zh", punctuation=False, itn=True) == "今天23度好吗"


def test_scoring_form_unifies_numerals_and_case() -> None:
    assert scoring_form("2024年3月5日，23度", "zh") == "二零二四年三月五日二十三度"
    assert scoring_form("Hello, Mr. Smith's cold-hearted!", "en") == "hello mr smith's cold hearted"
