"""Where each recognised word sits in the result text (character spans).

Engines report words with punctuation stripped and, for Chinese, before inverse text
normalisation, while the text has punctuation, full-width marks and perhaps digits. The
text rules that cut or shorten a result (filler removal, semantic sentence breaks) need
to know which words a piece of text covers, so they can keep the word times in step.
Pure text: no audio, no engine types.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["word_spans"]

_LOOKAHEAD = 12
"""How far past the previous word a word may be found. Only punctuation, spaces and
removed words lie between two words, so a word farther on is a different occurrence
(the text was rewritten there, e.g. by inverse normalisation: 二十 → 20)."""


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int] | None]:
    """The ``(start, end)`` character span of each word in ``text``, in order; None for a
    word not found there (case-insensitive, so English words match whatever casing the
    text got).

    >>> word_spans("秋天，总是。", ["秋天", "总", "是"])
    [(0, 2), (3, 4), (4, 5)]
    """
    folded = _fold(text)
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for word in words:
        needle = _fold(word.strip())
        at = folded.find(needle, cursor, cursor + _LOOKAHEAD + len(needle)) if needle else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(needle)))
        cursor = at + len(needle)
    return spans


def _fold(text: str) -> str:
    """Lower case, one character for one (``str.lower`` may lengthen a few, e.g. İ)."""
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)
