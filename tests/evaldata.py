"""Shared access to the real speech in ../shared/eval (NLS_EVAL_DIR overrides the path)."""

from __future__ import annotations

import csv
import os
import re
import unicodedata
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nls_gateway.engines.text.asr_zh import edit_distance

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""
EVAL_DIR = Path(os.environ.get("NLS_EVAL_DIR") or ROOT / ".." / "shared" / "eval")


def load_wav(name: str) -> npt.NDArray[np.float32]:
    """A 16 kHz mono 16-bit WAV from the eval set as float32."""
    with wave.open(str(EVAL_DIR / name)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def reference(name: str) -> str:
    """The manifest's reference text for one file."""
    with (EVAL_DIR / "manifest.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["file"] == name:
                return row["reference_text"]
    raise KeyError(name)


def segments(name: str) -> list[tuple[float, float]]:
    """(start_s, end_s) of each utterance in a concatenated eval file."""
    path = EVAL_DIR / name.replace(".wav", ".segments.tsv")
    with path.open(encoding="utf-8") as f:
        return [(float(r["start_s"]), float(r["end_s"])) for r in csv.DictReader(f, delimiter="\t")]


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, ignoring punctuation, spaces, case and width."""
    ref = chars(reference)
    return edit_distance(ref, chars(hypothesis)) / max(1, len(ref))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate on lower-cased words without punctuation."""
    ref = re.findall(r"[a-z0-9']+", reference.lower())
    return edit_distance(ref, re.findall(r"[a-z0-9']+", hypothesis.lower())) / max(1, len(ref))


def chars(text: str) -> list[str]:
    """The characters :func:`cer` scores: letters and digits, NFKC, lower case."""
    return [c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum()]
