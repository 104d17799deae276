from __future__ import annotations

import numpy as np

from evaldata import load_wav
from nls_gateway.engines.base import VadEngine
from nls_gateway.engines.silero_vad import FRAME_SAMPLES, create
from nls_gateway.segmenter import Segmenter, SpeechEnded


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


def test_segmentation_does_not_depend_on_how_the_audio_is_chunked() -> None:
    # A sentence end resets Silero's state; the reset must apply from the next frame
    # whether the client sends 100 ms or 1 s per message (or the gateway joins a backlog).
    vad = create()
    audio = load_wav("zh_dev_long_01_concat.wav")[: 15 * 16000]

    def sentences(chunk: int) -> list[tuple[int, int]]:
        segmenter = Segmenter(vad.create_stream())
        events = []
        for offset in range(0, audio.size, chunk):
            events += segmenter.accept_waveform(audio[offset : offset + chunk])
        events += segmenter.flush()
        return [(e.begin_ms, e.end_ms) for e in events if isinstance(e, SpeechEnded)]

    small = sentences(1600)
    assert len(small) == 3
    assert sentences(16000) == small == sentences(51200)
