from __future__ import annotations

import pytest

from nls_gateway.engines.text.asr_zh import (
    end_sentence,
    inverse_normalize,
    normalize_punctuation,
    postprocess,
    scoring_errors,
    scoring_form,
    spell_numbers,
    strip_punctuation,
    to_simplified,
)


def test_to_simplified_converts_traditional() -> None:
    assert to_simplified("廣州市房地產") == "广州市房地产"


def test_normalize_punctuation_full_width_and_spaces_for_zh() -> None:
    assert normalize_punctuation("我 想 问, 你好吗?", "zh") == "我想问，你好吗？"
    assert normalize_punctuation("气温3.5度.", "zh") == "气温3.5度。"
    assert normalize_punctuation("下午14:30开会:", "zh") == "下午14:30开会："  # a clock time
    assert normalize_punctuation("Hello, world?", "en") == "Hello, world?"


@pytest.mark.parametrize(
    ("text", "language", "ended"),
    [
        # Whisper base's real outputs on zh_dev_long_01 (no final mark) and en_dev_long_01
        ("广州市房地产中介协会分析", "zh", "广州市房地产中介协会分析。"),
        (
            "欢迎大家来体验达摩院推出的语音识别模型",
            None,
            "欢迎大家来体验达摩院推出的语音识别模型。",
        ),
        ("is to be ill-disposed,", "en", "is to be ill-disposed."),
        ("甚至出现交易几乎停止的情况。", "zh", "甚至出现交易几乎停止的情况。"),
        ("他说：“你好。”", "zh", "他说：“你好。”"),
        ("他说：“你好”", "zh", "他说：“你好”。"),
        ("好的，", "zh", "好的。"),
        ("真的吗…", "zh", "真的吗？"),
        # questions a cheap rule can tell
        ("我有的时候说不清楚你们知道吗", "zh", "我有的时候说不清楚你们知道吗？"),
        ("你最喜欢哪个季节", "zh", "你最喜欢哪个季节？"),
        ("你去不去", "zh", "你去不去？"),
        ("你在干什么呢", "zh", "你在干什么呢？"),
        ("他们呢", "zh", "他们呢？"),
        ("你是学生，对吧", "zh", "你是学生，对吧？"),
        ("Do you like it", "en", "Do you like it?"),
        ("What is your name", "en", "What is your name?"),
        # ... and the statements that look like them
        ("我们走吧", "zh", "我们走吧。"),
        ("我还没吃呢", "zh", "我还没吃呢。"),
        ("好几个呢", "zh", "好几个呢。"),
        ("我不知道他去不去", "zh", "我不知道他去不去。"),
        ("什么都没有", "zh", "什么都没有。"),
        ("我不怎么喜欢", "zh", "我不怎么喜欢。"),
        ("没什么", "zh", "没什么。"),
        (
            "Had he married her, he might have been happy",
            "en",
            "Had he married her, he might have been happy.",
        ),
        ("When he came home he slept", "en", "When he came home he slept."),
        # nothing to end
        ("", "zh", ""),
        ("。", "zh", "。"),
    ],
)
def test_end_sentence(text: str, language: str | None, ended: str) -> None:
    assert end_sentence(text, language) == ended


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


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("今天是2024年3月5日", "今天是二零二四年三月五日"),  # a year digit by digit
        ("电话13800138000", "电话一三八零零一三八零零零"),  # a phone number too
        ("007号", "零零七号"),  # a leading 0: a code
        ("气温3.5度", "气温三点五度"),
        ("增长了35%", "增长了百分之三十五"),
        ("有120个人", "有一百二十个人"),
        ("过了10年", "过了十年"),  # not a year: a quantity
        ("12,000元", "一万二千元"),
        ("1000000人", "一百万人"),
        ("2个苹果和第2个", "两个苹果和第二个"),
        ("2万元", "两万元"),
        ("3-5天", "三到五天"),
        ("1/3的人", "三分之一的人"),
        ("8:05开会", "八点零五分开会"),
        ("-5度", "负五度"),
        ("MP3和4G还有COVID-19", "MP3和4G还有COVID-19"),
        ("iPhone 15", "iPhone 15"),
        ("没有数字", "没有数字"),
    ],
)
def test_spell_numbers_writes_numbers_in_chinese(written: str, spoken: str) -> None:
    assert spell_numbers(written) == spoken


def test_postprocess_spells_whisper_digits_without_itn() -> None:
    raw = "2024年, 气温3.5度, 涨了35%."
    assert (
        postprocess(raw, language="zh", punctuation=True, itn=False)
        == "二零二四年，气温三点五度，涨了百分之三十五。"
    )
    # With ITN the digits stay (and spelt numerals become digits); English is untouched.
    assert (
        postprocess(raw, language="zh", punctuation=True, itn=True)
        == "2024年，气温3.5度，涨了35%。"
    )
    assert postprocess("It is 35 degrees.", language="en", punctuation=True, itn=False) == (
        "It is 35 degrees."
    )


@pytest.mark.parametrize(
    ("raw", "spelt", "written"),
    [
        # Whisper base writes a heard 十四点三十分 as 14.30分 after a part of the day.
        ("下午14.30分在三楼开会", "下午十四点三十分在三楼开会", "下午14点30分在3楼开会"),
        ("早上 8.05分出发", "早上八点零五分出发", "早上8点05分出发"),
        # Without a part of the day, or without 分, it stays a decimal (a score, a price).
        ("得了9.50分", "得了九点五零分", "得了9.50分"),
        ("下午14.30在", "下午十四点三零在", "下午14.30在"),
    ],
)
def test_postprocess_reads_whisper_dotted_clock_times(raw: str, spelt: str, written: str) -> None:
    assert postprocess(raw, language="zh", punctuation=True, itn=False) == spelt
    assert postprocess(raw, language="zh", punctuation=True, itn=True) == written


def test_scoring_form_unifies_numerals_and_case() -> None:
    assert scoring_form("2024年3月5日，23度", "zh") == "二零二四年三月五日二十三度"
    assert scoring_form("Hello, Mr. Smith's cold-hearted!", "en") == "hello mr smith's cold hearted"


def test_scoring_errors_counts_characters_for_zh_and_words_for_en() -> None:
    assert scoring_errors("今天天气很好。", "今天天气真好", "zh") == (1, 6)
    assert scoring_errors("It is 10 o'clock", "it is ten o'clock", "en") == (0, 4)
    assert scoring_errors("a b", "a c d", "en") == (2, 3)
    assert scoring_errors("", "", "zh") == (0, 1)  # the length is never 0
