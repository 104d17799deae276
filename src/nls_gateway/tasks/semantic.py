"""Semantic sentence breaks (``enable_semantic_sentence_detection``): where to cut by meaning.

This module owns the two decisions the SpeechTranscriber makes in semantic mode: whether
the running text of an open sentence already holds a finished sentence (a sentence-final
mark with more speech after it: :func:`breaks`), and, from a decode with word times of
that audio, where each finished sentence's audio ends (:func:`split`). A cut lies in the
gap between the last word before the mark and the first word after it, at its quietest
10 ms, so every word belongs to exactly one sentence: the next sentence's audio starts
at the cut and nothing is decoded twice or lost.

Pure logic: no asyncio, no engine calls; the transcriber feeds it results and audio.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from nls_gateway.engines.base import AsrResult, Float32Array, Word
from nls_gateway.engines.text.word_align import word_spans

__all__ = ["Piece", "breaks", "split"]

MIN_SENTENCE_MS = 500
"""No sentence shorter than this is cut off (a mark after one syllable is a misreading)."""
MIN_REST_MS = 400
"""Audio after a decode's last word that counts as speech still to decode (``more``)."""
TAIL_MS = 500
"""How far after that last word its sentence's cut may lie."""
_SLACK_MS = 60
"""How far outside the gap between two words a cut may go (alignment is ±1 frame)."""
_FRAME_MS = 10

_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "vs", "etc", "jr", "sr", "e.g", "i.e"})
# One period: two or more are Whisper's trailing-off "...", and 3.5 is a number.
_MARK = re.compile(r"[。？！?!]+|(?<!\.)\.(?![\d.])")
_CLOSERS = "\"'”’」』）)"


def breaks(text: str) -> list[int]:
    """Offsets just past each sentence-final mark (。？！ . ? !) that more words follow.

    A decimal point (3.5), an ellipsis (...) and an English abbreviation (Mr. Smith) are
    not sentence ends; a closing quote after the mark stays with its sentence.

    >>> breaks("今天很好。我们走吧。")
    [5]
    """
    out: list[int] = []
    for m in _MARK.finditer(text):
        end = m.end()
        while end < len(text) and text[end] in _CLOSERS:
            end += 1
        if not any(c.isalnum() for c in text[end:]):
            continue  # nothing after the mark yet: the sentence may still go on
        if m.group(0) == "." and _abbreviation(text[: m.start()]):
            continue
        if out and out[-1] == end:
            continue
        out.append(end)
    return out


@dataclass(frozen=True, slots=True)
class Piece:
    """One sentence of a decode; times in ms from the start of the decoded audio."""

    result: AsrResult
    """Its text (up to and with its mark) and words, word times from ``start_ms``."""
    start_ms: int
    end_ms: int
    """The cut: where the next sentence's audio begins (the audio's end for the last)."""


def split(
    result: AsrResult, audio: Float32Array, sample_rate: int, *, more: bool = False
) -> list[Piece]:
    """``result`` (a decode of ``audio`` with word times) as consecutive sentences: one
    piece per finished sentence, each ending at a cut between two words, and last the
    rest up to the end of ``audio``. One piece (the whole result) when nothing can be cut:
    no finished sentence, or no words to place the cut.

    ``more``: a partial already showed speech after this text. A decode of audio cut off
    mid-speech often stops at the first sentence mark (Whisper's beam search would rather
    end there than guess at a clipped word), so a text that ends with its mark while at
    least ``MIN_REST_MS`` of audio follows its last word is a finished sentence too; its
    cut lies in the quietest part of the ``TAIL_MS`` after that word, and the rest piece
    has no text yet (the caller decodes that audio as the next sentence).
    """
    text, words = result.text, result.words
    total_ms = audio.size * 1000 // sample_rate
    spans = word_spans(text, [w.text for w in words])
    offsets = breaks(text) if words else []
    if more and words and _ends_with_mark(text) and words[-1].end_ms + MIN_REST_MS <= total_ms:
        offsets.append(len(text))
    pieces: list[Piece] = []
    start_ms, first_char, first_word = 0, 0, 0
    for offset in offsets:
        before = [i for i, s in enumerate(spans) if s is not None and s[1] <= offset]
        after = [i for i, s in enumerate(spans) if s is not None and s[0] >= offset]
        if not before or before[-1] < first_word:
            continue
        last = words[before[-1]]
        if after:
            nxt = words[after[0]]
            cut = _quietest(audio, sample_rate, last.end_ms, nxt.start_ms)
            if not last.start_ms < cut < nxt.end_ms:
                continue
        elif offset == len(text):
            tail_end = min(last.end_ms + TAIL_MS, total_ms - MIN_REST_MS)
            cut = _quietest(audio, sample_rate, last.end_ms + _SLACK_MS, tail_end - _SLACK_MS)
        else:
            continue
        if cut - start_ms < MIN_SENTENCE_MS:
            continue
        head_words = words[first_word : after[0] if after else len(words)]
        head = _piece(result, text[first_char:offset], head_words, start_ms)
        pieces.append(Piece(head, start_ms, cut))
        start_ms, first_char = cut, offset
        first_word = after[0] if after else len(words)
    rest = _piece(result, text[first_char:], words[first_word:], start_ms)
    pieces.append(Piece(rest, start_ms, max(start_ms, total_ms)))
    return pieces


def _ends_with_mark(text: str) -> bool:
    stripped = text.rstrip().rstrip(_CLOSERS)
    return (
        bool(stripped) and _MARK.search(stripped[-1:]) is not None and not stripped.endswith("..")
    )


def _piece(result: AsrResult, text: str, words: tuple[Word, ...], start_ms: int) -> AsrResult:
    """Part of ``result``: its text and words, word times from ``start_ms``."""
    if start_ms == 0 and text == result.text:
        return result
    moved = tuple(
        Word(w.text, max(0, w.start_ms - start_ms), max(0, w.end_ms - start_ms)) for w in words
    )
    return AsrResult(text.strip(), moved, result.confidence, result.language)


def _quietest(audio: Float32Array, sample_rate: int, begin_ms: int, end_ms: int) -> int:
    """The start of the quietest 10 ms frame near the gap ``begin_ms…end_ms``."""
    lo = max(0, min(begin_ms, end_ms) - _SLACK_MS)
    hi = max(begin_ms, end_ms) + _SLACK_MS
    step = sample_rate * _FRAME_MS // 1000
    window = audio[lo * sample_rate // 1000 : hi * sample_rate // 1000]
    n = window.size // step
    if n == 0:
        return (begin_ms + end_ms) // 2
    energy = (window[: n * step].reshape(n, step).astype(np.float64) ** 2).mean(axis=1)
    # Ties (digital silence) go to the middle of the quiet run, not its edge.
    quiet = np.flatnonzero(energy <= energy.min() * 1.05 + 1e-12)
    return lo + int(quiet[quiet.size // 2]) * _FRAME_MS


def _abbreviation(before: str) -> bool:
    word = re.search(r"([A-Za-z.]+)$", before)
    return word is not None and word.group(1).lower() in _ABBREVIATIONS
