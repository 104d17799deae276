"""A word-level Chinese language model for rescoring Whisper's n-best lists.

Whisper base confuses homophones in Mandarin (停滞→停制, 语音识别→与您识别, 达摩院→打模院):
the acoustics cannot tell them apart and its own text prior is weak. A unigram word model
over jieba's bundled dictionary (~350k words with corpus frequencies) prefers hypotheses
made of real, frequent words. The log-probability of a sentence is that of its most
probable segmentation (jieba's own DAG dynamic programme), so 停滞 (one word) beats 停 + 制
(two words, each paying the unigram cost).

The model only sees Chinese characters: punctuation, spaces, Latin words and digits are
left to the acoustic model, so hypotheses that differ only in commas score alike.
Lazy: jieba and its dictionary load on first use (~1 s; the prefix dictionary is shared
with the TTS front end, which uses jieba's default tokenizer too).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from typing import Any

from nls_gateway.exception import EngineUnavailableError

__all__ = ["WordLm", "default_lm"]

_INSTALL_HINT = "pip install 'opennls[gateway]'"
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


class WordLm:
    """Unigram word language model on jieba's dictionary; thread-safe after loading."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._log_total = 0.0

    def load(self) -> None:
        """Load jieba's prefix dictionary now instead of on first use.

        Raises:
            EngineUnavailableError: jieba is not installed.
        """
        with self._lock:
            if self._tokenizer is not None:
                return
            try:
                import jieba
            except ImportError as exc:  # pragma: no cover - exercised only without the extra
                raise EngineUnavailableError(f"jieba is not installed: {_INSTALL_HINT}") from exc
            # jieba logs "Building prefix dict…" at INFO on first use; keep the log clean.
            jieba.setLogLevel(logging.WARNING)
            jieba.dt.check_initialized()
            self._log_total = math.log(jieba.dt.total)
            self._tokenizer = jieba.dt

    def logprob(self, text: str) -> float:
        """Natural-log probability of the Chinese characters in ``text``.

        Each run of Chinese characters is scored by its most probable segmentation into
        dictionary words; a character missing from the dictionary costs as much as a word
        seen once. Text without Chinese characters scores 0.
        """
        self.load()
        return sum(self._run_logprob(run) for run in _CJK_RUN.findall(text))

    def best(self, text: str, keep: Sequence[str] = ()) -> tuple[float, str]:
        """``(logprob(text), text)``: the n-best scorer's interface, which the homophone
        repair (:mod:`.homophones`) fills with a rewritten text; this model rewrites none."""
        return self.logprob(text), text

    def _run_logprob(self, run: str) -> float:
        freq = self._tokenizer.FREQ
        dag = self._tokenizer.get_DAG(run)
        n = len(run)
        best = [0.0] * (n + 1)
        for i in range(n - 1, -1, -1):
            best[i] = max(
                math.log(freq.get(run[i : j + 1]) or 1) - self._log_total + best[j + 1]
                for j in dag[i]
            )
        return best[0]


_DEFAULT: WordLm | None = None
_DEFAULT_LOCK = threading.Lock()


def default_lm() -> WordLm:
    """The process-wide model (one dictionary in memory however many engines use it)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = WordLm()
        return _DEFAULT
