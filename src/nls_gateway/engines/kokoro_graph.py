"""Kokoro's ONNX graph cut in two, so the vocoder renders only the frames that are kept.

The exported graph turns tokens into audio in one call and outputs nothing else. Its cost
is almost all in the decoder (the iSTFTNet vocoder: 7.5 ms per 25 ms frame on 2 cores, 95 %
of a call), and a third to a half of the frames it renders are silence that
:func:`~nls_gateway.engines.kokoro._trim` throws away: ~18 frames of leading pad and 30–40
of final pause in every call (今天天气不错: 109 frames for 55 frames of speech).

So the graph is cut where the text side hands over to the decoder (ONNX Runtime runs each
half as its own session; nothing is retrained or requantised):

* **text half** (ALBERT, duration and prosody predictors; 30–50 ms a call): tokens, style,
  speed → the aligned phoneme features (512 × frames), F0 and energy curves (2 × frames),
  and each token's duration in frames.
* **decoder**: a window of those features (and the style) → 600 samples per frame.

The predicted energy curve says where the render will be audible (it tracks the rendered
envelope frame by frame: about −9 in silence, above −2 in speech), so the decoder is given
only those frames and a little context on each side (:data:`LEAD_FRAMES`,
:data:`TAIL_FRAMES`): the F0 and energy curves were predicted over the whole utterance,
only the rendering is cropped. Measured (BENCHMARKS.md, issue 15): first audio −30 %, RTF
0.48–0.52 → 0.37–0.40 zh, and the round trip through the ASR no worse. The durations time
the subtitles.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nls_gateway.engines.base import Float32Array
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "HOP",
    "LEAD_FRAMES",
    "MIN_FRAMES",
    "SILENT_ENERGY",
    "TAIL_FRAMES",
    "Features",
    "SplitKokoro",
    "load",
]

HOP = 600
"""Samples per decoder frame (25 ms at 24 kHz); the F0 and energy curves have two per frame."""
LEAD_FRAMES = 4
"""Frames rendered before the first audible one (100 ms): the convolutions need context to
start a soft onset as the full render does (from 3 frames before the energy rises, the
onset's spectrum matches; from the first audible frame it does not)."""
TAIL_FRAMES = 4
"""Frames rendered after the last audible one (100 ms), for the decoder's context; the pause
after a chunk is made of digital silence (``kokoro._trim``)."""
MIN_FRAMES = 60
"""The shortest window rendered (1.5 s; widened around the speech up to the whole call). The
decoder's instance norms take their statistics over the window, so a short window of
almost only speech renders quieter and blurred: 那个 alone came out 4 dB softer and
unrecognised, and "uh" was heard as "Earth"; at 60 frames both render as in the full call."""
SILENT_ENERGY = -7.0
"""The predicted log energy below which a frame renders as silence: about −9 in the pads
and the final pause, above −2 wherever the render is louder than −48 dBFS."""

# Tensor names in kokoro-v1.0.int8.onnx (ONNX Runtime-optimised export): the decoder's three
# inputs from the text side, and the clipped (≥ 1) per-token durations.
_ASR = "/encoder/MatMul_1_output_0"
_F0 = "/encoder/Reshape_output_0"
_ENERGY = "/encoder/Reshape_1_output_0"
_DURATIONS = "/encoder/Clip_output_0"
_INSTALL_HINT = "pip install 'opennls[gateway]'"


@dataclass(frozen=True)
class Features:
    """The text half's output for one call: what the decoder renders, and when."""

    asr: Float32Array  # (1, 512, frames)
    f0: Float32Array  # (1, 2 * frames)
    energy: Float32Array  # (1, 2 * frames)
    durations: tuple[int, ...]  # frames per token, the two pads included

    @property
    def frames(self) -> int:
        return int(self.asr.shape[2])

    def speech_window(self) -> tuple[int, int]:
        """The frames worth rendering: where the predicted energy says there is sound,
        with a little context on each side (the whole call if it is silent throughout)."""
        per_frame = self.energy.reshape(self.frames, 2).max(axis=1)
        sounding = np.flatnonzero(per_frame > SILENT_ENERGY)
        if sounding.size == 0:
            return 0, self.frames
        begin = max(0, int(sounding[0]) - LEAD_FRAMES)
        end = min(self.frames, int(sounding[-1]) + 1 + TAIL_FRAMES)
        short = MIN_FRAMES - (end - begin)
        if short > 0:
            begin = max(0, begin - short // 2)
            end = min(self.frames, begin + MIN_FRAMES)
            begin = max(0, end - MIN_FRAMES)
        return begin, end


class SplitKokoro:
    """The two ONNX Runtime sessions; thread-safe (``InferenceSession.run`` is)."""

    def __init__(self, text_half: Any, decoder: Any) -> None:
        self._text = text_half
        self._decoder = decoder

    def features(self, tokens: np.ndarray, style: Float32Array, speed: float) -> Features:
        asr, f0, energy, durations = self._text.run(
            [_ASR, _F0, _ENERGY, _DURATIONS],
            {"tokens": tokens, "style": style, "speed": np.array([speed], dtype=np.float32)},
        )
        return Features(asr, f0, energy, tuple(int(d) for d in np.asarray(durations).reshape(-1)))

    def render(self, features: Features, style: Float32Array, begin: int, end: int) -> Float32Array:
        """Audio of frames ``[begin, end)``: ``(end - begin) * HOP`` samples."""
        audio = self._decoder.run(
            None,
            {
                _ASR: np.ascontiguousarray(features.asr[:, :, begin:end]),
                _F0: np.ascontiguousarray(features.f0[:, 2 * begin : 2 * end]),
                _ENERGY: np.ascontiguousarray(features.energy[:, 2 * begin : 2 * end]),
                "style": style,
            },
        )[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def load(model_path: Path, options: Any) -> SplitKokoro:
    """Cut the model file in two (~0.3 s) and open a session on each half.

    Raises:
        EngineUnavailableError: the ``onnx`` package is missing.
    """
    try:
        import onnx
        import onnx.utils
        import onnxruntime as ort
    except ImportError as exc:
        raise EngineUnavailableError(f"Kokoro TTS needs {exc.name}: {_INSTALL_HINT}") from exc
    model = onnx.load(str(model_path))
    extractor = onnx.utils.Extractor(model)
    inputs = [value.name for value in model.graph.input]  # tokens, style, speed
    halves = {
        "text": extractor.extract_model(inputs, [_ASR, _F0, _ENERGY, _DURATIONS]),
        "decoder": extractor.extract_model([_ASR, _F0, _ENERGY, "style"], ["audio"]),
    }
    del model, extractor
    sessions = {}
    # Each half goes through a file: a session made from bytes keeps a copy of them
    # (+100 MiB resident); one made from a file holds only its own weights, as before.
    with tempfile.TemporaryDirectory(prefix="nls-kokoro-") as tmp:
        for name, half in halves.items():
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(half, str(path))
            sessions[name] = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
    return SplitKokoro(sessions["text"], sessions["decoder"])
