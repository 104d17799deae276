"""Kokoro's ONNX graph cut in two, and its decoder made to render any window of frames.

The exported graph turns tokens into audio in one call and outputs nothing else. Its cost
is almost all in the decoder (the iSTFTNet vocoder: 4–7.5 ms per 25 ms frame on 2 cores, 95 %
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
:data:`TAIL_FRAMES`). Two things in the decoder depend on where a window starts and ends,
and both are made inputs, so that windows rendered one after another join up as one render:

* its **54 instance norms** take their mean and variance over the window: a short window
  of almost only speech renders quieter and blurred (那个 alone came out 4 dB softer and
  unrecognised). The statistics are measured once per voice and style row over a
  calibration sentence (:meth:`SplitKokoro.calibrate`) and given to every window
  (:class:`Norms`); the round trip through the ASR is as good as with per-call statistics
  (BENCHMARKS.md, issue 15). They do not fit the end pad (its frames blow up), which is
  never rendered.
* the **harmonic source** sums its phase from the window's first frame; the phase the
  whole call would have reached there is given instead (:func:`phase_offset`).

What is left differs between windows only by the activations' dynamic int8 quantisation
(each tensor's range), which a short cross-fade hides.
"""

from __future__ import annotations

import ctypes
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nls_gateway.engines import signed_int8
from nls_gateway.engines.base import Float32Array
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "HOP",
    "LEAD_FRAMES",
    "SILENT_ENERGY",
    "TAIL_FRAMES",
    "Features",
    "Norms",
    "SplitKokoro",
    "load",
    "phase_offset",
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
SILENT_ENERGY = -7.0
"""The predicted log energy below which a frame renders as silence: about −9 in the pads
and the final pause, above −2 wherever the render is louder than −48 dBFS."""

# Tensor names in kokoro-v1.0.int8.onnx (ONNX Runtime-optimised export): the decoder's three
# inputs from the text side, the clipped (≥ 1) per-token durations, and the harmonic
# source's running phase (SineGen: cumsum of frac(f0 · h / 24000) at two points per frame,
# then × 300 samples, × 2π, upsampled and sin()).
_ASR = "/encoder/MatMul_1_output_0"
_F0 = "/encoder/Reshape_output_0"
_ENERGY = "/encoder/Reshape_1_output_0"
_DURATIONS = "/encoder/Clip_output_0"
_PHASE_SUM = "/decoder/decoder/generator/m_source/l_sin_gen/CumSum_output_0"
_PHASE_INPUT = "phase_offset"
_DECODER_INPUTS = [_ASR, _F0, _ENERGY, "style"]
_HARMONICS = 9
"""The source's sines: the fundamental and 8 overtones."""
_F0_STEP = HOP // 2
"""Samples per F0 point."""
_SAMPLE_RATE = 24000
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

    def frame_energy(self) -> Float32Array:
        """The predicted log energy of each frame (the louder of its two points)."""
        energy: Float32Array = self.energy.reshape(self.frames, 2).max(axis=1)
        return energy

    def speech_window(self) -> tuple[int, int]:
        """The frames worth rendering: where the predicted energy says there is sound,
        with a little context on each side (the whole call if it is silent throughout)."""
        sounding = np.flatnonzero(self.frame_energy() > SILENT_ENERGY)
        if sounding.size == 0:
            return 0, self.frames
        begin = max(0, int(sounding[0]) - LEAD_FRAMES)
        # Never into the end pad: with fixed norm statistics its frames blow up (+90 dB).
        end = min(self.frames - self.durations[-1], int(sounding[-1]) + 1 + TAIL_FRAMES)
        return begin, max(begin + 1, end)


Norms = tuple[Float32Array, ...]
"""One voice's instance-norm statistics, in the decoder's order: a mean and a variance
(1, channels, 1) for each of its 54 norms."""


def phase_offset(features: Features, begin: int) -> Float32Array:
    """The harmonic source's running phase sum at frame ``begin`` of the whole call, in the
    graph's units (cycles / 300, reduced modulo one cycle), shape (1, 1, 9)."""
    f0 = features.f0.reshape(-1)[: 2 * begin].astype(np.float32)
    harmonics = np.arange(1, _HARMONICS + 1, dtype=np.float32)
    # As the graph computes it, in float32: frac(f0 · h / 24000) per F0 point.
    step = f0[:, np.newaxis] * harmonics / np.float32(_SAMPLE_RATE)
    step -= np.floor(step)
    cycles = (step.astype(np.float64).sum(axis=0) * _F0_STEP) % 1.0
    offset: Float32Array = (cycles / _F0_STEP).astype(np.float32).reshape(1, 1, _HARMONICS)
    return offset


class SplitKokoro:
    """The ONNX Runtime sessions; thread-safe (``InferenceSession.run`` is).

    ``decoder`` takes the norm statistics and the phase offset as inputs; the meter is the
    unchanged decoder, whose statistics it also outputs (for :meth:`calibrate`). It is
    opened by ``open_meter`` when first needed: with every voice's statistics in the model
    cache it never is (~130 MiB resident saved).
    """

    def __init__(
        self,
        text_half: Any,
        decoder: Any,
        open_meter: Callable[[], Any],
        norm_names: Sequence[str],
        *,
        signed_products: bool = False,
    ):
        self._text = text_half
        self._decoder = decoder
        self._open_meter = open_meter
        self._meter_session: Any = None
        self._meter_lock = threading.Lock()
        self._norm_names = tuple(norm_names)
        self.signed_products = signed_products
        """Whether the convolutions run as u8 × s8 products (:mod:`.signed_int8`)."""

    @property
    def _meter(self) -> Any:
        with self._meter_lock:
            if self._meter_session is None:
                self._meter_session = self._open_meter()
            return self._meter_session

    @property
    def norm_count(self) -> int:
        """How many arrays a :data:`Norms` holds."""
        return len(self._norm_names)

    def features(self, tokens: np.ndarray, style: Float32Array, speed: float) -> Features:
        asr, f0, energy, durations = self._text.run(
            [_ASR, _F0, _ENERGY, _DURATIONS],
            {"tokens": tokens, "style": style, "speed": np.array([speed], dtype=np.float32)},
        )
        return Features(asr, f0, energy, tuple(int(d) for d in np.asarray(durations).reshape(-1)))

    def calibrate(self, features: Features, style: Float32Array) -> Norms:
        """A voice's norm statistics for one style row: those of the unchanged decoder over
        the speech window of a calibration call (``features``, rendered with ``style``)."""
        begin, end = features.speech_window()
        outputs = self._meter.run(self._norm_names, _window(features, style, begin, end))
        return tuple(np.asarray(o, dtype=np.float32) for o in outputs)

    def render(
        self, features: Features, style: Float32Array, norms: Norms, begin: int, end: int
    ) -> Float32Array:
        """Audio of frames ``[begin, end)``: ``(end - begin) * HOP`` samples, rendered as
        that part of the whole call (the frames next to a cut still need context)."""
        feed = _window(features, style, begin, end)
        feed.update(zip(self._norm_names, norms, strict=True))
        feed[_PHASE_INPUT] = phase_offset(features, begin)
        audio = self._decoder.run(None, feed)[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)

    def reference(
        self, features: Features, style: Float32Array, begin: int, end: int
    ) -> Float32Array:
        """Frames ``[begin, end)`` as the unchanged decoder renders them alone (its norms
        over the window, its source's phase from the window's start)."""
        audio = self._meter.run(["audio"], _window(features, style, begin, end))[0]
        return np.asarray(audio, dtype=np.float32).reshape(-1)


def _window(features: Features, style: Float32Array, begin: int, end: int) -> dict[str, Any]:
    return {
        _ASR: np.ascontiguousarray(features.asr[:, :, begin:end]),
        _F0: np.ascontiguousarray(features.f0[:, 2 * begin : 2 * end]),
        _ENERGY: np.ascontiguousarray(features.energy[:, 2 * begin : 2 * end]),
        "style": style,
    }


def load(model_path: Path, options: Any) -> SplitKokoro:
    """Cut the model file in two (~0.3 s), make the decoder's two forms, open the sessions
    (the meter's when first needed, from the model file again).

    Raises:
        EngineUnavailableError: the ``onnx`` package is missing.
    """
    try:
        import onnx
        import onnx.utils
    except ImportError as exc:
        raise EngineUnavailableError(f"Kokoro TTS needs {exc.name}: {_INSTALL_HINT}") from exc
    model = onnx.load(str(model_path))
    extractor = onnx.utils.Extractor(model)
    inputs = [value.name for value in model.graph.input]  # tokens, style, speed
    text_half = extractor.extract_model(inputs, [_ASR, _F0, _ENERGY, _DURATIONS])
    meter = extractor.extract_model(_DECODER_INPUTS, ["audio"])
    del model, extractor
    decoder, norm_names = _with_fixed_statistics(meter, onnx)
    del meter
    # The convolutions as u8 × s8 products where this CPU computes those exactly (the same
    # sums), and the decoder's activations time-major between them (the same audio): the
    # decoder 7.4 → 3.8 ms per frame on the 2-core Xeon (BENCHMARKS.md, issue 15).
    signed = signed_int8.exact_on_this_cpu()
    if signed:
        signed_int8.with_signed_convolutions(text_half)
        signed_int8.with_signed_convolutions(decoder)
        signed_int8.without_layout_round_trips(decoder)

    def open_meter() -> Any:
        model = onnx.load(str(model_path))
        meter = onnx.utils.Extractor(model).extract_model(_DECODER_INPUTS, ["audio"])
        del model
        meter.graph.output.extend(
            onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in norm_names
        )
        if signed:  # not time-major: that moves its statistics (without_layout_round_trips)
            signed_int8.with_signed_convolutions(meter)
        # It runs only to calibrate (a few times per voice): without an arena it returns
        # its activations' memory after each run (~+100 MiB kept otherwise).
        session = _session(meter, options, arena=False)
        del meter
        _return_freed_heap()
        return session

    text_session, decoder_session = _session(text_half, options), _session(decoder, options)
    del text_half, decoder
    _return_freed_heap()
    return SplitKokoro(
        text_session,
        decoder_session,
        open_meter,
        norm_names,
        signed_products=signed,
    )


def _return_freed_heap() -> None:
    """Give the heap the graph surgery freed back to the OS: glibc keeps it for reuse, and
    it is ~100 MiB resident after a load (303 → 198 MiB). A no-op without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


def _session(model: Any, options: Any, *, arena: bool = True) -> Any:
    """An ONNX Runtime session of ``model``, opened from a file: one made from bytes keeps
    a copy of them (+100 MiB resident); one made from a file holds only its weights."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="nls-kokoro-") as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, str(path))
        options.enable_cpu_mem_arena = arena
        try:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        finally:
            options.enable_cpu_mem_arena = True


def _with_fixed_statistics(decoder: Any, onnx: Any) -> tuple[Any, list[str]]:
    """A copy of ``decoder`` whose instance-norm statistics and source phase are inputs.

    Each norm is exported as ReduceMean (the mean over time), Sub, Mul, ReduceMean (the
    variance), …: the ReduceMean nodes are dropped and their outputs become inputs, in
    (mean, variance) pairs. The phase sum gets the offset added after its CumSum.

    Fixed statistics also make most of each norm's work idle or constant, so the copy is
    trimmed (:func:`_folded_norms`, :func:`_squares_as_products`,
    :func:`_without_dead_nodes`): 7.6 → 7.25 ms per frame, and after a paragraph
    931 → 592 MiB resident (smaller activations in the arena).
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(decoder)
    producer = {out: node for node in fixed.graph.node for out in node.output}
    variance_of: dict[str, str] = {}  # mean → variance, for each norm
    means: list[str] = []
    for node in fixed.graph.node:
        if node.op_type != "ReduceMean":
            continue
        square = producer.get(node.input[0])
        if square is not None and square.op_type == "Mul" and square.input[0] == square.input[1]:
            variance_of[producer[square.input[0]].input[1]] = node.output[0]  # of (x - mean)²
        else:
            means.append(node.output[0])
    if sorted(means) != sorted(variance_of):
        raise EngineUnavailableError("Kokoro decoder: unexpected instance-norm graph")
    names = [name for mean in means for name in (mean, variance_of[mean])]
    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    kept: list[Any] = []
    for node in fixed.graph.node:
        if node.op_type == "ReduceMean":
            continue
        kept.append(node)
        if node.op_type == "CumSum" and node.output[0] == _PHASE_SUM:
            node.output[0] = _PHASE_SUM + "_local"
            kept.append(helper.make_node("Add", [node.output[0], _PHASE_INPUT], [_PHASE_SUM]))
    kept = _without_dead_nodes(_squares_as_products(_folded_norms(kept, means), fixed), fixed)
    del fixed.graph.node[:]
    fixed.graph.node.extend(kept)
    # Each (1, channels, 1): declared, so shape inference knows them as per-channel factors.
    fixed.graph.input.extend(helper.make_tensor_value_info(n, float32, [1, None, 1]) for n in names)
    fixed.graph.input.append(
        helper.make_tensor_value_info(_PHASE_INPUT, float32, [1, 1, _HARMONICS])
    )
    return fixed, names


def _folded_norms(nodes: list[Any], means: Sequence[str]) -> list[Any]:
    """Each adaptive norm ``(x - mean) / sqrt(var + eps) * g + beta`` as ``x * a + b``.

    With its statistics fixed, every factor but ``x`` is one value per channel, so
    ``a = g / sqrt(var + eps)`` and ``b = beta - mean * a`` cost nothing, and two of the
    four passes over the activations (Sub, Div) go.

    Where ``x`` is a convolution's output (int32 sum plus int32 bias, cast, times the
    scale), the bias and the scale are folded into ``a`` and ``b`` too: two passes more.
    """
    from onnx import TensorProto, helper

    consumers: dict[str, list[Any]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producer = {out: node for node in nodes for out in node.output}

    def made_by(name: str, op_type: str) -> Any | None:
        node = producer.get(name)
        alone = len(consumers.get(name, [])) == 1
        return node if alone and node is not None and node.op_type == op_type else None

    def dequantised(x: str) -> tuple[list[Any], str, str, str] | None:
        """The nodes between ConvInteger and ``x`` (read only by the norm), the int32 sum,
        its bias and its scale."""
        mul = made_by(x, "Mul")
        cast = made_by(mul.input[0], "Cast") if mul is not None else None
        add = made_by(cast.input[0], "Add") if cast is not None else None
        if mul is None or cast is None or add is None:
            return None
        if getattr(producer.get(add.input[0]), "op_type", None) != "ConvInteger":
            return None
        return [mul, cast, add], add.input[0], add.input[1], mul.input[1]

    def users(name: str, op_type: str) -> list[Any]:
        # Not the square of x - mean, which fed the dropped variance.
        found = [n for n in consumers.get(name, []) if list(n.input) != [name, name]]
        return found if all(n.op_type == op_type for n in found) else []

    def other(node: Any, name: str) -> str:
        return str(node.input[1] if node.input[0] == name else node.input[0])

    replaced: dict[int, list[Any]] = {}  # id of a norm's last node → its folded form
    gone: set[int] = set()
    for mean in means:
        # x - mean, then / std; ONNX Runtime shares that between the resblocks that
        # normalise the same input, each with its own g and beta.
        subs = users(mean, "Sub")
        divs = users(subs[0].output[0], "Div") if len(subs) == 1 else []
        if len(divs) != 1 or divs[0].input[0] != subs[0].output[0]:
            raise EngineUnavailableError("Kokoro decoder: unexpected adaptive-norm graph")
        (sub,), (div,) = subs, divs
        x, std = sub.input[0], div.input[1]
        scales = users(div.output[0], "Mul")
        conv = dequantised(x) if len(scales) == 1 else None
        for scale in scales:
            shifts = users(scale.output[0], "Add")
            if len(shifts) != 1:
                raise EngineUnavailableError("Kokoro decoder: unexpected adaptive-norm graph")
            shift, out = shifts[0], shifts[0].output[0]
            g, beta = other(scale, div.output[0]), other(shift, scale.output[0])
            a, b = out + "_a", out + "_b"
            source, times, plus = x, a, b  # the norm is source * times + plus
            norm = [
                helper.make_node("Div", [g, std], [a]),
                helper.make_node("Mul", [mean, a], [out + "_ma"]),
                helper.make_node("Sub", [beta, out + "_ma"], [b]),
            ]
            if conv is not None:
                # x * a + b = sum * (scale * a) + (bias * scale * a + b)
                chain, total, bias, conv_scale = conv
                norm += [
                    helper.make_node("Mul", [conv_scale, a], [out + "_sa"]),
                    helper.make_node("Cast", [bias], [out + "_bias"], to=TensorProto.FLOAT),
                    helper.make_node("Mul", [out + "_bias", out + "_sa"], [out + "_bsa"]),
                    helper.make_node("Add", [out + "_bsa", b], [out + "_bsab"]),
                    helper.make_node("Cast", [total], [out + "_sum"], to=TensorProto.FLOAT),
                ]
                source, times, plus = out + "_sum", out + "_sa", out + "_bsab"
                gone.update(id(node) for node in chain)
            norm += [
                helper.make_node("Mul", [source, times], [out + "_xa"]),
                helper.make_node("Add", [out + "_xa", plus], [out]),
            ]
            replaced[id(shift)] = norm
            gone.add(id(scale))
        gone.update({id(sub), id(div)})
    folded: list[Any] = []
    for node in nodes:
        if id(node) not in gone:
            folded.extend(replaced.get(id(node), [node]))
    return folded


def _squares_as_products(nodes: list[Any], model: Any) -> list[Any]:
    """``Pow(x, 2)`` (the snake activations' sin²) as ``x * x``: ONNX Runtime multiplies on
    both cores, and its Pow is ~25 % slower."""
    from onnx import helper, numpy_helper

    scalars = (i for i in model.graph.initializer if int(np.prod(i.dims)) == 1)
    two = {i.name for i in scalars if numpy_helper.to_array(i).item() == 2.0}
    return [
        helper.make_node("Mul", [n.input[0], n.input[0]], list(n.output), name=n.name)
        if n.op_type == "Pow" and n.input[1] in two
        else n
        for n in nodes
    ]


def _without_dead_nodes(nodes: list[Any], model: Any) -> list[Any]:
    """The nodes something still reads (ONNX Runtime runs an unread node all the same: the
    norms' squares of ``x - mean`` cost a pass each after their means were dropped)."""
    needed = {output.name for output in model.graph.output}
    alive: list[Any] = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            alive.append(node)
            needed.update(node.input)
    return alive[::-1]
