"""Recognition input audio: sample conversion, resampling and streaming decoders.

This module owns the gateway's view of NLS recognition input (protocol.md §10.1): the
``pcm16 ↔ float32`` helpers, 8 k ↔ 16 k resampling, the ``Decoder`` interface that task
handlers feed WebSocket binary frames into, raw PCM with RIFF/WAV header detection, and
:func:`make_decoder`, which picks a decoder for the request's ``format`` and
``sample_rate``. The compressed formats (Ogg Opus, ``opu``, mp3, aac, amr) live in
:mod:`nls_gateway.codecs`. It must not do I/O, know about WebSockets or tasks, or call an
engine: bytes go in, mono float32 samples at ``target_rate`` come out.

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
import struct
from typing import Any, Final

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
    "PcmDecoder",
    "Samples",
    "float32_to_pcm16",
    "make_decoder",
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


class PcmDecoder(Decoder):
    """Raw 16-bit mono PCM (``pcm``) or PCM in a RIFF/WAV container (``wav``).

    With ``pcm``, a stream that begins with ``RIFF…WAVE`` is treated as WAV: users of
    the official SDKs often send a ``.wav`` file's bytes as ``pcm``, and playing its
    44-byte header as samples would put a click at the start. With ``wav``, the header
    is required and parsed (protocol.md §10.1: wrong or oversized header → 40000009).

    WAV rules: integer PCM of 8/16/24/32 bits or 32-bit float (also inside
    WAVE_FORMAT_EXTENSIBLE); any channel count, downmixed to mono by averaging (the
    service is mono-only, but averaging loses nothing for a mono recording stored as
    stereo); the header's rate must be 8000 or 16000 (41010101 otherwise) and wins over
    the declared ``sample_rate`` when they differ, since it describes the bytes; chunks
    other than ``fmt``/``data`` (``LIST``, ``fact``…) are skipped; a ``data`` size of 0
    or 0xFFFFFFFF (streaming writers) means "until the end".
    """

    def __init__(
        self, fmt: str, sample_rate: int, *, target_rate: int = 16000, header: bool = False
    ) -> None:
        super().__init__(fmt, sample_rate, target_rate=target_rate)
        self._need_header = header
        self._sniffing = True  # until we know whether a RIFF header is there
        self._buf = b""
        self._rate = sample_rate
        self._channels = 1
        self._dtype: np.dtype[Any] = np.dtype("<i2")
        self._width = 2  # bytes per sample
        self._remaining: int | None = None  # data bytes left, None = unbounded

    def _decode(self, data: bytes) -> list[tuple[Samples, int]]:
        if self._sniffing:
            self._buf += data
            if not self._sniff():
                return []
            data, self._buf = self._buf, b""  # what follows the header is payload
        if self._remaining is not None:
            # Bytes after the declared data chunk (e.g. a trailing LIST chunk) are not audio.
            data = data[: self._remaining]
            self._remaining -= len(data)
        self._buf += data
        frame = self._width * self._channels
        usable = len(self._buf) - len(self._buf) % frame
        chunk, self._buf = self._buf[:usable], self._buf[usable:]
        return [(self._convert(chunk), self._rate)] if chunk else []

    def _flush(self) -> list[tuple[Samples, int]]:
        if self._sniffing and self._buf:
            if self._need_header or self._buf[:4] in (b"RIFF", b"RF64"):
                # The stream ended inside the header.
                raise self._fail(INVALID_AUDIO_HEADER, "Invalid wav header!")
        # Half a sample (or frame) at the very end cannot be played; it is dropped.
        return []

    def _sniff(self) -> bool:
        """Consume a WAV header if there is one; False while more bytes are needed."""
        buf = self._buf
        if len(buf) < 4 and (
            self._need_header or b"RIFF".startswith(buf) or b"RF64".startswith(buf)
        ):
            return False
        if buf[:4] not in (b"RIFF", b"RF64"):
            if self._need_header:
                raise self._fail(INVALID_AUDIO_HEADER, "Invalid wav header!")
            self._sniffing = False  # plain PCM: nothing to skip
            return True
        info = _parse_wav_header(buf)
        if info is None:
            return False
        header_len, fmt_tag, channels, rate, bits, data_size = info
        self._setup_wav(fmt_tag, channels, rate, bits)
        if data_size not in (0, 0xFFFFFFFF):
            self._remaining = data_size
        self._buf = buf[header_len:]
        self._sniffing = False
        logger.debug("= wav header: %d ch, %d Hz, %d bit, tag %#x", channels, rate, bits, fmt_tag)
        return True

    def _setup_wav(self, fmt_tag: int, channels: int, rate: int, bits: int) -> None:
        if channels < 1 or rate < 1:
            raise self._fail(INVALID_AUDIO_HEADER, "Invalid wav header!")
        if fmt_tag == 1 and bits in (8, 16, 24, 32):
            self._dtype = np.dtype({8: "u1", 16: "<i2", 24: "u1", 32: "<i4"}[bits])
        elif fmt_tag == 3 and bits == 32:
            self._dtype = np.dtype("<f4")
        else:
            raise self._fail(
                UNSUPPORTED_FORMAT,
                f"UNSUPPORTED_FORMAT:wav encoding {fmt_tag:#06x} with {bits} bits "
                "is not supported, use 16-bit PCM",
            )
        if rate not in SUPPORTED_SAMPLE_RATES:
            raise self._fail(
                UNSUPPORTED_SAMPLE_RATE,
                f"UNSUPPORTED_SAMPLE_RATE:wav sample rate {rate} is not 8000 or 16000",
            )
        if rate != self.sample_rate:
            logger.info("! wav header says %d Hz, request said %d Hz", rate, self.sample_rate)
        self._rate, self._channels, self._width = rate, channels, bits // 8

    def _convert(self, chunk: bytes) -> Samples:
        x: Samples
        if self._width == 3:
            b = np.frombuffer(chunk, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            ints = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 8
            x = ints.astype(np.float32) / np.float32(2**23)
        else:
            raw = np.frombuffer(chunk, dtype=self._dtype)
            if self._dtype.kind == "f":
                x = raw.astype(np.float32)
            elif self._dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
                x = (raw.astype(np.float32) - 128.0) / np.float32(128.0)
            else:
                x = raw.astype(np.float32) / np.float32(2.0 ** (8 * self._width - 1))
        if self._channels > 1:
            x = x.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        return x


def make_decoder(fmt: str, sample_rate: int, *, target_rate: int = 16000) -> Decoder:
    """Create the streaming decoder for a recognition request's ``format``/``sample_rate``.

    Args:
        fmt: the request's ``format`` (case-insensitive): ``pcm``, ``wav``, ``opus``
            (Ogg Opus), ``opu`` (1-byte length-prefixed Opus packets), ``mp3``, ``aac``
            (ADTS) or ``amr`` (``#!AMR`` / ``#!AMR-WB`` files).
        sample_rate: the request's ``sample_rate``; NLS accepts 8000 and 16000 only.
        target_rate: the rate of the samples returned (the ASR engine's rate).

    Raises:
        AudioFormatError: 41010100 for an unknown or unsupported format, 41010101 for a
            sample rate other than 8000/16000.
    """
    name = fmt.lower()
    if name not in SUPPORTED_FORMATS:
        detail = " (Ogg Speex cannot be decoded offline)" if name == "speex" else ""
        raise AudioFormatError(
            UNSUPPORTED_FORMAT,
            f"UNSUPPORTED_FORMAT:format '{fmt}' is not supported{detail}; "
            f"use one of {', '.join(SUPPORTED_FORMATS)}",
        )
    if sample_rate not in SUPPORTED_SAMPLE_RATES:
        raise AudioFormatError(
            UNSUPPORTED_SAMPLE_RATE,
            f"UNSUPPORTED_SAMPLE_RATE:sample_rate {sample_rate} is not 8000 or 16000",
        )
    if name in ("pcm", "wav"):
        return PcmDecoder(name, sample_rate, target_rate=target_rate, header=name == "wav")
    from nls_gateway import codecs  # PyAV is heavy: import it only for compressed input

    return codecs.make_codec_decoder(name, sample_rate, target_rate=target_rate)


def _parse_wav_header(buf: bytes) -> tuple[int, int, int, int, int, int] | None:
    """Parse a RIFF/WAVE header up to the start of the ``data`` chunk.

    Returns:
        ``(header_len, format_tag, channels, rate, bits, data_size)``, or None when
        ``buf`` ends before the ``data`` chunk header.

    Raises:
        AudioFormatError: 40000009 ``Invalid wav header!`` / ``Too large wav header!``.
    """
    if len(buf) >= 12 and buf[8:12] != b"WAVE":
        raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid wav header!")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while True:
        if pos > MAX_WAV_HEADER_BYTES:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Too large wav header!")
        if len(buf) < pos + 8:
            return None
        chunk_id, size = buf[pos : pos + 4], struct.unpack_from("<I", buf, pos + 4)[0]
        if chunk_id == b"data":
            if fmt is None:  # samples before their description
                raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid wav header!")
            return (pos + 8, *fmt, size)
        if not chunk_id.isascii():  # chunk ids are four printable ASCII characters
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid wav header!")
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid wav header!")
            if pos + 8 + size > MAX_WAV_HEADER_BYTES:
                raise AudioFormatError(INVALID_AUDIO_HEADER, "Too large wav header!")
            if len(buf) < pos + 8 + size:
                return None
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", buf, pos + 8)
            if tag == 0xFFFE and size >= 40:  # WAVE_FORMAT_EXTENSIBLE: tag in the GUID
                tag = struct.unpack_from("<H", buf, pos + 8 + 24)[0]
            fmt = (tag, channels, rate, bits)
        pos += 8 + size + (size & 1)  # RIFF chunks are padded to an even size
