"""Tests for nls_gateway.engines.text.tts_normalize: how digits and symbols are read aloud."""

from __future__ import annotations

import pytest

from nls_gateway.engines.text.tts_normalize import digits_to_zh, int_to_zh, normalize


def _spoken(text: str) -> str:
    return "".join(span.spoken for span in normalize(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026年11月22日", "二零二六年十一月二十二日"),
        ("2026-11-22", "二零二六年十一月二十二日"),
        ("5月1号放假", "五月一号放假"),
        ("下午14:30开会", "下午十四点三十分开会"),
        ("9:05:30", "九点零五分三十秒"),
        ("10:00", "十点"),
        ("13800138000", "幺三八，零零幺三，八零零零"),
        ("010-12345678", "零幺零，幺二三四五六七八"),
        ("增长35%", "增长百分之三十五"),
        ("下降-2.5%", "下降负百分之二点五"),
        ("3.14", "三点一四"),
        ("0.5", "零点五"),
        ("-5", "负五"),
        ("气温-5℃", "气温零下五摄氏度"),
        ("25°C", "二十五摄氏度"),
        ("120km/h", "一百二十千米每小时"),
        ("5kg", "五千克"),
        ("1/2", "二分之一"),
        ("3-5个", "三到五个"),
        ("¥350.5元", "三百五十点五元"),
        ("1,234,567人", "一百二十三万四千五百六十七人"),
        ("2个人", "两个人"),
        ("2月", "二月"),
        ("第123号", "第一百二十三号"),
        ("编号007", "编号零零七"),
        ("iPhone 15", "iPhone 十五"),
        ("1+1=2", "一加一等于二"),
    ],
)
def test_normalize_reads_written_forms(text: str, expected: str) -> None:
    assert _spoken(text) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "零"),
        (10, "十"),
        (15, "十五"),
        (105, "一百零五"),
        (1010, "一千零一十"),
        (10000, "一万"),
        (100001, "十万零一"),
        (20000000, "二千万"),
        (100000000, "一亿"),
        (123456789, "一亿二千三百四十五万六千七百八十九"),
    ],
)
def test_int_to_zh(n: int, expected: str) -> None:
    assert int_to_zh(n) == expected


def test_digits_to_zh_yao() -> None:
    assert digits_to_zh("110", yao=True) == "幺幺零"
    assert digits_to_zh("110") == "一一零"


def test_spans_cover_the_text_exactly_once() -> None:
    text = "会议在2026年11月22日14:30召开，电话13800138000。"
    spans = normalize(text)
    covered = [i for span in spans for i in range(span.begin, span.end)]
    assert covered == list(range(len(text)))
