"""The real task handlers behind the real server, with scripted engines, driven by the SDK."""

from __future__ import annotations

import numpy as np

import nls.asyncio as nlsa


def _utterance() -> bytes:
    """0.3 s silence, 1 s of a 440 Hz tone, 1 s silence, as 16 kHz PCM16."""
    t = np.arange(16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    audio = np.concatenate([np.zeros(4800), tone, np.zeros(16000)])
    return (audio * 32767).astype("<i2").tobytes()


async def test_recognize_and_synthesize_through_the_gateway(gateway):
    gw = await gateway(access_keys={"akid": "secret"}, appkey=["app:zh"])
    creds = {"url": gw.url, "appkey": "app", "akid": "akid", "aksecret": "secret"}
    text = await nlsa.recognize(_utterance(), sample_rate=16000, **creds)
    assert text == "北京的天气。"
    audio = await nlsa.synthesize("你好，世界。", voice="xiaoyun", **creds)
    assert len(audio) == 6 * 50 * 32  # ScriptedTts: 50 ms per character, 16 kHz PCM16
    registry = gw.metrics.registry
    assert (
        registry.get_sample_value(
            "nls_sessions_total", {"namespace": "SpeechRecognizer", "outcome": "completed"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("nls_audio_out_seconds_total", {"namespace": "SpeechSynthesizer"})
        == len(audio) / 32000
    )
    assert gw.shared.admission.active == 0
