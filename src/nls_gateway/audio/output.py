"""Synthesis output: engine float32 chunks → the bytes an NLS client asked for.

This module owns the gateway side of TTS audio (protocol.md §6.1, §10.3): pitch, volume,
sample rate and container, applied incrementally so audio can be sent while the engine is
still speaking. :class:`AudioEncoder` takes mono float32 chunks at the engine's rate and
returns encoded bytes from ``feed``; ``finish`` flushes what the resampler, the pitch filter
and the MP3 encoder still hold. Cutting the bytes into WebSocket frames is the protocol
core's (``ServerProtocol.send_audio``, at most 64 KiB, protocol.md §6.2).

The NLS parameters, as implemented here:

* ``sample_rate`` 8000–48000: streaming soxr resampling (``ResampleStream``, HQ).
* ``volume`` 0–100: 0 is silence; otherwise the gain is linear in decibels, 50 = unity
  (0 dB), each step 0.2 dB, so 1 ≈ −9.8 dB and 100 = +10 dB. Samples are clipped to
  [−1, 1] before conversion to 16-bit.
* ``pitch_rate`` −500…500: a real pitch shift that keeps the duration, ±500 = ±6 semitones
  (factor 2^(pitch_rate/1000)), linear in semitones. It runs through an FFmpeg filter graph
  (PyAV): ``asetrate`` (shift pitch and tempo) → ``aresample`` (back to the input rate) →
  ``atempo`` (undo the tempo change). The filter holds back a few tens of ms that
  ``finish`` releases; the total duration stays within a couple of ms of the input.
* ``speech_rate`` is not handled here: it is the engine's ``TtsOptions.speed``.
* ``format``: ``pcm`` is raw s16le; ``wav`` is s16le after a 44-byte RIFF header in the
  first bytes. The total length is unknown while streaming, so the RIFF and ``data`` sizes
  hold 0xFFFFFFFF, the convention FFmpeg and espeak-ng use for streamed WAV (readers treat
  it as "until end of file"). ``mp3`` is MPEG audio from LAME (lameenc), mono, CBR. MP3
  exists only at 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100 and 48000 Hz; any
  other requested rate is encoded at the nearest of these (see :func:`mp3_rate`).

No I/O and no asyncio here: pure synchronous functions and classes over numpy arrays.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "MP3_RATES",
    "AudioEncoder",
    "OutputFormat",
    "mp3_rate",
    "pitch_factor",
    "volume_gain",
    "wav_header",
]

OutputFormat = Literal["pcm", "wav", "mp3"]
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_MAX_SEMITONES = 6.0


def volume_gain(volume: int) -> float:
    """NLS ``volume`` 0–100 → amplitude gain (0 → 0, 50 → 1, 100 → +10 dB)."""
    if not 0 <= volume <= 100:
        raise ValueError(f"volume must be 0..100, got {volume}")
    if volume == 0:
        return 0.0
    return float(10 ** ((volume - 50) * 0.2 / 20))


def pitch_factor(pitch_rate: int) -> float:
    """NLS ``pitch_rate`` −500…500 → frequency factor (±500 = ±6 semitones)."""
    if not -500 <= pitch_rate <= 500:
        raise ValueError(f"pitch_rate must be -500..500, got {pitch_rate}")
    return float(2 ** (pitch_rate / 500 * _MAX_SEMITONES / 12))


def mp3_rate(sample_rate: int) -> int:
    """The MP3 sample rate nearest to ``sample_rate``."""
    return min(MP3_RATES, key=lambda r: abs(r - sample_rate))


def wav_header(sample_rate: int, *, data_bytes: int | None = None) -> bytes:
    """A 44-byte RIFF/WAVE header for mono s16le; unknown length → 0xFFFFFFFF sizes."""
    if data_bytes is None:
        riff_size = data_size = 0xFFFFFFFF
    else:
        riff_size, data_size = 36 + data_bytes, data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


class AudioEncoder:
    """One synthesis task's output pipeline: pitch → volume → resample → container.

    Example::

        enc = AudioEncoder(format="wav", sample_rate=16000, volume=50, pitch_rate=0)
        for chunk in engine.synthesize(text, options):
            send(enc.feed(chunk.audio))
        send(enc.finish())
    """

    def __init__(
        self,
        *,
        format: OutputFormat = "pcm",
        sample_rate: int = 16000,
        volume: int = 50,
        pitch_rate: int = 0,
        input_rate: int = 24000,
    ) -> None:
        """Set up the pipeline.

        Raises:
            ValueError: a parameter is out of its NLS range or the format is unknown.
        """
        if format not in ("pcm", "wav", "mp3"):
            raise ValueError(f"unsupported format {format!r}")
        if not 8000 <= sample_rate <= 48000:
            raise ValueError(f"sample_rate must be 8000..48000, got {sample_rate}")
        import soxr

        self.format: OutputFormat = format
        self.sample_rate = mp3_rate(sample_rate) if format == "mp3" else sample_rate
        """The rate of the encoded output (for mp3 the nearest valid MP3 rate)."""
        self._gain = volume_gain(volume)
        self._pitch = _PitchShifter(input_rate, pitch_factor(pitch_rate)) if pitch_rate else None
        self._resampler: Any = (
            soxr.ResampleStream(input_rate, self.sample_rate, 1, dtype="float32", quality="HQ")
            if input_rate != self.sample_rate
            else None
        )
        self._mp3: Any = _mp3_encoder(self.sample_rate) if format == "mp3" else None
        self._header_sent = False
        self._finished = False

    def feed(self, chunk: npt.NDArray[np.float32]) -> bytes:
        """Encode one chunk of mono float32 audio; returns what is ready (may be empty)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        samples = np.asarray(chunk, dtype=np.float32).reshape(-1)
        return self._encode(self._process(samples, last=False), last=False)

    def finish(self) -> bytes:
        """Flush the filters and the encoder; returns the last bytes. Call once."""
        if self._finished:
            return b""
        tail = self._process(np.zeros(0, dtype=np.float32), last=True)
        out = self._encode(tail, last=True)
        self._finished = True
        return out

    def _process(self, samples: npt.NDArray[np.float32], *, last: bool) -> npt.NDArray[np.float32]:
        if self._pitch is not None:
            samples = self._pitch.process(samples, last=last)
        if self._gain != 1.0:
            samples = samples * np.float32(self._gain)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return np.asarray(samples, dtype=np.float32)

    def _encode(self, samples: npt.NDArray[np.float32], *, last: bool) -> bytes:
        pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
        head = b""
        if self.format == "wav" and not self._header_sent:
            head = wav_header(self.sample_rate)
        self._header_sent = True
        if self._mp3 is not None:
            body = bytes(self._mp3.encode(pcm)) if pcm else b""
            if last:
                body += bytes(self._mp3.flush())
            return body
        return head + pcm


class _PitchShifter:
    """Streaming pitch shift with duration kept: asetrate → aresample → atempo (FFmpeg)."""

    def __init__(self, rate: int, factor: float) -> None:
        import av

        self._av: Any = av
        self._rate = rate
        graph = av.filter.Graph()
        src = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono")
        nodes = [
            src,
            graph.add("asetrate", str(round(rate * factor))),
            graph.add("aresample", str(rate)),
            graph.add("atempo", f"{1 / factor:.6f}"),
            graph.add("abuffersink"),
        ]
        for upstream, downstream in zip(nodes[:-1], nodes[1:], strict=True):
            upstream.link_to(downstream)
        graph.configure()
        # The graph owns the filter contexts: keep it alive as long as they are used.
        self._graph: Any = graph
        self._src: Any = src
        self._sink: Any = nodes[-1]
        self._pts = 0
        self._emitted = 0
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"bad pitch factor {factor}")

    def process(self, samples: npt.NDArray[np.float32], *, last: bool) -> npt.NDArray[np.float32]:
        av = self._av
        if samples.size:
            frame = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="flt", layout="mono")
            frame.sample_rate = self._rate
            frame.pts = self._pts
            self._pts += samples.size
            self._src.push(frame)
        if last:
            self._src.push(None)  # end of stream: atempo releases what it holds
        out: list[npt.NDArray[np.float32]] = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, BlockingIOError, av.error.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1).astype(np.float32))
        result = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
        if last:
            # atempo's last window is approximate (±~5 ms at ±6 semitones): trim or pad the
            # tail so the output lasts exactly as long as the input.
            missing = self._pts - (self._emitted + result.size)
            if missing > 0:
                result = np.concatenate([result, np.zeros(missing, dtype=np.float32)])
            elif missing < 0:
                result = result[: max(0, result.size + missing)]
        self._emitted += result.size
        return result


def _mp3_encoder(sample_rate: int) -> Any:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_channels(1)
    encoder.set_in_sample_rate(sample_rate)
    encoder.set_out_sample_rate(sample_rate)
    # Speech bitrates: enough for clear speech at each MPEG version's rates.
    encoder.set_bit_rate(32 if sample_rate <= 12000 else 48 if sample_rate <= 24000 else 64)
    encoder.set_quality(5)
    return encoder
