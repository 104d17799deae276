"""Homophone repair for Mandarin ASR: a word-trigram LM picks among same-sounding words.

Whisper base hears Mandarin syllables and their tones well but often writes the wrong
characters for them: 富有失忆 for 富有诗意, 棒碗十分 for 傍晚时分, 营信数 for 银杏树 (the
eval set's long read passage lost 37 of 183 characters this way). Every one of those
pairs has the same syllables *and tones*, so the repair only ever swaps a 2–4 character
span for a dictionary word with the same toned reading (as pypinyin reads the hypothesis
in context), with two nasal-ending and retroflex merges (in/ing, en/eng, z/zh, c/ch,
s/sh: Whisper base blurs them, 营信 for 银杏). Which spelling wins is decided by
a word-trigram model of Simplified Chinese (fcitx5's libime ``zh_CN.lm``, a KenLM binary
from Debian's ``libime-data-language-model``; LGPL-2.1+) over the whole sentence, commas
included, minus ``penalty`` nats per character changed, so a swap must buy a clearly
likelier sentence. The search is a beam over word segmentations, a few ms a sentence.

Measured on the eval set (BENCHMARKS.md, issue 14), the tones and the context are what
make it safe: with toneless keys a unigram LM changed 51 of 156 correct sentences
(智能→只能, 线程→县城) and the trigram still 2 of the 13 references (阿丽→阿里); with
toned keys no reference and none of 80 sentences of the SDK docs changes (of 169 lines
of the SDK docs with Chinese, tables and Latin words included, 2 do: 管控台将Appkey →
江, pong包超时 → 包抄时; the LM likes 台江 and 包抄 better, with or without an unknown
word for the Latin one after them). The vocabulary of replacements is jieba's dictionary
(words seen ≥ 3 times that the LM knows) and pypinyin's phrase table, whose words carry
their readings (系好 jì hǎo, heard as 记好). Spoken numbers and digit strings stay as they
are (the LM would write 二零二六 as 二林二六). Hot words (``keep``) are never rewritten,
and a span with a hot word's syllables may become it. Repeated words are left as they
are: the LM cannot tell Whisper's stutters (那么那么) from real ones or from reduplication
(研究研究), so that is the acoustics' call, not the text's.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from nls_gateway.engines.text.digit_strings import NUMERALS
from nls_gateway.exception import EngineUnavailableError

__all__ = ["DEFAULT_PENALTY", "HomophoneLm", "shared"]

DEFAULT_PENALTY = 2.5
"""Nats a swap pays per character it changes (eval set: flat between 2 and 3; at 4 the
long passage keeps 6 more errors, at 1–2 with toneless keys correct sentences change)."""

_INSTALL_HINT = "pip install 'opennls[gateway]'"
_LN10 = math.log(10)
_CJK_SPLIT = re.compile(r"([\u3400-\u9fff]+)")
_CJK_WORD = re.compile(r"[\u3400-\u9fff]{2,4}")
_COMMAS = frozenset("，、,")  # the LM context carries across these; other marks end it
# A spoken number or digit string (二零二六, 一三八零零, 三十五) is never respelt: the LM
# likes 二林二六 and 壹零壹 better, and a digit the ASR misheard is digit_strings' job.
_NUMBER = re.compile(f"[{NUMERALS}]{{2,}}")
_MIN_FREQ = 3
_MAX_WORD = 6  # longest LM word the segmentation tries
_BEAM = 16

_Hyp = tuple[float, Any, str]  # (log-probability so far, KenLM state, text so far)


def _merge(syllable: str) -> str:
    """A toned syllable (``ying2``) with the merges Whisper blurs (``yin2``)."""
    tone = syllable[-1] if syllable[-1:].isdigit() else ""
    base = syllable[:-1] if tone else syllable
    if base.endswith(("ing", "eng")):
        base = base[:-1]
    if base[:2] in ("zh", "ch", "sh"):
        base = base[0] + base[2:]
    return base + tone


class HomophoneLm:
    """The trigram LM and its same-reading word index; thread-safe after loading."""

    def __init__(self, lm_path: Path, *, penalty: float = DEFAULT_PENALTY) -> None:
        self._path = lm_path
        self._penalty = penalty
        self._lock = threading.Lock()
        self._model: Any = None
        self._index: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._reading: Any = None

    def load(self) -> None:
        """Load the LM and build the index now (~2 s) instead of on first use.

        Raises:
            EngineUnavailableError: kenlm, jieba or pypinyin is missing, or the LM file
                cannot be read.
        """
        with self._lock:
            if self._model is not None:
                return
            try:
                import jieba
                import kenlm
                from pypinyin import Style, lazy_pinyin
                from pypinyin.constants import PHRASES_DICT, PINYIN_DICT
                from pypinyin.contrib.tone_convert import to_tone3
            except ImportError as exc:  # pragma: no cover - exercised only without the extra
                raise EngineUnavailableError(
                    f"homophone repair needs kenlm: {_INSTALL_HINT}"
                ) from exc
            try:
                model = kenlm.Model(str(self._path))
            except (OSError, RuntimeError) as exc:
                raise EngineUnavailableError(f"cannot load {self._path}: {exc}") from exc

            @lru_cache(maxsize=4096)
            def reading(text: str) -> tuple[str, ...]:
                """A hypothesis's syllables as pypinyin reads them in context."""
                syllables = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
                return tuple(_merge(s) for s in syllables)

            @cache
            def syllable(marked: str) -> str:
                return _merge(to_tone3(marked, neutral_tone_with_five=True))

            def word_reading(word: str) -> tuple[str, ...]:
                # What lazy_pinyin gives for a lone word (longest phrase first, else each
                # character's first reading; the same on every tenth word, checked), 10x faster.
                out: list[str] = []
                i = 0
                while i < len(word):
                    j = next(
                        (j for j in range(len(word), i + 1, -1) if word[i:j] in PHRASES_DICT),
                        i + 1,
                    )
                    if j > i + 1:
                        out += [syllable(p[0]) for p in PHRASES_DICT[word[i:j]]]
                    else:
                        out.append(syllable(PINYIN_DICT.get(ord(word[i]), word[i]).split(",")[0]))
                    i = j
                return tuple(out)

            jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict…" on stderr
            jieba.dt.check_initialized()
            index: dict[tuple[str, ...], list[str]] = {}
            # jieba's common words, then pypinyin's phrases (listed for their readings, so
            # it has words jieba lacks), each once.
            common = (word for word, freq in jieba.dt.FREQ.items() if freq >= _MIN_FREQ)
            for word in dict.fromkeys([*common, *PHRASES_DICT]):
                if _CJK_WORD.fullmatch(word) and word in model:
                    index.setdefault(word_reading(word), []).append(word)
            # Tuples of strings only: the garbage collector untracks them and the dict, so
            # its ~10^5 entries do not lengthen every full collection of the process.
            frozen = {key: tuple(words) for key, words in index.items()}
            self._index, self._reading, self._model = frozen, reading, model

    def best(self, text: str, keep: Sequence[str] = ()) -> tuple[float, str]:
        """The likeliest spelling of ``text`` and its score (natural log, less penalties).

        Only Chinese characters change; punctuation, Latin words and digits pass through
        (they end the LM context, except commas). ``keep`` are the request's hot words:
        spans inside one are never rewritten, and a span with its syllables may become it
        at no penalty, whatever the tones (the caller said it is likely, and Whisper's
        misses of a hot word often differ in a tone: 打模院 for 达摩院; the LM still has
        to agree).
        """
        self.load()
        frozen = _frozen(text, keep)
        hot: dict[tuple[str, ...], list[str]] = {}
        for word in keep:
            if 2 <= len(word) <= _MAX_WORD and _CJK_SPLIT.fullmatch(word):
                hot.setdefault(_toneless(self._reading(word)), []).append(word)
        start = self._state()
        self._model.BeginSentenceWrite(start)
        hyps: list[_Hyp] = [(0.0, start, "")]
        offset, open_sentence = 0, False
        for piece in _CJK_SPLIT.split(text):
            if _CJK_SPLIT.fullmatch(piece):
                hyps = self._run(piece, frozen[offset : offset + len(piece)], hot, hyps)
                open_sentence = True
            elif open_sentence and piece.strip() and not set(piece.strip()) <= _COMMAS:
                hyps = _prune([(self._end(h), start, h[2] + piece) for h in hyps])
                open_sentence = False
            else:
                hyps = [(score, state, out + piece) for score, state, out in hyps]
            offset += len(piece)
        # </s> once per sentence: a text that ends with its mark has paid it already.
        score, out = max((self._end(h) if open_sentence else h[0], h[2]) for h in hyps)
        return score, out

    # ------------------------------------------------------------------ internals

    def _state(self) -> Any:
        import kenlm

        return kenlm.State()

    def _score(self, hyp: _Hyp, word: str) -> tuple[float, Any]:
        out = self._state()
        return hyp[0] + self._model.BaseScore(hyp[1], word, out) * _LN10, out

    def _score_words(self, hyp: _Hyp, text: str) -> tuple[float, Any]:
        """``_score`` of a text the LM may not know as one word (a hot word): its longest
        known words, left to right."""
        i = 0
        while i < len(text):
            j = next((j for j in range(len(text), i + 1, -1) if text[i:j] in self._model), i + 1)
            score, state = self._score(hyp, text[i:j])
            hyp = (score, state, hyp[2])
            i = j
        return hyp[0], hyp[1]

    def _end(self, hyp: _Hyp) -> float:
        return self._score(hyp, "</s>")[0]

    def _run(
        self,
        run: str,
        frozen: Sequence[bool],
        hot: dict[tuple[str, ...], list[str]],
        starts: list[_Hyp],
    ) -> list[_Hyp]:
        """Beam search over one run of Chinese characters, continuing ``starts``."""
        model, n = self._model, len(run)
        read = self._reading(run)
        if len(read) != n:  # pypinyin kept something as one token: no swaps in this run
            read = ()
        beams: list[list[_Hyp]] = [[] for _ in range(n + 1)]
        beams[0] = starts
        for i in range(n):
            for hyp in _prune(beams[i]):
                for j in range(i + 1, min(n, i + _MAX_WORD) + 1):
                    span = run[i:j]
                    options: list[tuple[str, int]] = []  # (word, characters changed)
                    if j - i == 1 or span in model:
                        options.append((span, 0))
                    if read and not any(frozen[i:j]):
                        for word in self._index.get(read[i:j], ()) if j - i <= 4 else ():
                            if word != span:
                                changed = sum(a != b for a, b in zip(word, span, strict=True))
                                options.append((word, changed))
                        for word in hot.get(_toneless(read[i:j]), ()) if hot else ():
                            options += [(word, 0)] if word != span else []
                    for word, changed in options:
                        score, state = (
                            self._score(hyp, word)
                            if word in model
                            else self._score_words(hyp, word)
                        )
                        beams[j].append((score - self._penalty * changed, state, hyp[2] + word))
        return _prune(beams[n])


_SHARED: dict[Path, HomophoneLm] = {}
_SHARED_LOCK = threading.Lock()


def shared(lm_path: Path) -> HomophoneLm:
    """One model per LM file in the process, however many engines use it."""
    with _SHARED_LOCK:
        if lm_path not in _SHARED:
            _SHARED[lm_path] = HomophoneLm(lm_path)
        return _SHARED[lm_path]


def _prune(hyps: list[_Hyp]) -> list[_Hyp]:
    """The best ``_BEAM`` hypotheses, one per text."""
    best: dict[str, _Hyp] = {}
    for hyp in hyps:
        if hyp[2] not in best or hyp[0] > best[hyp[2]][0]:
            best[hyp[2]] = hyp
    return sorted(best.values(), key=lambda h: -h[0])[:_BEAM]


def _toneless(reading: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(syllable.rstrip("012345") for syllable in reading)


def _frozen(text: str, keep: Sequence[str]) -> list[bool]:
    """Per character of ``text``: inside one of the ``keep`` words or a spoken number."""
    mask = [False] * len(text)
    spans = [m.span() for word in filter(None, keep) for m in re.finditer(re.escape(word), text)]
    spans += [m.span() for m in _NUMBER.finditer(text)]
    for start, end in spans:
        mask[start:end] = [True] * (end - start)
    return mask
