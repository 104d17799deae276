"""engines.text.digit_strings: the digits Whisper misheard inside spoken digit strings."""

from __future__ import annotations

import pytest

from nls_gateway.engines.text.asr_zh import inverse_normalize, postprocess
from nls_gateway.engines.text.digit_strings import repair


@pytest.mark.parametrize(
    ("heard", "repaired"),
    [
        # Whisper base on the TTS benchmark's 13800138000, read 幺三八，零零幺三，八零零零
        (
            "请拨打客服电话要三把零零要三八零零零咨询。",
            "请拨打客服电话幺三八零零幺三八零零零咨询。",
        ),
        ("电话有三把零一零一三八零零", "电话幺三八零一零一三八零零"),
        # written in Arabic digits: the repaired digit is one too
        ("要3800138000", "13800138000"),
        ("138把0138000", "13880138000"),
        # a temperature below zero (three zh voices' 零下五摄氏度)
        ("明天最低气温零下午摄氏度，请注意保暖。", "明天最低气温零下五摄氏度，请注意保暖。"),
        ("零下十午度", "零下十五度"),
    ],
)
def test_a_same_sounding_character_inside_a_digit_string_is_the_digit(
    heard: str, repaired: str
) -> None:
    assert repair(heard) == repaired


@pytest.mark.parametrize(
    "text",
    [
        "请把一三八零零一三八零零零发给我",  # 把 is the verb: it stands at the run's edge
        "我要一三八零零一三八零零零",  # 12 characters with 要: not a mobile number
        "要三八零零一三八零零零零",  # 12 characters: 要 is not read as 幺
        "一三八零零一三八零零零是吧",  # the tail is the sentence's
        "三山五岳",  # too few digits
        "一五一十地说了",
        "十一月二十二日下午",
        "一是一，二是二",
        "我有三个苹果",
        "要五千元",
        "零下几度",  # not a number: nothing to repair
        "气温零下是多少度",
    ],
)
def test_words_around_or_among_few_digits_stay(text: str) -> None:
    assert repair(text) == text


def test_itn_reads_yao_as_one_and_no_itn_keeps_what_was_said() -> None:
    assert inverse_normalize("幺三八零零幺三八零零零") == "13800138000"
    heard = "请拨打要三把零零要三八零零零。"
    assert postprocess(heard, language="zh", punctuation=True, itn=True) == "请拨打13800138000。"
    assert (
        postprocess(heard, language="zh", punctuation=False, itn=False)
        == "请拨打幺三八零零幺三八零零零"
    )
