"""Chinese text normalisation (TN) for speech synthesis: digits and symbols → spoken hanzi.

This module owns the rules that turn written forms into what a Mandarin reader says:
dates (``2026年11月22日`` → 二零二六年十一月二十二日), clock times (``14:30`` → 十四点三十分),
phone numbers (``13800138000`` → 幺三八，零零幺三，八零零零, digit by digit in groups), percentages
(``35%`` → 百分之三十五), decimals, negative numbers, fractions, ranges and common units
(``℃``, ``km``, ``kg``…). :func:`normalize` returns :class:`Span` pieces that remember which
characters of the original text each spoken piece came from, so that subtitles can point
back at the text the client sent.

It must not do G2P, touch audio or import anything heavy: pure ``re`` over ``str``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Span", "digits_to_zh", "int_to_zh", "normalize", "number_to_zh"]

_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")

# Classifiers before which the quantity 2 is read 两, not 二 (两个人, 两本书, but 二月).
_LIANG_CLASSIFIERS = set("个位只本条件次天年岁张台辆种份项名家层口头块匹棵支把双对批场套架所间")

# Units written after a number, read after it; longest spelling first so that km/h wins
# over km. Why a table: these are what NLS users put in TTS text (weather, prices, specs).
_UNITS: dict[str, str] = {
    "km/h": "千米每小时",
    "m/s": "米每秒",
    "℃": "摄氏度",
    "°C": "摄氏度",
    "°F": "华氏度",
    "°": "度",
    "km²": "平方千米",
    "m²": "平方米",
    "m³": "立方米",
    "km": "千米",
    "cm": "厘米",
    "mm": "毫米",
    "kg": "千克",
    "mg": "毫克",
    "ml": "毫升",
    "mL": "毫升",
    "GB": "吉字节",
    "MB": "兆字节",
    "KB": "千字节",
    "TB": "太字节",
    "Hz": "赫兹",
    "kHz": "千赫兹",
    "kW": "千瓦",
    "h": "小时",
    "s": "秒",
    "g": "克",
    "m": "米",
    "t": "吨",
    "L": "升",
}
_UNIT_RE = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))

_CURRENCY_PREFIX = {"¥": "元", "￥": "元", "$": "美元", "€": "欧元", "£": "英镑"}

_SYMBOLS = {
    "+": "加",
    "=": "等于",
    "×": "乘",
    "÷": "除以",
    "&": "和",
    "@": "艾特",
    "#": "井",
    "~": "到",
    "～": "到",
    "%": "百分号",
    "‰": "千分号",
}


@dataclass(frozen=True, slots=True)
class Span:
    """A piece of spoken text and the characters of the original text it reads."""

    spoken: str
    begin: int
    """First character of the original text this span reads."""
    end: int
    """One past the last character it reads."""


def int_to_zh(n: int) -> str:
    """Read a non-negative integer as a Chinese quantity (10 → 十, 105 → 一百零五).

    Numbers of 17 digits or more are read digit by digit, as nobody says them as quantities.
    """
    if n < 0:
        return "负" + int_to_zh(-n)
    if n == 0:
        return "零"
    text = str(n)
    if len(text) > 16:
        return digits_to_zh(text)
    groups: list[str] = []
    while text:
        groups.insert(0, text[-4:])
        text = text[:-4]
    out = ""
    zero_pending = False
    for gi, group in enumerate(groups):
        value = int(group)
        big = _BIG_UNITS[len(groups) - 1 - gi]
        if value == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or len(group.lstrip("0")) < 4):
            out += "零"
        out += _group_to_zh(value) + big
        zero_pending = False
    # 一十五 → 十五 at the very start, as spoken (but 一百一十五 keeps its 一十).
    if out.startswith("一十"):
        out = out[1:]
    return out


def digits_to_zh(digits: str, *, yao: bool = False) -> str:
    """Read a digit string digit by digit; ``yao`` reads 1 as 幺 (phone-number style)."""
    table = _DIGITS.replace("一", "幺") if yao else _DIGITS
    return "".join(table[int(d)] if d.isdigit() else d for d in digits)


def number_to_zh(text: str) -> str:
    """Read a number as written: sign, integer part, decimals (``-3.05`` → 负三点零五)."""
    text = text.replace(",", "")
    sign = ""
    if text[:1] in "-−":
        sign, text = "负", text[1:]
    elif text[:1] == "+":
        sign, text = "正", text[1:]
    whole, _, frac = text.partition(".")
    if len(whole) > 1 and whole.startswith("0"):
        spoken = digits_to_zh(whole)
    else:
        spoken = int_to_zh(int(whole or "0"))
    if frac:
        spoken += "点" + digits_to_zh(frac)
    return sign + spoken


def normalize(text: str) -> list[Span]:
    """Turn ``text`` into spoken spans; characters no rule touches are kept one per span.

    Args:
        text: the text as the client sent it.

    Returns:
        Spans in order, covering every character of ``text`` exactly once.
    """
    spans: list[Span] = []
    pos = 0
    for match in _MASTER.finditer(text):
        spans.extend(Span(ch, i, i + 1) for i, ch in enumerate(text[pos : match.start()], pos))
        spoken = _RULES[match.lastgroup or ""](match)
        spans.append(Span(spoken, match.start(), match.end()))
        pos = match.end()
    spans.extend(Span(ch, i, i + 1) for i, ch in enumerate(text[pos:], pos))
    return spans


# ----------------------------------------------------------------------------- rules


def _group_to_zh(value: int) -> str:
    """0 < value < 10000 → 一千零五 etc."""
    digits = f"{value:04d}"
    out = ""
    zero = False
    for i, d in enumerate(digits):
        unit = _SMALL_UNITS[3 - i]
        if d == "0":
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[int(d)] + unit
    return out


def _date(m: re.Match[str]) -> str:
    year, month, day = m.group("y"), m.group("mo"), m.group("d")
    out = digits_to_zh(year) + "年"
    if month:
        out += int_to_zh(int(month)) + "月"
    if day:
        out += int_to_zh(int(day)) + (m.group("dsuf") or "日")
    return out


def _ymd(m: re.Match[str]) -> str:
    return (
        digits_to_zh(m.group("y2"))
        + "年"
        + int_to_zh(int(m.group("mo2")))
        + "月"
        + int_to_zh(int(m.group("d2")))
        + "日"
    )


def _month_day(m: re.Match[str]) -> str:
    out = int_to_zh(int(m.group("mo3"))) + "月"
    if m.group("d3"):
        out += int_to_zh(int(m.group("d3"))) + (m.group("dsuf3") or "")
    return out


def _time(m: re.Match[str]) -> str:
    hour, minute, second = int(m.group("hh")), int(m.group("mm")), m.group("ss")
    out = int_to_zh(hour) + "点"
    if minute or second:
        out += ("零" if minute < 10 else "") + int_to_zh(minute) + "分"
    if second is not None and int(second):
        out += int_to_zh(int(second)) + "秒"
    return out


def _phone(m: re.Match[str]) -> str:
    # Read in the groups people say them in (138 0013 8000, 010 12345678) with a short
    # pause between: one unbroken run of eleven digits makes the synthesizer swallow
    # repeated 零 (a round trip heard 13800138000 as 1380013800).
    tel = m.group("tel").lstrip("+")
    groups: list[str] = []
    for digits in re.split(r"[- ]", tel):
        bounds = [0, *_PHONE_CUTS.get(len(digits), ()), len(digits)]
        groups += [digits[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if digits[a:b]]
    return "，".join(digits_to_zh(g, yao=True) for g in groups)


_PHONE_CUTS = {11: (3, 7), 13: (2, 5, 9)}
"""Where an unbroken mobile number (or one with 86 in front) is grouped: 138 0013 8000."""


def _percent(m: re.Match[str]) -> str:
    value = m.group("pct")
    sign = ""
    if value[:1] in "-−":
        sign, value = "负", value[1:]
    return sign + "百分之" + number_to_zh(value)


def _fraction(m: re.Match[str]) -> str:
    return int_to_zh(int(m.group("den"))) + "分之" + int_to_zh(int(m.group("numer")))


def _range(m: re.Match[str]) -> str:
    return number_to_zh(m.group("lo")) + "到" + number_to_zh(m.group("hi"))


def _currency(m: re.Match[str]) -> str:
    return number_to_zh(m.group("amount")) + _CURRENCY_PREFIX[m.group("cur")]


def _temperature(m: re.Match[str]) -> str:
    # 零下 rather than 负 is how Mandarin reads temperatures below zero.
    return "零下" + number_to_zh(m.group("tval")) + _UNITS[m.group("tunit")]


def _unit(m: re.Match[str]) -> str:
    return number_to_zh(m.group("uval")) + _UNITS[m.group("unit")]


def _number(m: re.Match[str]) -> str:
    value = m.group("num_")
    plain = value.replace(",", "")
    if plain.isdigit() and (
        (len(plain) > 1 and plain.startswith("0")) or len(plain) > 12 or m.group("sep")
    ):
        # Codes, IDs and zero-led numbers are read digit by digit.
        return digits_to_zh(plain)
    if plain == "2" and m.group("after") and m.group("after") in _LIANG_CLASSIFIERS:
        return "两"
    return number_to_zh(value)


def _symbol(m: re.Match[str]) -> str:
    return _SYMBOLS[m.group("sym")]


_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_PATTERNS: list[tuple[str, str, Callable[[re.Match[str]], str]]] = [
    (
        "date",
        r"(?P<y>\d{4})\s*年\s*(?:(?P<mo>\d{1,2})\s*月\s*(?:(?P<d>\d{1,2})\s*(?P<dsuf>[日号])?)?)?",
        _date,
    ),
    (
        "ymd",
        r"(?<!\d)(?P<y2>\d{4})[-/.](?P<mo2>0?[1-9]|1[0-2])[-/.](?P<d2>0?[1-9]|[12]\d|3[01])(?!\d)",
        _ymd,
    ),
    (
        "monthday",
        r"(?<!\d)(?P<mo3>0?[1-9]|1[0-2])\s*月\s*(?:(?P<d3>0?[1-9]|[12]\d|3[01])\s*(?P<dsuf3>[日号])?)?",
        _month_day,
    ),
    (
        "time",
        r"(?<![\d:])(?P<hh>[01]?\d|2[0-4])[:：](?P<mm>[0-5]\d)(?:[:：](?P<ss>[0-5]\d))?(?![\d:])",
        _time,
    ),
    (
        "phone",
        r"(?<![\d.])(?P<tel>\+?86[- ]?1[3-9]\d{9}|1[3-9]\d[- ]?\d{4}[- ]?\d{4}"
        r"|0\d{2,3}-\d{7,8}|400-?\d{3}-?\d{4}|\d{3,4}-\d{7,8})(?![\d.])",
        _phone,
    ),
    ("percent", rf"(?P<pct>[-−]?{_NUM})\s*[%％]", _percent),
    ("fraction", r"(?<![\d/])(?P<numer>\d+)/(?P<den>\d+)(?![\d/])", _fraction),
    ("currency", rf"(?P<cur>[¥￥$€£])\s*(?P<amount>{_NUM})(?:\s*(?:元|块))?", _currency),
    ("temperature", r"[-−](?P<tval>\d+(?:\.\d+)?)\s*(?P<tunit>℃|°C|°F)", _temperature),
    ("range", rf"(?<![\d.])(?P<lo>{_NUM})\s*[-~～—]\s*(?P<hi>{_NUM})(?![\d.])", _range),
    ("unitnum", rf"(?P<uval>[-−]?{_NUM})\s*(?P<unit>{_UNIT_RE})(?![A-Za-z])", _unit),
    (
        "number",
        r"(?P<num_>(?:(?<![A-Za-z0-9.])[-−])?\d+(?:(?P<sep>-\d{4,})+|(?:,\d{3})*(?:\.\d+)?))"
        r"(?=(?P<after>.?))",
        _number,
    ),
    ("symbol", r"(?P<sym>[+=×÷&@#~～%‰])", _symbol),
]
_RULES: dict[str, Callable[[re.Match[str]], str]] = {name: fn for name, _, fn in _PATTERNS}
_MASTER = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in _PATTERNS))
