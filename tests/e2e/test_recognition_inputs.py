"""One clip in every input form the gateway accepts gives the same text end to end
(SDK → gateway → Whisper): pcm, wav, Ogg Opus, NLS opu, and 8 kHz pcm; and the engine
is loaded once per process, shared by every session."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import soxr

import nls.asyncio as nlsa
from audio_fixtures import load_clip, ogg_opus_bytes, opu_bytes, wav_bytes
from evaldata import cer

CLIP = "zh_dev_06_funasr_asr_example_zh.wav"
SPOKEN = "欢迎大家来体验达摩院推出的语音识别模型"


def _inputs() -> dict[str, tuple[bytes, str, int]]:
    samples = load_clip(6.0, CLIP)
    at_8k = soxr.resample(samples.astype(np.float32), 16000, 8000).astype(np.int16)
    return {
        "pcm": (samples.tobytes(), "pcm", 16000),
        "wav": (wav_bytes(samples), "wav", 16000),
        "opus": (ogg_opus_bytes(samples), "opus", 16000),
        "opu": (opu_bytes(samples), "opu", 16000),
        "pcm-8k": (at_8k.tobytes(), "pcm", 8000),
    }


@pytest.mark.timeout(180)
async def test_every_input_format_gives_the_same_text(gateway: Any) -> None:
    gw = await gateway(engines="real", appkey=["zh-app:zh"], token=["t"])
    texts = {}
    for name, (data, fmt, rate) in _inputs().items():
        texts[name] = await nlsa.recognize(
            data, url=gw.url, appkey="zh-app", token="t", format=fmt, sample_rate=rate
        )
    for name, text in texts.items():
        assert cer(SPOKEN, text) <= 0.2, texts
        # Lossless forms decode identically; lossy ones may differ by a character or two.
        assert cer(texts["pcm"], text) <= (0.0 if name == "wav" else 0.2), texts


async def test_engine_is_loaded_once_and_shared(gateway: Any) -> None:
    gw = await gateway(engines="real", appkey=["zh-app:zh"], token=["t"])
    asr = gw.shared.engines.asr
    data = load_clip(3.0, CLIP).tobytes()
    await nlsa.recognize(data, url=gw.url, appkey="zh-app", token="t")
    loaded = dict(asr._models._loaded)  # noqa: SLF001 - the engine's model cache, by path
    await nlsa.recognize(data, url=gw.url, appkey="zh-app", token="t")
    assert asr._models._loaded == loaded and all(  # noqa: SLF001
        a is b
        for a, b in zip(asr._models._loaded.values(), loaded.values(), strict=True)  # noqa: SLF001
    )
    assert gw.shared.engines.asr is asr
