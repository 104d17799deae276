"""Tests for nls_gateway.audio.output: containers, sample rates, volume and pitch."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest

from nls_gateway.audio.output import (
    AudioEncoder,
    mp3_rate,
    pitch_factor,
    volume_gain,
)

RATE = 24000


def _tone(freq: float = 220.0, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _encode(enc: AudioEncoder, audio: np.ndarray, chunk: int = 4800) -> bytes:
    out = b""
    for start in range(0, audio.size, chunk):
        out += enc.feed(audio[start : start + chunk])
    return out + enc.finish()


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


def test_pcm_output_has_requested_rate_and_length() -> None:
    data = _encode(AudioEncoder(format="pcm", sample_rate=16000), _tone(seconds=1.0))
    samples = np.frombuffer(data, dtype="<i2")
    assert abs(samples.size - 16000) <= 16
    assert abs(_peak_hz(samples[2000:14000].astype(np.float32), 16000) - 220) < 3


def test_wav_header_first_and_streaming_sizes() -> None:
    enc = AudioEncoder(format="wav", sample_rate=8000)
    first = enc.feed(_tone(seconds=0.2))
    rest = enc.feed(_tone(seconds=0.2)) + enc.finish()
    assert first[:4] == b"RIFF" and first[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", first[4:8])[0] == 0xFFFFFFFF
    channels, rate = struct.unpack("<HI", first[22:28])
    assert (channels, rate) == (1, 8000)
    assert first[36:40] == b"data" and struct.unpack("<I", first[40:44])[0] == 0xFFFFFFFF
    assert b"RIFF" not in rest[:4]
    assert abs((len(first) + len(rest) - 44) // 2 - 3200) <= 8


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_mp3_decodes_at_requested_rate(rate: int) -> None:
    enc = AudioEncoder(format="mp3", sample_rate=rate)
    data = _encode(enc, _tone(seconds=1.0))
    with av.open(io.BytesIO(data), format="mp3") as container:
        stream = container.streams.audio[0]
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        assert stream.rate == rate
    # LAME adds encoder delay and pads the last frame (576 samples at 8 kHz = 72 ms each).
    assert 0.0 <= decoded.size / rate - 1.0 < 0.2
    assert abs(_peak_hz(decoded[rate // 5 : rate * 4 // 5], rate) - 220) < 6


def test_mp3_rate_picks_nearest_valid() -> None:
    assert mp3_rate(16000) == 16000
    assert mp3_rate(44000) == 44100
    assert mp3_rate(9000) == 8000


def test_volume_scaling() -> None:
    tone = _tone(amp=0.2)
    loud = np.frombuffer(_encode(AudioEncoder(sample_rate=RATE, volume=100), tone), "<i2")
    unity = np.frombuffer(_encode(AudioEncoder(sample_rate=RATE, volume=50), tone), "<i2")
    mute = np.frombuffer(_encode(AudioEncoder(sample_rate=RATE, volume=0), tone), "<i2")
    assert volume_gain(50) == 1.0
    assert np.abs(unity).max() == pytest.approx(0.2 * 32767, rel=0.01)
    assert np.abs(loud).max() / np.abs(unity).max() == pytest.approx(10**0.5, rel=0.02)
    assert np.abs(mute).max() == 0


@pytest.mark.parametrize("pitch_rate", [-500, 250, 500])
def test_pitch_change_keeps_duration(pitch_rate: int) -> None:
    tone = _tone(freq=200.0, seconds=2.0)
    data = _encode(AudioEncoder(sample_rate=RATE, pitch_rate=pitch_rate), tone)
    out = np.frombuffer(data, "<i2").astype(np.float32)
    assert abs(out.size - tone.size) <= RATE * 0.005  # within 5 ms over 2 s
    expected = 200.0 * pitch_factor(pitch_rate)
    assert abs(_peak_hz(out[RATE // 2 : RATE * 3 // 2], RATE) - expected) < 4


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError):
        AudioEncoder(format="ogg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AudioEncoder(volume=101)
    with pytest.raises(ValueError):
        AudioEncoder(pitch_rate=-501)
    with pytest.raises(ValueError):
        AudioEncoder(sample_rate=96000)
