"""Recognition input: the PCM/WAV decoder and :func:`make_decoder` for a request's format.

This module owns the choice of decoder for a recognition request's ``format`` and
``sample_rate`` (protocol.md §10.1: 41010100 / 41010101 for what NLS does not accept) and
the uncompressed formats: raw PCM with RIFF/WAV header detection, and WAV. Compressed
formats are decoded in :mod:`.codecs`, imported only when a request needs one (PyAV is
heavy).
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import numpy as np

from nls_gateway.audio.decoder import (
    INVALID_AUDIO_HEADER,
    MAX_WAV_HEADER_BYTES,
    SUPPORTED_FORMATS,
    SUPPORTED_SAMPLE_RATES,
    UNSUPPORTED_FORMAT,
    UNSUPPORTED_SAMPLE_RATE,
    AudioFormatError,
    Decoder,
    Samples,
)

__all__ = ["PcmDecoder", "make_decoder"]

logger = logging.getLogger(__name__)


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
    from nls_gateway.audio import codecs  # PyAV is heavy: import it only for compressed input

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
