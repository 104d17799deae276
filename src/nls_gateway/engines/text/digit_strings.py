"""Spoken digit strings (phone numbers, codes) in Mandarin ASR output.

A Mandarin speaker reads a phone number digit by digit and says 1 as 幺 (yāo), so that it
cannot be taken for 七 (NLS's own synthesis reads numbers that way too). Whisper base
writes what it hears in such a string as characters, and a digit it was unsure of comes
out as another word with the same sound: 幺三八零零幺三八零零零 is written 要三把零零要三八零零零
(round trips of the TTS benchmark's phone number, every zh voice).

:func:`repair` puts those digits back where nothing else can be meant: a same-sounding
character *between two digits* of a run of at least :data:`MIN_DIGITS` digits (三把零 is
三八零 in 幺三八零零…; 三山五岳 has too few digits to be touched), and a 幺-like first
character only when it turns the run into the 11 digits of a mainland mobile number
(1, then 3–9). Anything at a run's edge stays as it is, since there it is usually a word
of the sentence: 请把一三八… is "please (take) 138…", 我要一三八… "I want 138…".

The same holds for a temperature below zero: between 零下 and 度 (or 摄氏度) a
same-sounding character is the digit (零下午摄氏度 → 零下五摄氏度).

Where the run is written in Arabic digits, a repaired digit is written as one too
(要3800138000 → 13800138000). ITN (``asr_zh.inverse_normalize``) reads 幺 as 1.
"""

from __future__ import annotations

import re

__all__ = ["DIGIT_VALUES", "MIN_DIGITS", "NUMERALS", "repair"]

MIN_DIGITS = 5
"""Digits a run needs before a character inside it is read as a digit: more than any
number word (三山五岳, 一五一十) or date (十一月) holds, fewer than a phone number's 7."""

DIGIT_VALUES = {ch: i for i, ch in enumerate("零一二三四五六七八九")} | {"〇": 0, "幺": 1}
"""The characters a digit string is read with, and their values (幺: 1 in a phone number)."""

NUMERALS = "".join(DIGIT_VALUES) + "两十百千万亿"
"""Every character a number is spoken with: the digits and the counting words."""

_CHINESE = "".join(DIGIT_VALUES)
_ARABIC = "0123456789"
# Characters Whisper base writes for a digit it misheard (same or nearly the same syllable:
# 把 bǎ for 八 bā, 要 yào / 有 yǒu for 幺 yāo), each with the digit it stands for.
_SOUNDS_LIKE = {
    ch: digit
    for digit, chars in {
        "幺": "要邀腰妖吆药有由又友",
        "二": "而儿耳尔",
        "三": "山散伞",
        "四": "是死寺似思丝",
        "五": "无午舞武吴屋",
        "六": "溜留流",
        "七": "期其起齐妻气",
        "八": "把吧巴爸拔",
        "九": "就久酒救旧",
        "零": "灵玲铃领令龄",
    }.items()
    for ch in chars
}
_RUN = re.compile(f"[{_CHINESE}{_ARABIC}{''.join(_SOUNDS_LIKE)}]+")
_MOBILE_LENGTH = 11


# A temperature below zero: between 零下 and 度 only a number can stand (零下午摄氏度 is
# 零下五摄氏度, heard so from three of the five zh voices of the TTS round trips).
_BELOW_ZERO = re.compile(
    f"(?<=零下)[{_CHINESE}十{''.join(ch for ch, d in _SOUNDS_LIKE.items() if d != '幺')}]{{1,3}}"
    "(?=摄氏度|度)"
)


def repair(text: str) -> str:
    """``text`` with the misheard digits of its spoken digit strings and of a temperature
    below zero written as digits."""
    text = _BELOW_ZERO.sub(lambda m: "".join(_SOUNDS_LIKE.get(ch, ch) for ch in m.group()), text)
    return _RUN.sub(_repair_run, text)


def _repair_run(match: re.Match[str]) -> str:
    run = list(match.group())
    is_digit = [ch in _CHINESE or ch in _ARABIC for ch in run]
    if sum(is_digit) < MIN_DIGITS:
        return match.group()
    arabic = any(ch in _ARABIC for ch in run)

    def digit(ch: str) -> str:
        spoken = _SOUNDS_LIKE[ch]
        return str(DIGIT_VALUES[spoken]) if arabic else spoken

    for i in range(1, len(run) - 1):
        if not is_digit[i] and is_digit[i - 1] and is_digit[i + 1]:
            run[i], is_digit[i] = digit(run[i]), True
    if (
        len(run) == _MOBILE_LENGTH
        and _SOUNDS_LIKE.get(run[0]) == "幺"
        and all(is_digit[1:])
        and _value(run[1]) >= 3
    ):
        run[0] = digit(run[0])
    return "".join(run)


def _value(digit: str) -> int:
    return int(digit) if digit in _ARABIC else DIGIT_VALUES[digit]
