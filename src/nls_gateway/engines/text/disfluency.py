"""Filler-word removal for ``disfluency=true`` (NLS 顺滑): the text rules, zh and en.

This module owns which spoken fillers a result loses and how the text is tidied after:

* Mandarin 嗯 and 呃 anywhere (they are never part of a word); 额 only standing alone
  (额度, 金额 keep theirs); 啊 standing alone or opening a clause before a pause mark
  (好啊 / 是啊 keep their modal particle); 哦 / 噢 opening a clause before a pause mark.
* 那个 / 这个 / 就是 only as hesitations: opening a clause and followed by a pause mark
  (那个，我们…), or repeated (那个那个人 → 那个人). Everywhere else they are words
  (那个人, 就是他) and stay; being conservative costs a filler, the opposite a meaning.
* English um, uh, er, erm, hmm (and their drawn-out spellings) as whole words in any
  case but all capitals (UM may be a name); uh-huh is an answer and stays. Between two
  commas both go (Whisper writes "is, uh, moved"); in Chinese the first comma stays, as
  it is as often a clause boundary as the filler's pause.

A removed filler takes the pause mark after it with it; a comma left before a sentence
end, at the start, or next to another comma goes too; a sentence that began with the
filler gets its capital back. Word times follow the text: :func:`kept_words` says which
of an engine's words survive. Pure text functions: no audio, no model calls.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nls_gateway.engines.text.asr_zh import PUNCTUATION
from nls_gateway.engines.text.word_align import word_spans

__all__ = ["filler_spans", "kept_words", "remove_fillers", "remove_spans"]

Span = tuple[int, int]

# A filler "stands alone" when nothing but these touch it; 嗯/呃 count, so 嗯那个，… opens
# a clause as well as 嗯，那个，… does.
_BOUND = re.escape(PUNCTUATION) + r"\s嗯呃"
_PAUSE = "，,、"
_ENDS = "。！？.!?；;"
_ALONE_BEFORE = rf"(?<![^{_BOUND}])"
_ALONE_AFTER = rf"(?![^{_BOUND}])"

_ZH_RULES = (
    re.compile(r"[嗯呃]+"),
    re.compile(rf"{_ALONE_BEFORE}额+{_ALONE_AFTER}"),
    re.compile(rf"{_ALONE_BEFORE}啊+(?:{_ALONE_AFTER}|(?=[{_PAUSE}]))"),
    re.compile(rf"{_ALONE_BEFORE}[哦噢]+(?=[{_PAUSE}])"),
    re.compile(rf"{_ALONE_BEFORE}(?:那个|这个|就是)(?=[{_PAUSE}])"),
)
_REPEATED = re.compile(rf"(那个|这个|就是)(?:[{_PAUSE}]?\1)+")
_EN_FILLER = re.compile(r"(?<![\w'-])(?:u+m+|u+h+|er|e+r+m+|h+m+)(?![\w'-])", re.IGNORECASE)


def filler_spans(text: str) -> list[Span]:
    """The filler words in ``text`` as sorted, non-overlapping ``(start, end)`` spans."""
    spans = [m.span() for rule in _ZH_RULES for m in rule.finditer(text)]
    for m in _REPEATED.finditer(text):
        # Keep the last copy: 那个那个人 is 那个人 said with a stumble.
        spans.append((m.start(), m.start() + m.group(0).rfind(m.group(1))))
    for m in _EN_FILLER.finditer(text):
        if m.group(0).isupper() and len(m.group(0)) > 1:
            continue
        start = m.start()
        if re.match(r"\s*,", text[m.end() :]) and (comma := re.search(r",\s*$", text[:start])):
            # "is, uh, moved": both commas were the filler's pause, not the sentence's.
            start = comma.start()
        spans.append((start, m.end()))
    return _merge(spans)


def remove_fillers(text: str) -> str:
    """``text`` without its filler words, punctuation and spaces tidied."""
    return remove_spans(text, filler_spans(text))


def remove_spans(text: str, spans: Sequence[Span]) -> str:
    """``text`` with ``spans`` (sorted, disjoint) cut out and the seams tidied."""
    if not spans:
        return text
    pieces: list[str] = []
    cursor = 0
    for start, end in [*spans, (len(text), len(text))]:
        piece = text[cursor:start]
        head = "".join(pieces).rstrip()
        if cursor and (not head or head[-1] in _ENDS):
            # The filler opened a sentence: the word after it opens it now.
            stripped = piece.lstrip(_PAUSE + " ")
            piece = piece[: len(piece) - len(stripped)] + stripped[:1].upper() + stripped[1:]
        pieces.append(piece)
        # The pause after a filler was the filler's own: it goes with it.
        rest = text[end:]
        skipped = len(rest) - len(rest.lstrip())
        cursor = end + skipped + 1 if rest[skipped : skipped + 1] in tuple(_PAUSE) else end
    return _tidy("".join(pieces))


def kept_words(text: str, words: Sequence[str], spans: Sequence[Span]) -> list[bool]:
    """For each of an engine's ``words`` of ``text``: False when it lies in a removed
    span (a word not found in the text is kept, its time is still the speaker's)."""
    keep = []
    for span in word_spans(text, words):
        inside = span is not None and any(s <= span[0] and span[1] <= e for s, e in spans)
        keep.append(not inside)
    return keep


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_SEAMS = (
    (re.compile(rf"^[\s{_PAUSE}]+"), ""),  # nothing before: no leading comma
    (re.compile(rf"[{_PAUSE}\s]+(?=[{_ENDS}]|$)"), ""),  # no comma before an end
    (re.compile(rf"(?<=[{_ENDS}])[{_PAUSE}]+"), ""),
    (re.compile(rf"(?<=[{_PAUSE}])[\s{_PAUSE}]*[{_PAUSE}]"), ""),  # one comma, not two
    (re.compile(r"(?<=\S) {2,}(?=\S)"), " "),
    (re.compile(r" +(?=[,.!?;:])"), ""),
    (re.compile(r"(?<=[\u3400-\u9fff，。！？、；：]) +(?=[\u3400-\u9fff])"), ""),
)


def _tidy(text: str) -> str:
    for pattern, repl in _SEAMS:
        text = pattern.sub(repl, text)
    text = text.strip()
    return text if any(c.isalnum() for c in text) else ""  # "" when only fillers were said
