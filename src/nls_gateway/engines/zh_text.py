"""Chinese ASR post-processing: simplified script, punctuation style and inverse normalisation.

This module owns the text rules the Whisper adapter applies to its raw output: OpenCC
traditional→simplified conversion (Whisper base drifts into traditional characters),
full-width punctuation for Chinese (Whisper emits ASCII ``,`` and ``?`` even in Chinese
text), stripping punctuation when the client turned it off, and inverse text
normalisation (ITN, Chinese numerals → Arabic digits) built on ``cn2an`` with guard rules
for the cases engines.md §4 lists (``零下``, digit runs, clock times, words such as
``一下``/``一些`` that contain a numeral but are not numbers). It also gives the scoring
form used by the accuracy benchmark. Pure text functions: no audio, no model calls.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any

from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "PUNCTUATION",
    "inverse_normalize",
    "normalize_punctuation",
    "postprocess",
    "scoring_form",
    "strip_punctuation",
    "to_simplified",
]

PUNCTUATION = "，。！？；：、,.!?;:\"'“”‘’《》「」『』（）()…—-~～·"
"""Characters treated as punctuation (removed by ``strip_punctuation``)."""

_INSTALL_HINT = "pip install 'opennls[gateway]'"
_CJK = r"\u3400-\u9fff"
# ASCII → full-width for Chinese text. '.' is handled separately: it is a decimal point
# between digits and a sentence end elsewhere.
_FULL_WIDTH = {",": "，", "?": "？", "!": "！", ";": "；", ":": "：", "(": "（", ")": "）"}
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}，。！？；：、])\s+|\s+(?=[{_CJK}，。！？；：、])")

_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4}
_DIGIT.update({"五": 5, "六": 6, "七": 7, "八": 8, "九": 9})
_NUMERAL_RUN = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")
_DECIMAL = re.compile(
    r"([零〇一二两三四五六七八九十百千万亿]+)点([零〇一二三四五六七八九]+)(?![零〇一二三四五六七八九十百分钟])"
)
# A single digit becomes Arabic only before a unit that makes it a quantity or a date;
# elsewhere (一下, 一些, 一起, 三心二意) the numeral is part of a word and stays.
_UNITS = tuple("年月日号时点分秒岁度元块角毛米倍层楼%")
# Words that contain a numeral run but are not numbers.
_WORDS = ("十分", "万一", "千万", "一二线", "三四线", "百分百", "一点儿", "一会儿")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC ``t2s``); other scripts pass through."""
    if not text:
        return text
    return str(_t2s().convert(text))


def normalize_punctuation(text: str, language: str) -> str:
    """Make punctuation look like NLS output for ``language`` (``zh`` gets full width).

    For Chinese the spaces Whisper puts between phrases are removed, ASCII marks become
    full-width ones and a ``.`` that is not a decimal point becomes ``。``.
    """
    text = text.strip()
    if language != "zh" or not text:
        return text
    text = _SPACE_BETWEEN_CJK.sub("", text)
    text = "".join(_FULL_WIDTH.get(ch, ch) for ch in text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", "。", text)
    # Whisper base sometimes wraps a whole utterance in 《》 as if it were a title.
    if text.startswith("《") and text.count("《") == 1 and text.rstrip("。").endswith("》"):
        text = text[1:].replace("》", "")
    return text


def strip_punctuation(text: str) -> str:
    """Remove punctuation; keep single spaces only between Latin words."""
    kept = "".join(" " if ch in PUNCTUATION and ch not in "'-" else ch for ch in text)
    kept = re.sub(r"(?<![A-Za-z0-9])'|'(?![A-Za-z])", " ", kept)
    kept = _SPACE_BETWEEN_CJK.sub("", kept)
    return re.sub(r"\s+", " ", kept).strip()


def inverse_normalize(text: str) -> str:
    """Chinese numerals → Arabic digits, the way NLS ITN writes them.

    ``二零二四年三月五日`` → ``2024年3月5日``, ``零下十度`` → ``零下10度``,
    ``百分之八十`` → ``80%``, ``三点五`` → ``3.5``, ``三点二十五分`` → ``3点25分``;
    ``一下``, ``一些``, ``一二线`` stay as they are.
    """
    text = re.sub(
        r"百分之([零〇一二两三四五六七八九十百千万点]+)",
        lambda m: _number(m.group(1)) + "%",
        text,
    )
    # 三点五 → 3.5 (a decimal); 三点二十五分 / 三点半 / 三点钟 are clock times, left to the runs.
    text = _DECIMAL.sub(lambda m: _number(m.group(1)) + "." + _digits(m.group(2)), text)
    out: list[str] = []
    pos = 0
    for match in _NUMERAL_RUN.finditer(text):
        start, end = match.span()
        out.append(text[pos:start])
        out.append(_convert_run(text, start, end))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def postprocess(text: str, *, language: str, punctuation: bool, itn: bool) -> str:
    """Apply every rule above to one raw Whisper output."""
    text = text.strip()
    if language == "zh":
        text = to_simplified(text)
    text = normalize_punctuation(text, language)
    if itn and language == "zh":
        text = inverse_normalize(text)
    if not punctuation:
        text = strip_punctuation(text)
    return text


def scoring_form(text: str, language: str) -> str:
    """The form both hypothesis and reference take before CER/WER scoring.

    zh: simplified, Arabic digits spelt as Chinese numerals (``cn2an`` an2cn), no
    punctuation, no spaces. en: lower case, punctuation removed, numbers below 100
    spelt out (LibriSpeech references write "ten", Whisper writes "10"), single spaces.
    """
    if language == "zh":
        text = to_simplified(text)
        text = re.sub(r"\d+(?:\.\d+)?", lambda m: _an2cn(m.group(0)), text)
        return re.sub(r"\s+", "", strip_punctuation(text))
    text = strip_punctuation(text.lower().replace("-", " "))
    text = re.sub(r"\b\d{1,2}\b", lambda m: _EN_NUMBERS[int(m.group(0))], text)
    return re.sub(r"[^a-z0-9' ]", "", text).strip()


# ----------------------------------------------------------------------------- helpers

_EN_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen".split()
_EN_UNITS += "fourteen fifteen sixteen seventeen eighteen nineteen".split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_NUMBERS = _EN_UNITS + [
    _EN_TENS[n // 10] + ("" if n % 10 == 0 else " " + _EN_UNITS[n % 10]) for n in range(20, 100)
]


@lru_cache(maxsize=1)
def _t2s() -> Any:
    try:
        import opencc
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise EngineUnavailableError(f"opencc is not installed: {_INSTALL_HINT}") from exc
    return opencc.OpenCC("t2s")


def _cn2an() -> Any:
    try:
        import cn2an
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise EngineUnavailableError(f"cn2an is not installed: {_INSTALL_HINT}") from exc
    return cn2an


def _an2cn(digits: str) -> str:
    # A long digit string is a code or a year (2024 → 二零二四), not a quantity.
    if len(digits) >= 4 and "." not in digits:
        return "".join("零一二三四五六七八九"[int(d)] for d in digits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(_cn2an().an2cn(digits, "low"))


def _number(run: str) -> str:
    """Value of a numeral run (with an optional 点 decimal part) as Arabic digits."""
    if "点" in run:
        whole, _, frac = run.partition("点")
        return _number(whole) + "." + _digits(frac)
    if all(ch in _DIGIT for ch in run) and len(run) > 1:
        return "".join(str(_DIGIT[ch]) for ch in run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return str(_cn2an().cn2an(run, "smart"))
        except ValueError:
            return run


def _digits(run: str) -> str:
    return "".join(str(_DIGIT.get(ch, ch)) for ch in run)


def _convert_run(text: str, start: int, end: int) -> str:
    run = text[start:end]
    after = text[end : end + 1]
    for word in _WORDS:
        # Is this run inside one of the protected words?
        for i in range(max(0, start - len(word) + 1), start + 1):
            if text.startswith(word, i) and i + len(word) > start:
                return run
    if run == "零" and after == "下":
        return run  # 零下 (below zero) is a word: cn2an would write "0下"
    if len(run) == 1 and run not in "十百千万亿":
        if after == "点":
            # 三点二十五分 / 三点半 are clock times; 一点 alone is "a little".
            if re.match(r"点([零〇一二两三四五六七八九十]+|半|钟)", text[end:]):
                return _number(run)
            return run
        return _number(run) if after and after in _UNITS else run
    if len(run) == 2 and all(ch in _DIGIT for ch in run):
        return run  # 一二 / 三四: "one or two", not the number twelve
    return _number(run)
