"""Audio input for the speech commands: any file PyAV reads, as 16 kHz mono s16 PCM.

This module owns decoding (wav, mp3, m4a, flac, ogg/opus, … at any rate and channel
count, through PyAV/FFmpeg), resampling to what NLS recognition takes (16 kHz, mono,
16-bit little-endian), reading raw PCM or a container from stdin as it arrives, cutting
the stream into 100 ms frames and pacing them to real time.

It must not talk to a server: the commands in ``recognition.py`` send what it yields.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from nls_gateway.cli.errors import UsageError

__all__ = [
    "BYTES_PER_SECOND",
    "SAMPLE_RATE",
    "AudioSource",
    "decode_all",
    "frames",
    "open_audio",
]

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2
FRAME_MS = 100
"""Audio per WebSocket frame; the official SDK examples send 100–200 ms at a time."""
_FRAME_BYTES = BYTES_PER_SECOND * FRAME_MS // 1000


@dataclass
class AudioSource:
    """An opened input: its name, its duration when known, and a PCM chunk iterator.

    The iterator decodes lazily, so stdin streams through as it arrives.
    """

    name: str
    duration: float | None
    """Seconds, from the container's header (None for stdin or unknown)."""
    chunks: Iterator[bytes]


def open_audio(path: str, *, raw_rate: int | None = None) -> AudioSource:
    """Open a file (or ``-`` for stdin) for decoding to 16 kHz mono s16.

    Args:
        path: a file in any format FFmpeg knows, or ``-`` for stdin.
        raw_rate: the input is headerless s16le mono PCM at this rate (``.pcm``/``.raw``
            files and stdin default to it: 16000 unless given).

    Raises:
        UsageError: the file does not exist or is not audio.
    """
    import av  # lazy: PyAV loads FFmpeg's libraries, which ``nls --help`` does not need

    source: str | BinaryIO
    if path == "-":
        source, name = sys.stdin.buffer, "<stdin>"
    else:
        if not Path(path).is_file():
            raise UsageError(f"{path}: no such file")
        source, name = path, path
    options: dict[str, Any] = {}
    is_raw = raw_rate is not None or Path(path).suffix.lower() in (".pcm", ".raw")
    if path == "-" and raw_rate is None:
        # A pipe cannot be probed twice: sniff the first bytes for a container header.
        head = sys.stdin.buffer.peek(12)[:12] if hasattr(sys.stdin.buffer, "peek") else b""
        is_raw = not _looks_like_container(head)
    if is_raw:
        options = {"format": "s16le", "options": {"sample_rate": str(raw_rate or SAMPLE_RATE)}}
        options["options"]["ch_layout"] = "mono"
    try:
        container = av.open(source, "r", **options)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise UsageError(f"{name}: cannot read audio ({exc})") from None
    if not container.streams.audio:
        container.close()
        raise UsageError(f"{name}: no audio stream")
    duration = None
    if container.duration is not None and container.duration > 0:
        duration = container.duration / 1_000_000  # AV_TIME_BASE: microseconds
    elif is_raw and path != "-":
        duration = Path(path).stat().st_size / ((raw_rate or SAMPLE_RATE) * 2)
    return AudioSource(name, duration, _decode(container, name))


def decode_all(path: str, *, raw_rate: int | None = None) -> bytes:
    """The whole file as 16 kHz mono s16 PCM."""
    return b"".join(open_audio(path, raw_rate=raw_rate).chunks)


async def frames(
    chunks: Iterator[bytes], *, realtime: bool, on_frame: Any = None
) -> AsyncIterator[bytes]:
    """100 ms frames of ``chunks``; decoding runs in a thread so stdin never blocks the loop.

    Args:
        chunks: PCM chunks of any size (from :class:`AudioSource`).
        realtime: sleep so that frames leave no faster than real time (the cloud rejects
            audio sent much faster; a local gateway takes it at full speed).
        on_frame: called with the seconds of audio yielded so far (progress display).
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    sent = 0
    pending = b""
    done = False
    while not done:
        chunk = await asyncio.to_thread(next, chunks, None)
        if chunk is None:
            done = True
        else:
            pending += chunk
        while len(pending) >= _FRAME_BYTES or (done and pending):
            frame, pending = pending[:_FRAME_BYTES], pending[_FRAME_BYTES:]
            yield frame
            sent += len(frame)
            if on_frame is not None:
                on_frame(sent / BYTES_PER_SECOND)
            if realtime:
                await asyncio.sleep(max(0.0, t0 + sent / BYTES_PER_SECOND - loop.time()))


def _decode(container: Any, name: str) -> Iterator[bytes]:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    try:
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield bytes(out.planes[0])[: out.samples * 2]
        except av.error.FFmpegError as exc:
            raise UsageError(f"{name}: cannot decode audio ({exc})") from None
        for out in resampler.resample(None):  # flush the resampler's delay line
            yield bytes(out.planes[0])[: out.samples * 2]
    finally:
        container.close()


def _looks_like_container(head: bytes) -> bool:
    # RIFF/WAVE, FLAC, Ogg, MP3 with an ID3 tag or a bare frame sync, MP4/M4A.
    return (
        head[:4] in (b"RIFF", b"fLaC", b"OggS")
        or head[:3] == b"ID3"
        or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")
        or head[4:8] == b"ftyp"
    )
