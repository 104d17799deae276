"""disfluency and enable_semantic_sentence_detection end to end (SDK → gateway → Whisper).

Semantic breaks on the continuous read speech of zh_dev_long_02 (no pause long enough
for the VAD in its first 20 s, four sentences). Fillers: Whisper writes down few of the
fillers in the eval set's meeting clip (it was trained on clean transcripts), so the
fillers come from Kokoro through the gateway's own synthesizer, which Whisper then hears
as a listener would; the meeting clip checks that real spontaneous speech loses nothing
that is not a filler.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import numpy as np
import pytest

import nls.asyncio as nlsa
from evaldata import cer, chars, load_wav, reference, wer
from nls.protocol import SentenceEnd

pytestmark = pytest.mark.timeout(120)

LONG = "zh_dev_long_02_azure_zhcn_continuous.wav"
EXCERPT_S = 20.0
"""Its first four sentences; the fifth begins after a pause just past 20 s."""
MEETING = "zh_dev_04_wenetspeech_TEST_MEETING_T0000000001_S00000.wav"
CREDENTIALS = {"appkey": ["zh-app:zh", "en-app:en"], "token": ["t"]}


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def _paced_transcription(
    url: str, data: bytes, speed: float, **params: Any
) -> tuple[list[SentenceEnd], float, list[float]]:
    """Stream ``data`` at ``speed``× real time; the SentenceEnds, when Stop was sent and
    when each SentenceEnd arrived (monotonic seconds)."""
    ends: list[SentenceEnd] = []
    arrived: list[float] = []
    async with nlsa.AsyncSpeechTranscriber(url, appkey="zh-app", token="t", **params) as st:

        async def collect() -> None:
            async for event in st.events():
                if isinstance(event, SentenceEnd):
                    ends.append(event)
                    arrived.append(time.monotonic())

        collector = asyncio.create_task(collect())
        chunk = 3200  # 100 ms
        for at in range(0, len(data), chunk):
            await st.send_audio(data[at : at + chunk])
            await asyncio.sleep(0.1 / speed)
        stopped = time.monotonic()
        await st.finish(timeout=30)
        await collector
    return ends, stopped, arrived


async def test_semantic_sentence_detection_breaks_continuous_speech(gateway: Any) -> None:
    gw = await gateway(engines="real", **CREDENTIALS)
    data = _pcm(load_wav(LONG)[: int(EXCERPT_S * 16000)])
    truth = "".join(re.split(r"(?<=。)", reference(LONG))[:4])
    plain = await nlsa.transcribe(
        data, url=gw.url, appkey="zh-app", token="t", enable_punctuation_prediction=True
    )
    # No pause here reaches max_sentence_silence: the VAD alone ends no sentence, and only
    # the 20 s limit (transcriber.MAX_DECODE_MS) splits the excerpt at its best pause.
    assert len(plain) <= 2

    ends, stopped, arrived = await _paced_transcription(
        gw.url,
        data,
        speed=2.0,
        enable_semantic_sentence_detection=True,
        enable_intermediate_result=True,
        enable_punctuation_prediction=True,
        enable_words=True,
    )
    for e in ends:
        print(e.index, e.begin_time, e.time, e.result)
    assert 3 <= len(ends) <= 6
    print("first end before the stop by", stopped - arrived[0])
    assert arrived[0] < stopped  # broken while the audio streams, not at the end
    assert [e.index for e in ends] == list(range(1, len(ends) + 1))
    assert all(e.result[-1] in "。？！" for e in ends)
    for before, after in zip(ends, ends[1:], strict=False):
        assert after.begin_time == before.time  # the cut: no audio lost or kept twice
    for e in ends:
        assert e.words and all(
            e.begin_time - 100 <= w["startTime"] <= w["endTime"] <= e.time + 100 for w in e.words
        )
    text, whole = "".join(e.result for e in ends), "".join(e.result for e in plain)
    # A cut that loses or repeats speech changes how many characters come back; which
    # characters Whisper base writes for a sentence changes with where its clip starts and
    # ends (3.08-8.6 s of this file decodes as 数月渐渐变红, 3.08-9.0 s as 树叶渐渐变红), and
    # every semantic piece starts at a cut: substitutions get a wider margin than losses.
    assert (
        abs(len(chars(text)) - len(chars(truth))) <= abs(len(chars(whole)) - len(chars(truth))) + 2
    )
    assert cer(truth, text) <= cer(truth, whole) + 0.1
    assert cer(truth, text) < 0.35


async def _spoken(url: str, text: str, voice: str, appkey: str) -> bytes:
    """``text`` said by the gateway's synthesizer, as 16 kHz pcm."""
    return await nlsa.synthesize(
        text, url=url, appkey=appkey, token="t", voice=voice, format="pcm", sample_rate=16000
    )


async def test_disfluency_removes_mandarin_fillers(gateway: Any) -> None:
    gw = await gateway(engines="real", **CREDENTIALS)
    data = await _spoken(gw.url, "嗯，那个，我们先讨论一下销售问题。", "xiaogang", "zh-app")
    params = {"enable_punctuation_prediction": True, "enable_words": True}
    (plain,) = await nlsa.transcribe(data, url=gw.url, appkey="zh-app", token="t", **params)
    (clean,) = await nlsa.transcribe(
        data, url=gw.url, appkey="zh-app", token="t", disfluency=True, **params
    )
    print(plain.result, "→", clean.result)
    fillers = ("嗯", "那个")
    assert plain.result.startswith(fillers)  # Whisper heard the filler(s)
    assert not clean.result.startswith((*fillers, "，"))
    assert "讨论" in clean.result and cer("我们先讨论一下销售问题", clean.result) < 0.2
    heard = [w["text"] for w in plain.words]
    leading = next(i for i, word in enumerate(heard) if word not in fillers)
    assert leading >= 1
    assert [w["text"] for w in clean.words] == heard[leading:]


async def test_disfluency_removes_english_fillers(gateway: Any) -> None:
    gw = await gateway(engines="real", **CREDENTIALS)
    said = "Well, um, the meeting is, uh, moved to Friday."
    data = await _spoken(gw.url, said, "william", "en-app")
    params = {"enable_punctuation_prediction": True, "enable_words": True}
    (plain,) = await nlsa.transcribe(data, url=gw.url, appkey="en-app", token="t", **params)
    (clean,) = await nlsa.transcribe(
        data, url=gw.url, appkey="en-app", token="t", disfluency=True, **params
    )
    print(plain.result, "→", clean.result)
    fillers = re.compile(r"\b(um|uh)\b", re.IGNORECASE)
    assert len(fillers.findall(plain.result)) == 2  # Whisper heard both
    assert not fillers.findall(clean.result)
    assert wer("well the meeting is moved to friday", clean.result) <= 0.15
    assert not any(fillers.fullmatch(w["text"]) for w in clean.words)
    assert len(clean.words) == len(plain.words) - 2


async def test_disfluency_keeps_words_in_real_meeting_speech(gateway: Any) -> None:
    # Spontaneous far-field speech: its 这个 / 就是 are words here (这个经理), so
    # disfluency may only take fillers out, never text around them (the recognizer, with
    # the flag in the official ``ex``).
    gw = await gateway(engines="real", **CREDENTIALS)
    data = _pcm(load_wav(MEETING))
    common = {"url": gw.url, "appkey": "zh-app", "token": "t"}
    plain = await nlsa.recognize(data, enable_punctuation_prediction=True, **common)
    clean = await nlsa.recognize(
        data, enable_punctuation_prediction=True, ex={"disfluency": True}, **common
    )
    print(plain, "→", clean)
    assert cer(reference(MEETING), plain) < 0.5
    gone = re.sub(r"[嗯呃额啊哦，。？！、\s]|那个|这个|就是", "", plain)
    assert re.sub(r"[，。？！、\s]|那个|这个|就是", "", clean) == gone
    assert "这个" in clean
