"""Recognition input audio: the streaming ``Decoder`` interface, its errors and sample helpers.

This module owns what every input decoder shares (protocol.md §10.1): the ``Decoder``
interface that task handlers feed WebSocket binary frames into, :class:`AudioFormatError`
with the NLS status codes for bad input, the ``pcm16 ↔ float32`` helpers and 8 k ↔ 16 k
resampling. The decoders themselves live in :mod:`.input` (PCM/WAV, and
:func:`~.input.make_decoder`, which picks one for a request's ``format`` and
``sample_rate``) and :mod:`.codecs` (Ogg Opus, ``opu``, mp3, aac, amr). It must not do I/O,
know about WebSockets or tasks, or call an engine: bytes go in, mono float32 samples at
``target_rate`` come out.

Usage::

    decoder = make_decoder("opus", 16000)
    for frame in binary_frames:          # any sizes; a frame may split a page or a header
        samples = decoder.feed(frame)    # float32 mono at 16 kHz, possibly empty
    samples = decoder.finish()           # the tail held back by the resampler/parser

Every problem with the input is raised as :class:`AudioFormatError`, whose ``status`` and
``status_text`` go straight into the task's ``TaskFailed`` event. After an error the
decoder is dead: further calls raise the same error again.
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

from nls.exception import NlsError

__all__ = [
    "DECODE_ERROR",
    "INVALID_AUDIO_HEADER",
    "MAX_WAV_HEADER_BYTES",
    "SUPPORTED_FORMATS",
    "SUPPORTED_SAMPLE_RATES",
    "UNSUPPORTED_FORMAT",
    "UNSUPPORTED_SAMPLE_RATE",
    "AudioFormatError",
    "Decoder",
    "Samples",
    "float32_to_pcm16",
    "pcm16_to_float32",
    "resample",
]

logger = logging.getLogger(__name__)

Samples = npt.NDArray[np.float32]
"""Mono float32 samples in [-1, 1]."""

# NLS status codes for bad input audio (protocol.md §9).
INVALID_AUDIO_HEADER: Final = 40000009
"""Bad container header: ``Invalid wav header!``, ``Too many opus packets per page…``."""
DECODE_ERROR: Final = 40270003
"""The audio cannot be decoded with the given ``format`` (realtime ASR ``DECODE_ERROR``)."""
UNSUPPORTED_FORMAT: Final = 41010100
UNSUPPORTED_SAMPLE_RATE: Final = 41010101

SUPPORTED_SAMPLE_RATES: Final = (8000, 16000)
"""NLS accepts only these ``sample_rate`` values (protocol.md §10.1, 41010101 otherwise)."""
SUPPORTED_FORMATS: Final = ("pcm", "wav", "opus", "opu", "mp3", "aac", "amr")
"""Formats :func:`make_decoder` accepts; ``speex`` (Ogg Speex) is not decodable offline."""
MAX_WAV_HEADER_BYTES: Final = 64 * 1024
"""Beyond this many bytes without a ``data`` chunk we answer ``Too large wav header!``."""

_EMPTY: Final[Samples] = np.zeros(0, dtype=np.float32)


class AudioFormatError(NlsError):
    """The input audio does not match its declared ``format``/``sample_rate``.

    Attributes:
        status: the NLS status for TaskFailed (40000009, 40270003, 41010100, 41010101).
        status_text: the TaskFailed ``status_text``, e.g. ``Invalid wav header!``.
    """

    def __init__(self, status: int, status_text: str) -> None:
        super().__init__(status_text)
        self.status = status
        self.status_text = status_text


def pcm16_to_float32(data: bytes | bytearray | memoryview) -> Samples:
    """Convert 16-bit signed little-endian PCM to float32 in [-1, 1).

    Raises:
        ValueError: if ``data`` has an odd number of bytes.
    """
    if len(data) % 2:
        raise ValueError(f"16-bit PCM needs an even number of bytes, got {len(data)}")
    samples: Samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    return samples


def float32_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """Convert float samples in [-1, 1] to 16-bit signed little-endian PCM, clipping."""
    x = np.asarray(samples, dtype=np.float32) * np.float32(32768.0)
    return bytes(np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes())


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> Samples:
    """Resample a whole mono signal (soxr HQ); returns float32, a copy when rates match."""
    x: Samples = np.array(samples, dtype=np.float32)  # always a copy
    if from_rate == to_rate:
        return x
    out: Samples = np.asarray(soxr.resample(x, from_rate, to_rate, quality="HQ"), np.float32)
    return out


class Decoder:
    """Streaming decoder: binary frames of any size in, mono float32 at ``target_rate`` out.

    Subclasses implement :meth:`_decode` and :meth:`_flush`, returning
    ``(samples, rate)`` pieces at their native rate; this class resamples them with one
    soxr stream (so chunk borders leave no clicks), counts :attr:`duration_ms` and makes
    the decoder dead after its first error.

    Attributes:
        format: the NLS ``format`` this decoder reads.
        sample_rate: the request's declared ``sample_rate``.
        target_rate: the rate of every array returned.
    """

    def __init__(self, fmt: str, sample_rate: int, *, target_rate: int = 16000) -> None:
        self.format = fmt
        self.sample_rate = sample_rate
        self.target_rate = target_rate
        self._stream: soxr.ResampleStream | None = None
        self._stream_rate = 0
        self._consumed_s = 0.0  # seconds of decoded input from finished resampler runs
        self._samples = 0  # native samples in the current run
        self._error: AudioFormatError | None = None
        self._finished = False

    @property
    def duration_ms(self) -> int:
        """Milliseconds of input audio decoded so far (at the input's own rate)."""
        run = self._samples / self._stream_rate if self._stream_rate else 0.0
        return int((self._consumed_s + run) * 1000)

    def feed(self, data: bytes | bytearray | memoryview) -> Samples:
        """Decode one binary frame; returns the newly available samples (maybe empty).

        Incomplete trailing bytes (half a sample, part of a header, page or packet) are
        kept and completed by the next frame. Call :meth:`finish` after the last frame.

        Raises:
            AudioFormatError: the input is invalid; the task should fail with its status.
        """
        self._check_alive()
        try:
            pieces = self._decode(bytes(data))
        except AudioFormatError as exc:
            self._error = exc
            raise
        return self._emit(pieces, last=False)

    def finish(self) -> Samples:
        """Flush the parser, the codec and the resampler; the decoder is closed after this.

        Raises:
            AudioFormatError: the stream ended inside a header, page or packet.
        """
        self._check_alive()
        self._finished = True
        try:
            pieces = self._flush()
        except AudioFormatError as exc:
            self._error = exc
            raise
        return self._emit(pieces, last=True)

    def _decode(self, data: bytes) -> list[tuple[Samples, int]]:
        raise NotImplementedError

    def _flush(self) -> list[tuple[Samples, int]]:
        raise NotImplementedError

    def _fail(self, status: int, text: str) -> AudioFormatError:
        """Record and return the error that kills this decoder (the caller raises it)."""
        self._error = AudioFormatError(status, text)
        return self._error

    def _check_alive(self) -> None:
        if self._error is not None:
            raise self._error
        if self._finished:
            raise RuntimeError("Decoder.finish() was already called")

    def _emit(self, pieces: list[tuple[Samples, int]], *, last: bool) -> Samples:
        out: list[Samples] = []
        for samples, rate in pieces:
            if rate != self._stream_rate:
                # A new native rate (first piece, or a chained stream): drain the old run.
                out.append(self._drain())
                self._stream_rate = rate
                if rate != self.target_rate:
                    self._stream = soxr.ResampleStream(
                        rate, self.target_rate, 1, dtype="float32", quality="HQ"
                    )
            self._samples += len(samples)
            if self._stream is None:
                out.append(samples.astype(np.float32, copy=False))
            else:
                out.append(self._stream.resample_chunk(samples))
        if last:
            out.append(self._drain())
        out = [piece for piece in out if len(piece)]
        result: Samples = np.concatenate(out) if out else _EMPTY.copy()
        return result

    def _drain(self) -> Samples:
        tail = _EMPTY
        if self._stream is not None:
            tail = self._stream.resample_chunk(_EMPTY, last=True)
            self._stream = None
        if self._stream_rate:
            self._consumed_s += self._samples / self._stream_rate
        self._samples = 0
        return tail
