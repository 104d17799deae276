"""Compressed recognition input: Ogg Opus, NLS ``opu``, and mp3/aac/amr byte streams.

This module owns the incremental container parsing for compressed NLS input
(protocol.md §10.1): an Ogg page reader (hand-parsed, so a WebSocket frame may end
anywhere and the NLS 100-packets-per-page limit can be enforced), the ``opu`` framing
(one length byte before each Opus packet) and PyAV's codec parsers for elementary mp3,
ADTS aac and AMR streams. Packets are decoded with PyAV (engines.md §7: the native
``opus`` decoder always outputs 48 kHz float; :class:`nls_gateway.audio.decoder.Decoder`
resamples). It must not do I/O or resampling itself, and it is imported only when a
compressed format is requested, because PyAV is heavy.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any, Final

import av
import numpy as np

from nls_gateway.audio.decoder import (
    DECODE_ERROR,
    INVALID_AUDIO_HEADER,
    AudioFormatError,
    Decoder,
    Samples,
)

__all__ = [
    "MAX_PACKETS_PER_PAGE",
    "CodecStreamDecoder",
    "OggOpusDecoder",
    "OggPacket",
    "OggReader",
    "OpuDecoder",
    "make_codec_decoder",
]

logger = logging.getLogger(__name__)

MAX_PACKETS_PER_PAGE: Final = 100
"""NLS rejects Ogg pages holding more packets: 40000009 ``Too many opus packets per page``."""
_MAX_PACKET_BYTES: Final = 1 << 20  # one Opus packet is < 8 KB; this bounds a bad stream
_OPUS_RATE: Final = 48000  # the native FFmpeg opus decoder's only output rate
_PAGE_HEADER: Final = struct.Struct("<4sBBqIIIB")  # capture, version, type, granule, …


@dataclass(frozen=True, slots=True)
class OggPacket:
    """One complete Ogg packet and the page it ended on.

    Attributes:
        data: the packet bytes.
        serial: the logical stream's serial number.
        bos: the page is a beginning-of-stream page.
        eos: this is the last packet of an end-of-stream page.
        granule: the page's granule position if this packet ends the page, else -1.
    """

    data: bytes
    serial: int
    bos: bool
    eos: bool
    granule: int


class OggReader:
    """Incremental Ogg page parser: bytes in, complete packets out.

    Pages are located by their ``OggS`` capture pattern at the expected offset; there
    is no resynchronisation, because a live NLS stream is never cut mid-page on purpose,
    so anything else there is garbage and fails the task (40000009). CRCs are not
    checked: the WebSocket (TCP) already guarantees the bytes.
    """

    def __init__(self, *, max_packets_per_page: int = MAX_PACKETS_PER_PAGE) -> None:
        self._buf = bytearray()
        self._partial: dict[int, bytearray] = {}  # serial → packet continued on next page
        self._max_packets = max_packets_per_page

    @property
    def pending(self) -> int:
        """Bytes of an incomplete page held until the next :meth:`feed`."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[OggPacket]:
        """Add bytes; return the packets completed by them.

        Raises:
            AudioFormatError: 40000009 for a bad page header or too many packets per page.
        """
        self._buf += data
        packets: list[OggPacket] = []
        while len(self._buf) >= _PAGE_HEADER.size:
            capture, version, flags, granule, serial, _, _, nsegs = _PAGE_HEADER.unpack_from(
                self._buf
            )
            if capture != b"OggS" or version != 0:
                raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid ogg page header!")
            body_at = _PAGE_HEADER.size + nsegs
            if len(self._buf) < body_at:
                break
            lacing = bytes(self._buf[_PAGE_HEADER.size : body_at])
            if len(self._buf) < body_at + sum(lacing):
                break
            body = bytes(self._buf[body_at : body_at + sum(lacing)])
            del self._buf[: body_at + sum(lacing)]
            packets += self._split(body, lacing, flags, granule, serial)
        return packets

    def _split(
        self, body: bytes, lacing: bytes, flags: int, granule: int, serial: int
    ) -> list[OggPacket]:
        pending = self._partial.pop(serial, None)
        continued = bool(flags & 0x01)
        # A continued page whose packet start we never saw: drop that first piece. A
        # pending packet followed by a page that does not continue it was abandoned.
        partial = pending if continued and pending is not None else bytearray()
        skip = continued and pending is None
        ends: list[bytes] = []
        pos = 0
        for value in lacing:
            partial += body[pos : pos + value]
            pos += value
            if len(partial) > _MAX_PACKET_BYTES:
                raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid ogg packet size!")
            if value < 255:  # a lacing value below 255 ends the packet
                if not skip:
                    ends.append(bytes(partial))
                partial, skip = bytearray(), False
        if lacing and lacing[-1] == 255 and not skip:
            self._partial[serial] = partial  # the packet goes on in the next page
        if len(ends) > self._max_packets:
            # 40000009, worded as the service words it (protocol.md §9).
            raise AudioFormatError(
                INVALID_AUDIO_HEADER,
                f"Too many opus packets per page: max={self._max_packets}, actual={len(ends)}",
            )
        bos, eos, last = bool(flags & 0x02), bool(flags & 0x04), len(ends) - 1
        return [
            OggPacket(data, serial, bos, eos and i == last, granule if i == last else -1)
            for i, data in enumerate(ends)
        ]


class _PacketDecoder:
    """A PyAV decoder for one codec: packets in, mono float32 at the codec's rate out."""

    def __init__(
        self, codec: str, *, rate: int | None = None, extradata: bytes | None = None
    ) -> None:
        context = av.CodecContext.create(codec, "r")
        if not isinstance(context, av.AudioCodecContext):
            raise TypeError(f"{codec} is not an audio codec")
        self.context: av.AudioCodecContext = context
        if rate is not None:  # codecs without in-band parameters (raw Opus, AMR)
            self.context.sample_rate = rate
            self.context.layout = "mono"
        if extradata is not None:
            self.context.extradata = extradata

    def decode(self, packet: av.Packet[Any] | None) -> list[tuple[Samples, int]]:
        try:
            frames = self.context.decode(packet)
        except av.FFmpegError as exc:
            raise AudioFormatError(
                DECODE_ERROR, f"DECODE_ERROR:audio cannot be decoded as {self.context.name}"
            ) from exc
        out: list[tuple[Samples, int]] = []
        for frame in frames:
            x = frame.to_ndarray()
            if x.dtype.kind == "i":  # s16/s16p/s32 → float
                x = x.astype(np.float32) / np.float32(2.0 ** (8 * x.dtype.itemsize - 1))
            if frame.format.is_planar:
                mono = x.mean(axis=0, dtype=np.float32) if x.shape[0] > 1 else x[0]
            else:  # packed: (1, samples * channels)
                mono = x.reshape(-1, len(frame.layout.channels)).mean(axis=1, dtype=np.float32)
            out.append((mono.astype(np.float32, copy=False), frame.sample_rate))
        return out


class OggOpusDecoder(Decoder):
    """``opus``: Ogg-encapsulated Opus (RFC 7845), the format the C++ SDK recommends.

    The ``OpusHead`` pre-skip is removed from the start (by FFmpeg) and the end is trimmed to the
    last page's granule position, so the output has the encoder input's length. Chained
    streams (a new ``OpusHead`` after end-of-stream) are decoded one after the other;
    other logical streams in the file (e.g. Ogg Skeleton) are ignored.
    """

    def __init__(self, fmt: str, sample_rate: int, *, target_rate: int = 16000) -> None:
        super().__init__(fmt, sample_rate, target_rate=target_rate)
        self._ogg = OggReader()
        self._serial: int | None = None
        self._codec: _PacketDecoder | None = None
        self._header_packets = 0  # OpusHead and OpusTags still to skip
        self._decoded = 0  # 48 kHz samples produced by this chain link, incl. pre-skip
        self._seen_any = False
        self._other: set[int] = set()  # serials of non-Opus logical streams

    def _decode(self, data: bytes) -> list[tuple[Samples, int]]:
        self._seen_any = self._seen_any or bool(data)
        out: list[tuple[Samples, int]] = []
        for packet in self._ogg.feed(data):
            out += self._packet(packet)
        return out

    def _flush(self) -> list[tuple[Samples, int]]:
        if self._ogg.pending:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Truncated ogg page at end of stream!")
        if self._seen_any and self._codec is None:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid opus header!")
        return []

    def _packet(self, packet: OggPacket) -> list[tuple[Samples, int]]:
        if packet.bos and packet.data.startswith(b"OpusHead"):
            self._start(packet)
            return []
        if packet.serial in self._other or (packet.bos and packet.serial != self._serial):
            self._other.add(packet.serial)  # another logical stream, e.g. Ogg Skeleton
            return []
        if packet.serial != self._serial or self._codec is None:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid opus header!")
        if self._header_packets:
            self._header_packets -= 1  # OpusTags
            return []
        out = self._codec.decode(av.Packet(packet.data)) if packet.data else []
        self._decoded += sum(len(x) for x, _ in out)
        if packet.eos and packet.granule >= 0 and out:
            excess = self._decoded - packet.granule  # the last packet's padding
            if excess > 0:
                x = out[-1][0]
                out[-1] = (x[: max(0, len(x) - excess)], _OPUS_RATE)
        if packet.eos:
            self._serial = None  # a chained stream may follow
        return out

    def _start(self, head: OggPacket) -> None:
        data = head.data
        if len(data) < 19 or data[8] >> 4 != 0 or data[9] == 0:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Invalid opus header!")
        channels, pre_skip = data[9], struct.unpack_from("<H", data, 10)[0]
        self._serial, self._header_packets = head.serial, 1
        # FFmpeg reads OpusHead from extradata: the channel mapping, the output gain and
        # the pre-skip, which it drops itself; count those samples as decoded so the
        # granule position (which includes them) trims the end correctly.
        self._decoded = pre_skip
        self._codec = _PacketDecoder("opus", extradata=data)
        logger.debug("= ogg opus: %d ch, pre-skip %d", channels, pre_skip)


class OpuDecoder(Decoder):
    """``opu``: Alibaba's framing, one length byte then one Opus packet, repeated.

    Each packet is 20 ms of 16 kHz mono in the C++ SDK (bitrate 27800). The framing
    carries no pre-skip, so the encoder's look-ahead (6.5 ms for libopus) stays at the
    start, as on the service. A zero length byte carries no packet and is skipped.
    """

    def __init__(self, fmt: str, sample_rate: int, *, target_rate: int = 16000) -> None:
        super().__init__(fmt, sample_rate, target_rate=target_rate)
        self._buf = b""
        self._codec = _PacketDecoder("opus", rate=_OPUS_RATE)

    def _decode(self, data: bytes) -> list[tuple[Samples, int]]:
        buf = self._buf + data
        out: list[tuple[Samples, int]] = []
        pos = 0
        # The length byte and its packet may arrive in different frames: keep the rest.
        while pos < len(buf) and pos + 1 + buf[pos] <= len(buf):
            size = buf[pos]
            if size:
                out += self._codec.decode(av.Packet(buf[pos + 1 : pos + 1 + size]))
            pos += 1 + size
        self._buf = buf[pos:]
        return out

    def _flush(self) -> list[tuple[Samples, int]]:
        if self._buf:
            raise AudioFormatError(INVALID_AUDIO_HEADER, "Truncated opu packet at end of stream!")
        return []


class CodecStreamDecoder(Decoder):
    """``mp3``, ``aac`` (ADTS) and ``amr``: elementary streams split by FFmpeg's parsers.

    An ID3v2 tag before mp3 audio and the ``#!AMR`` / ``#!AMR-WB`` magic are skipped;
    the magic also picks the narrow- or wide-band decoder (narrow-band without one).
    A stream in which nothing decodes fails at :meth:`finish` with 40270003.
    """

    def __init__(self, fmt: str, sample_rate: int, *, target_rate: int = 16000) -> None:
        super().__init__(fmt, sample_rate, target_rate=target_rate)
        self._head: bytes | None = b""  # bytes held while looking for a tag/magic
        self._codec: _PacketDecoder | None = None
        self._decoded = 0

    def _decode(self, data: bytes) -> list[tuple[Samples, int]]:
        if self._head is not None:
            self._head += data
            data = self._skip_header()
            if self._head is not None:
                return []
        return self._parse(data)

    def _flush(self) -> list[tuple[Samples, int]]:
        if self._head is not None:  # the stream ended inside the tag or magic
            if self._head:
                raise AudioFormatError(DECODE_ERROR, f"DECODE_ERROR:no {self.format} audio")
            return []
        out = self._parse(b"")  # an empty input flushes the parser
        out += self._codec_or_fail().decode(None)
        self._decoded += sum(len(x) for x, _ in out)
        if self._decoded == 0:
            raise AudioFormatError(DECODE_ERROR, f"DECODE_ERROR:no {self.format} audio")
        return out

    def _skip_header(self) -> bytes:
        """Drop a leading ID3v2 tag or AMR magic from ``self._head``; None it once done."""
        head = self._head or b""
        codec, rate, skip = self.format, None, 0
        if self.format == "mp3":
            if _is_prefix(head, b"ID3") or (head.startswith(b"ID3") and len(head) < 10):
                return b""
            if head.startswith(b"ID3"):  # 10-byte header, syncsafe size, optional footer
                size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14
                size |= (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
                skip = 10 + size + (10 if head[5] & 0x10 else 0)
        elif self.format == "amr":
            if not head.startswith(b"#!AMR\n") and (
                _is_prefix(head, b"#!AMR\n") or _is_prefix(head, b"#!AMR-WB\n")
            ):
                return b""
            if head.startswith(b"#!AMR-WB\n"):
                codec, rate, skip = "amrwb", 16000, 9
            else:  # narrow band, with or without its magic
                codec, rate, skip = "amrnb", 8000, 6 if head.startswith(b"#!AMR\n") else 0
        if len(head) < skip:
            return b""  # still inside the tag
        self._head = None
        self._codec = _PacketDecoder(codec, rate=rate)
        return head[skip:]

    def _codec_or_fail(self) -> _PacketDecoder:
        if self._codec is None:
            raise RuntimeError("codec used before the stream header was read")
        return self._codec

    def _parse(self, data: bytes) -> list[tuple[Samples, int]]:
        codec = self._codec_or_fail()
        out: list[tuple[Samples, int]] = []
        try:
            packets = codec.context.parse(data)
        except av.FFmpegError as exc:
            raise AudioFormatError(DECODE_ERROR, f"DECODE_ERROR:bad {self.format} data") from exc
        for packet in packets:
            out += codec.decode(packet)
        self._decoded += sum(len(x) for x, _ in out)
        return out


def make_codec_decoder(fmt: str, sample_rate: int, *, target_rate: int = 16000) -> Decoder:
    """The decoder for a compressed ``format``; called by :func:`audio.make_decoder`."""
    if fmt == "opus":
        return OggOpusDecoder(fmt, sample_rate, target_rate=target_rate)
    if fmt == "opu":
        return OpuDecoder(fmt, sample_rate, target_rate=target_rate)
    return CodecStreamDecoder(fmt, sample_rate, target_rate=target_rate)


def _is_prefix(head: bytes, magic: bytes) -> bool:
    """True while ``head`` may still grow into ``magic``."""
    return len(head) < len(magic) and magic.startswith(head)
