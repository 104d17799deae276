"""Audio fixtures made in code: real speech from ../shared/eval encoded with PyAV.

Each test encodes the few seconds it needs (WAV by hand, Ogg Opus / opu / mp3 / aac with
PyAV) and compares what the decoders return with the original samples via
:func:`aligned_similarity`. AMR is the exception: PyAV 18 has no AMR encoder, so that clip
is stored in ``tests/data`` (its README says how it was made).
"""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import Iterator

import av
import numpy as np
import numpy.typing as npt

from evaldata import EVAL_DIR

CLIP = "zh_dev_01_aishell1_BAC009S0724W0121.wav"

Int16 = npt.NDArray[np.int16]


def load_clip(seconds: float = 3.0, name: str = CLIP) -> Int16:
    """The first ``seconds`` of an eval clip as 16 kHz mono int16."""
    with wave.open(str(EVAL_DIR / name)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(int(seconds * 16000)), dtype="<i2").copy()


def wav_bytes(
    samples: Int16,
    rate: int = 16000,
    *,
    channels: int = 1,
    extra: bytes = b"",
    data_size: int | None = None,
) -> bytes:
    """A RIFF/WAVE file: ``fmt `` chunk, then ``extra`` chunks, then ``data``.

    ``samples`` is interleaved int16; ``data_size`` overrides the data chunk's size.
    """
    data = samples.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + extra
    size = len(data) if data_size is None else data_size
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def chunk(tag: bytes, payload: bytes) -> bytes:
    """One RIFF chunk, padded to an even size."""
    return tag + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def _frames(samples: Int16, rate: int, size: int) -> Iterator[av.AudioFrame]:
    """Frames of ``size`` samples from mono ``(n,)`` or planar stereo ``(2, n)`` int16."""
    planes = samples if samples.ndim == 2 else samples[None, :]
    layout, fmt = ("stereo", "s16p") if len(planes) == 2 else ("mono", "s16")
    for i in range(0, planes.shape[1], size):
        piece = planes[:, i : i + size]
        if piece.shape[1] < size:  # encoders with a fixed frame size want whole frames
            piece = np.pad(piece, ((0, 0), (0, size - piece.shape[1])))
        frame = av.AudioFrame.from_ndarray(piece.copy(), format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = i
        yield frame


def container_bytes(samples: Int16, rate: int, fmt: str, codec: str, frame_size: int) -> bytes:
    """Encode int16 (mono, or planar stereo) into ``ogg``, ``mp3`` or ``adts``."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        layout = "stereo" if samples.ndim == 2 else "mono"
        stream = out.add_stream(codec, rate=rate, layout=layout)
        for frame in _frames(samples, rate, stream.codec_context.frame_size or frame_size):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def ogg_opus_bytes(samples: Int16, rate: int = 16000) -> bytes:
    """Ogg Opus, as the C++ SDK's ``opus`` format sends it."""
    return container_bytes(samples, rate, "ogg", "libopus", 960)


def opus_packets(samples: Int16, rate: int = 16000) -> list[bytes]:
    """Raw 20 ms Opus packets at bitrate 27800, like the C++ SDK's ``opu`` encoder."""
    enc = av.CodecContext.create("libopus", "w")
    assert isinstance(enc, av.AudioCodecContext)
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = rate, "mono", "s16", 27800
    enc.options = {"frame_duration": "20"}
    enc.open()
    packets = []
    for frame in _frames(samples, rate, rate // 50):
        packets += [bytes(p) for p in enc.encode(frame)]
    packets += [bytes(p) for p in enc.encode(None)]
    return packets


def opu_bytes(samples: Int16, rate: int = 16000) -> bytes:
    """NLS ``opu``: each packet prefixed by one length byte."""
    return b"".join(bytes([len(p)]) + p for p in opus_packets(samples, rate))


def split_randomly(data: bytes, seed: int, *, max_size: int = 700) -> list[bytes]:
    """Cut ``data`` into frames of random sizes 1..max_size (headers get split too)."""
    rng = np.random.default_rng(seed)
    out, pos = [], 0
    while pos < len(data):
        size = int(rng.integers(1, max_size + 1))
        out.append(data[pos : pos + size])
        pos += size
    return out


def aligned_similarity(
    reference: npt.NDArray[np.float32], decoded: npt.NDArray[np.float32], max_lag: int = 400
) -> tuple[float, int]:
    """Best normalised correlation of ``decoded`` against ``reference`` and its lag.

    A positive lag means ``decoded`` is late (codec look-ahead).
    """
    n = min(len(reference), len(decoded)) - max_lag
    ref = reference[max_lag : max_lag + n - max_lag]
    best, best_lag = -1.0, 0
    for lag in range(-max_lag, max_lag + 1):
        seg = decoded[max_lag + lag : max_lag + lag + len(ref)]
        corr = float(np.dot(ref, seg) / (np.linalg.norm(ref) * np.linalg.norm(seg) + 1e-12))
        if corr > best:
            best, best_lag = corr, lag
    return best, best_lag
