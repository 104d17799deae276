from __future__ import annotations

import numpy as np

from evaldata import load_wav
from nls_gateway.engines.base import VadEngine
from nls_gateway.engines.silero_vad import FRAME_SAMPLES, create


def test_create_gives_a_vad_engine() -> None:
    vad = create()
    assert isinstance(vad, VadEngine)
    assert (vad.sample_rate, vad.frame_samples) == (16000, 512)


def test_accept_waveform_buffers_remainders() -> None:
    stream = create().create_stream()
    audio = np.zeros(FRAME_SAMPLES * 3 + 100, dtype=np.float32)
    assert stream.accept_waveform(audio[:300]).shape == (0,)
    assert stream.accept_waveform(audio[300:]).shape == (3,)
    assert stream.accept_waveform(np.zeros(FRAME_SAMPLES - 100, np.float32)).shape == (1,)


def test_speech_scores_high_and_silence_or_noise_low() -> None:
    vad = create()
    speech = vad.create_stream().accept_waveform(load_wav("zh_dev_07_paddlespeech_zh.wav"))
    assert float(np.mean(speech > 0.5)) > 0.5
    silence = vad.create_stream().accept_waveform(np.zeros(16000, np.float32))
    assert float(silence.max()) < 0.2
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(32000) * 0.05).astype(np.float32)
    assert float(np.mean(vad.create_stream().accept_waveform(noise) > 0.5)) < 0.05
