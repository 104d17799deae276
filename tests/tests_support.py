"""Helpers shared by end-to-end tests: the eval data and error rates."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def eval_dir() -> Path:
    """``$NLS_EVAL_DIR`` or ``../shared/eval`` beside the repository."""
    return Path(os.environ.get("NLS_EVAL_DIR") or ROOT.parent / "shared" / "eval")


def _chars(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    return [c for c in text if c.isalnum()]


def _distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, ignoring punctuation, spaces and width."""
    ref = _chars(reference)
    return _distance(ref, _chars(hypothesis)) / max(1, len(ref))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate on lower-cased words without punctuation."""
    ref = re.findall(r"[a-z0-9']+", reference.lower())
    return _distance(ref, re.findall(r"[a-z0-9']+", hypothesis.lower())) / max(1, len(ref))
