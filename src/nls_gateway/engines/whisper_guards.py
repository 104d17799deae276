"""What a Whisper decode's text goes through before it is trusted, and inputs over 30 s.

This module owns the text-level guards of the Whisper adapter (:mod:`.whisper`): Whisper
without timestamps restarts or loops its sentence (above all beam search on the short
encoder input, engines.md Addendum), so a decode is cut where it starts over
(:func:`drop_repeat`) and one that stays degenerate (a loop, a high compression ratio, far
more tokens than the audio can hold) is passed over (:func:`degenerate`). It also counts hot
words in a hypothesis (:func:`hotword_hits`, for n-best ranking) and cuts audio longer than
the encoder's 30 s at quiet points (:func:`split_long`, :func:`join_pieces`).

Pure functions over text and numpy arrays: no model, no I/O.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from nls_gateway.engines.base import AsrResult, Float32Array, Word
from nls_gateway.engines.text import asr_zh

__all__ = [
    "MAX_INPUT_S",
    "degenerate",
    "drop_repeat",
    "hotword_hits",
    "join_pieces",
    "split_long",
]

SAMPLE_RATE = 16000
MAX_INPUT_S = 28.0
"""Longer segments are cut at a quiet point: the encoder has 30 s of positions."""

_COMPRESSION_RATIO = 2.4
_MIN_LOOP = 6  # shortest repeated stretch (characters) treated as a loop
_MIN_RESTART = 6
"""Shortest restart of the opening after a sentence end (characters) cut as one: a
speaker may repeat a short phrase (快点过来。快点过来), Whisper restarts whole clauses."""
_SENTENCE_END = "。！？.!?"


def hotword_hits(text: str, hotwords: Sequence[str]) -> int:
    """How many distinct hot words ``text`` contains.

    Compared without punctuation, spaces or case, and in simplified script, so ``達摩院``
    and ``Open NLS`` count for the hot words 达摩院 and OpenNLS.
    """
    if not hotwords:
        return 0
    bare = _bare(text)
    return sum(1 for word in set(hotwords) if (b := _bare(word)) and b in bare)


def _bare(text: str) -> str:
    return asr_zh.strip_punctuation(asr_zh.to_simplified(text)).replace(" ", "").lower()


def degenerate(text: str, n_tokens: int, n_samples: int) -> bool:
    """Empty, a repetition loop, or far more tokens than the audio can hold."""
    if not text.strip():
        return True
    raw = text.encode("utf-8")
    if len(raw) > 24 and len(raw) / len(zlib.compress(raw)) > _COMPRESSION_RATIO:
        return True
    return n_tokens > 12 * n_samples / SAMPLE_RATE + 12


def drop_repeat(text: str) -> str:
    """Cut the text where it starts over or loops (Whisper without timestamps does both).

    A decode that restarts its own opening (12+ characters) later on is a loop: the
    part before the restart is kept. So is one whose tail after a sentence end is its
    opening again, cut short by the end of the audio (``A。A'``, 6+ characters; Whisper
    does that on a sentence followed by silence: 花都开了。花都开), and one whose tail
    repeats a stretch of 6+ characters back to back
    (``…A B. B. B`` → ``…A B.``), which beam search on the short encoder input produces
    (eval set: a 2 s clip came out as its sentence twice), and one that restarts with no
    sentence end and is cut off past half of its first copy (``A A'``; round trips of
    synthesized speech followed by silence).
    Comparisons ignore case: a restart capitalises its first word again.
    """
    low = text.lower()
    head = low[: min(20, len(low) // 3)].strip()
    if len(head) >= 12:
        again = low.find(head, len(head))
        if again > 0:
            text, low = text[:again].strip(), low[:again].strip()
    for end in (i + 1 for i, c in enumerate(low) if c in _SENTENCE_END):
        tail = low[end:].strip()
        if len(tail) >= _MIN_RESTART and low.startswith(tail):
            return text[:end].strip()
    n = len(low)
    for period in range(_MIN_LOOP, n // 2 + 1):
        start = n - period  # walk back while the text equals itself one period later
        while start > 0 and low[start - 1] == low[start - 1 + period]:
            start -= 1
        if n - start - period >= max(4, period // 3):
            return text[: start + period].strip()
    for k in range(n // 2 + 1, n - _MIN_RESTART + 1):
        # A restart with no sentence end before it, cut off: A A' with A' a prefix of A,
        # 6+ characters and at least half of A (女儿喜欢听音乐和看电视剧女儿喜欢听音乐和看电视).
        # A whole second copy is left as it is: people do say a sentence twice.
        if 2 * (n - k) >= k and low.startswith(low[k:]):
            return text[:k].strip()
    return text


def split_long(samples: Float32Array) -> list[Float32Array]:
    """Cut audio longer than MAX_INPUT_S at the quietest 100 ms in each window's last 5 s."""
    pieces: list[Float32Array] = []
    window, tail, step = int(MAX_INPUT_S * SAMPLE_RATE), 5 * SAMPLE_RATE, SAMPLE_RATE // 10
    start = 0
    while samples.size - start > window:
        region = samples[start + window - tail : start + window]
        energy = [float(np.mean(region[i : i + step] ** 2)) for i in range(0, tail, step)]
        cut = start + window - tail + int(np.argmin(energy)) * step + step // 2
        pieces.append(samples[start:cut])
        start = cut
    pieces.append(samples[start:])
    return pieces


def join_pieces(results: list[AsrResult], pieces: list[Float32Array], language: str) -> AsrResult:
    sep = "" if language == "zh" else " "
    text = sep.join(r.text for r in results if r.text)
    words: list[Word] = []
    offset = 0
    for result, piece in zip(results, pieces, strict=True):
        words += [Word(w.text, w.start_ms + offset, w.end_ms + offset) for w in result.words]
        offset += piece.size * 1000 // SAMPLE_RATE
    spoken = [r for r in results if r.text]
    confidence = min((r.confidence for r in spoken), default=1.0)
    return AsrResult(text, tuple(words), confidence, results[0].language if results else None)
