"""Our SDK synthesizes through the gateway (real Kokoro) in every format and namespace: the
audio decodes, has the requested sample rate, and lasts as long as the subtitles say."""

from __future__ import annotations

import io
import json
from typing import Any

import av
import pytest

import nls.asyncio as nlsa
from nls.protocol import AudioData, MetaInfo, SentenceEnd, StartSynthesis

TEXT = "今天天气不错，我们去公园散步吧。"


def _decode(data: bytes, fmt: str, rate: int) -> tuple[int, float]:
    """(sample rate, seconds) of the received audio."""
    if fmt == "pcm":
        return rate, len(data) / 2 / rate
    with av.open(io.BytesIO(data), format=fmt) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.rate, samples / stream.rate


def _subtitle_end(events: list[Any]) -> int:
    ends = [
        s["end_time"] for e in events if isinstance(e, (MetaInfo, SentenceEnd)) for s in e.subtitles
    ]
    return max(ends)


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("namespace", "fmt", "rate"),
    [
        ("SpeechSynthesizer", "pcm", 16000),
        ("SpeechSynthesizer", "wav", 8000),
        ("SpeechLongSynthesizer", "mp3", 24000),
        ("FlowingSpeechSynthesizer", "wav", 16000),
    ],
)
async def test_formats_rates_and_subtitle_timing(
    gateway: Any, namespace: str, fmt: str, rate: int
) -> None:
    gw = await gateway(engines="real")
    events: list[Any] = []
    if namespace == "FlowingSpeechSynthesizer":
        async with nlsa.AsyncStreamInputSynthesizer(
            gw.url, appkey="k", token="t", format=fmt, sample_rate=rate, enable_subtitle=True
        ) as tts:
            for piece in ("今天天气不错，", "我们去公园", "散步吧。"):
                await tts.send_text(piece)
            await tts.finish()
            events = [e async for e in tts.events()]
    else:
        tts = nlsa.AsyncSpeechSynthesizer(
            gw.url, appkey="k", token="t", long_tts=namespace == "SpeechLongSynthesizer"
        )
        await tts.start(
            StartSynthesis(text=TEXT, format=fmt, sample_rate=rate, enable_subtitle=True)
        )
        events = [e async for e in tts.events()]
        await tts.close()
    audio = b"".join(e.data for e in events if isinstance(e, AudioData))
    decoded_rate, seconds = _decode(audio, fmt, rate)
    assert decoded_rate == rate
    end_ms = _subtitle_end(events)
    assert abs(seconds * 1000 - end_ms) <= 100, (seconds, end_ms, json.dumps(end_ms))


ROUND_TRIP = [
    ("xiaoyun", "北京今天温度已达零下十度。", "zh"),
    ("xiaoyun", "您好，欢迎使用智能语音交互服务，请问有什么可以帮您？", "zh"),
    ("xiaoyun", "今天气温二十三度，空气质量良好。", "zh"),
    ("andy", "The weather is nice today, let us go for a walk in the park.", "en"),
]


@pytest.mark.timeout(240)
async def test_tts_to_asr_round_trip(gateway: Any) -> None:
    """Synthesized speech is recognised back (intelligibility, issue targets: zh CER ≤ 5 %
    and en WER ≤ 5 % are measured by benchmarks/tts.py; this guards against regressions)."""
    from evaldata import cer, wer
    from nls_gateway.engines.text.asr_zh import scoring_form

    gw = await gateway(engines="real", appkey=["zh-app:zh", "en-app:en"], token=["t"])
    scores = []
    for voice, text, language in ROUND_TRIP:
        appkey = f"{language}-app"
        pcm = await nlsa.synthesize(text, url=gw.url, appkey=appkey, token="t", voice=voice)
        heard = await nlsa.recognize(
            pcm, url=gw.url, appkey=appkey, token="t", enable_punctuation_prediction=True
        )
        ref, hyp = scoring_form(text, language), scoring_form(heard, language)
        score = cer(ref, hyp) if language == "zh" else wer(ref, hyp)
        scores.append((language, score, heard))
    zh = [s for lang, s, _ in scores if lang == "zh"]
    en = [s for lang, s, _ in scores if lang == "en"]
    assert sum(zh) / len(zh) <= 0.2, scores
    assert max(en) <= 0.3, scores
