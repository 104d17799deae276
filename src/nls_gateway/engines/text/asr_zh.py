"""Chinese ASR post-processing: simplified script, punctuation style and inverse normalisation.

This module owns the text rules the Whisper adapter applies to its raw output: OpenCC
traditional→simplified conversion (Whisper base drifts into traditional characters),
full-width punctuation for Chinese (Whisper emits ASCII ``,`` and ``?`` even in Chinese
text), stripping punctuation when the client turned it off, and inverse text
normalisation (ITN, Chinese numerals → Arabic digits) built on ``cn2an`` with guard rules
for the cases engines.md §4 lists (``零下``, digit runs, clock times, also Whisper's
``下午14.30分``, and words such as ``一下``/``一些`` that contain a numeral but are not
numbers), and its reverse for ITN off:
NLS then writes every number in Chinese characters, while Whisper writes digits when it
likes (``spell_numbers``: years and codes digit by digit, quantities as numbers). It also
owns the end mark of a finished sentence (``end_sentence``, zh and en; the recognition
tasks apply it to finals, as Whisper base leaves it off about half the Chinese sentences),
and gives the scoring form used by the accuracy benchmark. Pure text functions: no audio,
no model calls.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from nls_gateway.engines.text import digit_strings
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "PUNCTUATION",
    "edit_distance",
    "end_sentence",
    "inverse_normalize",
    "normalize_punctuation",
    "postprocess",
    "scoring_errors",
    "scoring_form",
    "spell_numbers",
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

_DIGIT = {**digit_strings.DIGIT_VALUES, "两": 2}
_NUMERAL_RUN = re.compile(f"[{digit_strings.NUMERALS}]+")
_DECIMAL = re.compile(
    r"([零〇一二两三四五六七八九十百千万亿]+)点([零〇一二三四五六七八九]+)(?![零〇一二三四五六七八九十百分钟])"
)
# A single digit becomes Arabic only before a unit that makes it a quantity or a date;
# elsewhere (一下, 一些, 一起, 三心二意) the numeral is part of a word and stays.
_UNITS = tuple("年月日号时点分秒岁度元块角毛米倍层楼%")
# Whisper base writes a clock time it hears as 十四点三十分 as 14.30分 (every zh voice of
# the TTS round trips): after a part of the day it is a time, not a decimal (a score of
# 9.50分 has no 下午 before it), and is written 14点30分 as the spoken form says.
_DOTTED_CLOCK = re.compile(
    r"(?<=上午|下午|早上|晚上|中午|凌晨|傍晚|清晨|早晨|夜里)\s*([01]?\d|2[0-3])\.([0-5]\d)(?=分)"
)
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
    text = re.sub(r"(?<=\d)：(?=\d)", ":", text)  # a clock time: 14:30, not 14：30
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", "。", text)
    # Whisper base sometimes wraps a whole utterance in 《》 as if it were a title.
    if text.startswith("《") and text.count("《") == 1 and text.rstrip("。").endswith("》"):
        text = text[1:].replace("》", "")
    return text


_END_MARKS = "。？！.?!"
_SOFT_TAIL = re.compile(r"[，,、；;：:…—\-~～\s]+$")
_CLOSERS = "”’」』）)》\"'"
# A trailing 吗 asks; 呢 and 吧 ask only in some sentences (我还没吃呢, 我们走吧 are
# statements), so they need a question word or a confirming 对/是 before them.
_ZH_QUESTION_WORDS = re.compile(
    r"什么|怎么|为什么|为何|哪(?!怕)|谁|(?<![好十])几[个点岁天年次]|多少|多久|多大|难道|是否"
)
# 去不去, 是不是…: asks, unless the clause reports a question (我不知道他去不去).
_ZH_A_NOT_A = re.compile(r"([\u4e00-\u9fff])不\1")
_ZH_REPORTED = re.compile(r"知道|清楚|确定|问|看看|听|记得|明白|告诉")
# 你最喜欢哪个季节 asks; 什么都没有 / 谁也不知道 (a wh-word before 都/也) and 没什么 /
# 不怎么 do not.
_ZH_WH = re.compile(r"(?<![没不])(?:什么|怎么|为什么|为何|哪(?!怕)|谁)(?![^，,。]{0,3}[都也])")
_ZH_ASKING_TAIL = re.compile(
    r"(?:吗|(?<![什怎这那多])么|对吧|是吧|是不是|对不对|好不好|行不行|能不能|要不要|有没有|可不可以|"
    r"(?<![没不])什么|怎么样|怎么办|为什么|多少|哪里|哪儿|几点)$"
)
_EN_AUX = frozenset(
    "am is are was were do does did have has had can could will would shall should may might "
    "must isn't aren't wasn't weren't don't doesn't didn't haven't hasn't can't couldn't "
    "won't wouldn't shouldn't".split()
)
_EN_WH = frozenset("what who whom whose which why where when how".split())
_EN_SUBJECT = frozenset("i you he she it we they there this that these those".split())


def end_sentence(text: str, language: str | None) -> str:
    """``text`` as a finished sentence: ending with 。？！ (zh) or . ? ! (en).

    NLS ends every ``SentenceEnd`` result with its mark when punctuation is on; Whisper
    often stops without one or on a comma (a sentence the VAD cut at a pause). A comma,
    colon or dash at the end is replaced; a closing quote or bracket keeps its place and
    the mark goes after it unless one is already inside. The mark is ？ where a cheap rule
    sees a question (a trailing 吗, a question word before 呢, "do you …"), else 。/ ``.``.
    Text with nothing to say (no letter or digit) is returned unchanged.
    """
    text = text.rstrip()
    if not any(ch.isalnum() for ch in text):
        return text
    body = text.rstrip(_CLOSERS)
    closers = text[len(body) :]
    if body.endswith(tuple(_END_MARKS)):
        return text
    body = _SOFT_TAIL.sub("", body)
    zh = language == "zh" or (language not in ("en",) and re.search(f"[{_CJK}]", body))
    question = _zh_question(body) if zh else _en_question(body)
    mark = ("？" if question else "。") if zh else ("?" if question else ".")
    return body + closers + mark


def _zh_question(text: str) -> bool:
    # Only the last clause decides: "我知道你去哪了，我们走吧" is not a question.
    clause = re.split(r"[，,；;：:]", text)[-1]
    if _ZH_ASKING_TAIL.search(clause):
        return True
    if not _ZH_REPORTED.search(clause) and (_ZH_A_NOT_A.search(clause) or _ZH_WH.search(clause)):
        return True
    if clause.endswith("呢"):
        short = len(clause) <= 3  # 你呢 / 他们呢: "and you?"
        return short or bool(_ZH_QUESTION_WORDS.search(clause))
    return False


def _en_question(text: str) -> bool:
    # "Do you …", "Is it …", "What is …", "How are …"; "Had he married her, he would …"
    # (an inverted conditional) has a comma, and "When he came he slept" no auxiliary.
    words = re.findall(r"[a-z']+", text.lower())
    if len(words) < 2 or "," in text:
        return False
    first, second = words[0], words[1]
    if first in _EN_AUX:
        return second in _EN_SUBJECT or second in ("the", "a", "an", "not")
    return first in _EN_WH and (second in _EN_AUX or second.endswith("'s"))


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


def spell_numbers(text: str) -> str:
    """Arabic numerals → Chinese characters, the way NLS writes numbers without ITN.

    ``2024年`` → ``二零二四年`` (a year), ``13800138000`` → ``一三八零零一三八零零零``
    (a phone number or code: 7+ digits or a leading 0), ``3.5`` → ``三点五``, ``35%`` →
    ``百分之三十五``, ``1/3`` → ``三分之一``, ``8:05`` → ``八点零五分``, ``120`` →
    ``一百二十``, ``12,000`` → ``一万二千``, ``3-5天`` → ``三到五天``, ``2个`` → ``两个``.
    Digits that belong to a Latin name (``MP3``, ``4G``, ``COVID-19``, ``iPhone 15``) stay.
    """
    if not any(ch.isdigit() for ch in text):
        return text
    text = _GROUPED.sub(lambda m: _quantity(m.group(0).replace(",", "")), text)
    text = _CLOCK.sub(lambda m: _clock(m.group(1), m.group(2)), text)
    text = _FRACTION.sub(lambda m: _quantity(m.group(2)) + "分之" + _quantity(m.group(1)), text)
    text = _PERCENT.sub(lambda m: "百分之" + _quantity(m.group(1)), text)
    text = _RANGE.sub(lambda m: _quantity(m.group(1)) + "到" + _quantity(m.group(2)), text)
    return _ARABIC.sub(_spell_match, text)


def postprocess(text: str, *, language: str, punctuation: bool, itn: bool) -> str:
    """Apply every rule above to one raw Whisper output."""
    text = text.strip()
    if language == "zh":
        text = digit_strings.repair(to_simplified(text))
        text = _DOTTED_CLOCK.sub(r"\1点\2", text)
        if not itn:
            # Before the punctuation rules: they would turn 12,000 into 12，000.
            text = spell_numbers(text)
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


def scoring_errors(hypothesis: str, reference: str, language: str) -> tuple[int, int]:
    """(edit errors, reference length) after :func:`scoring_form`: characters for zh
    (CER), words for en (WER). The length is at least 1."""
    hyp, ref = scoring_form(hypothesis, language), scoring_form(reference, language)
    units = (list(hyp), list(ref)) if language == "zh" else (hyp.split(), ref.split())
    return edit_distance(*units), max(1, len(units[1]))


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


# ----------------------------------------------------------------------------- helpers

# Digits that belong to a Latin name (MP3, COVID-19, iPhone 15) stay; so do those after
# "3." (the fraction of a decimal, matched with its whole part).
_NOT_LATIN = r"(?<![A-Za-z0-9\-])(?<![A-Za-z] )(?<!\d\.)"
_NOT_LATIN_AFTER = r"(?![A-Za-z0-9])"
_GROUPED = re.compile(_NOT_LATIN + r"\d{1,3}(?:,\d{3})+(?![\d.])")
_CLOCK = re.compile(_NOT_LATIN + r"([01]?\d|2[0-3]):([0-5]\d)" + _NOT_LATIN_AFTER)
_FRACTION = re.compile(_NOT_LATIN + r"(\d+)/(\d+)" + _NOT_LATIN_AFTER)
_PERCENT = re.compile(_NOT_LATIN + r"(\d+(?:\.\d+)?)\s*[%％]")
_RANGE = re.compile(_NOT_LATIN + r"(\d+(?:\.\d+)?)\s*[-~～]\s*(\d+(?:\.\d+)?)" + _NOT_LATIN_AFTER)
_ARABIC = re.compile(_NOT_LATIN + r"(-?)(\d+)(?:\.(\d+))?" + _NOT_LATIN_AFTER)
_ROUND = re.compile(r"[1-9]\d{0,2}0{4,}")
_CN_DIGITS = "零一二三四五六七八九"
# A lone 2 before a measure word is read 两 (两个, 两年, 两点, 两万), as NLS writes it.
_LIANG_BEFORE = tuple("个位次天年岁只件本张条种点块元家人名台辆倍周份口百千万亿")


def _quantity(number: str) -> str:
    """``120`` → 一百二十, ``3.5`` → 三点五 (the fraction read digit by digit)."""
    whole, _, frac = number.partition(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spelt = str(_cn2an().an2cn(whole, "low"))
    return spelt + ("点" + _digit_by_digit(frac) if frac else "")


def _digit_by_digit(digits: str) -> str:
    return "".join(_CN_DIGITS[int(d)] for d in digits)


def _clock(hour: str, minute: str) -> str:
    spelt = _quantity(str(int(hour))) + "点"
    if minute == "00":
        return spelt
    return spelt + (_digit_by_digit(minute) if minute[0] == "0" else _quantity(minute)) + "分"


def _spell_match(match: re.Match[str]) -> str:
    sign, whole, frac = match.group(1), match.group(2), match.group(3)
    after = match.string[match.end() : match.end() + 1]
    if frac is None and (
        (len(whole) > 1 and whole[0] == "0")
        or (len(whole) >= 7 and not (len(whole) <= 10 and _ROUND.fullmatch(whole)))
        or (len(whole) == 4 and after == "年")
    ):
        return sign + _digit_by_digit(whole)  # a year, phone number or code
    if whole == "2" and frac is None and not sign and after in _LIANG_BEFORE:
        before = match.string[max(0, match.start() - 1) : match.start()]
        if before != "第":  # 第二个, not 第两个
            return "两"
    return ("负" if sign else "") + _quantity(whole + ("." + frac if frac else ""))


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
