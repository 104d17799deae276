"""END-TO-END (real engines): handlers with Whisper, Silero and Kokoro on real speech.

The handlers run through the gateway's own ``EngineRunner`` and a recording context;
audio is fed in 100 ms frames as fast as the handler takes it. These tests load the real
models (a few seconds once per module) and use ../shared/eval speech.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from evaldata import EVAL_DIR, edit_distance, load_wav, reference, segments
from nls.protocol import RunSynthesis, StartRecognition, StartSynthesis, StartTranscription
from nls_gateway import modelstore
from nls_gateway.engines import registry
from nls_gateway.engines.text.asr_zh import scoring_errors
from nls_gateway.runtime import EngineRunner
from nls_gateway.tasks import FlowingSynthesizer, Recognizer, Synthesizer, Transcriber
from nls_gateway.tasks.base import Engines, Project
from tasks.fakes import FakeContext, drive, frames

pytestmark = pytest.mark.timeout(120)


_MIRROR = Path(__file__).resolve().parents[3] / "shared" / "models"


@pytest.fixture(scope="module")
def engines() -> Iterator[Engines]:
    # Kokoro's voice files come from the project's model mirror (as scripts/env.sh sets it).
    saved = os.environ.get("NLS_MODEL_MIRROR")
    os.environ["NLS_MODEL_MIRROR"] = saved or str(_MIRROR)
    try:
        asr = registry.load_asr("whisper", locate=modelstore.locate)
        preload = getattr(asr, "preload", None)
        if callable(preload):
            preload()
        tts = registry.load_tts("kokoro", locate=modelstore.locate)
    finally:
        if saved is None:
            os.environ.pop("NLS_MODEL_MIRROR", None)
    yield Engines(asr=asr, vad=registry.load_vad("silero"), tts=tts)


@pytest.fixture
async def real_runner() -> AsyncIterator[EngineRunner]:
    runner = EngineRunner()
    yield runner
    runner.close()


def _pcm(name: str) -> bytes:
    return (np.clip(load_wav(name), -1, 1) * 32767).astype("<i2").tobytes()


def _cer(hyp: str, ref: str) -> float:
    def keep(s: str) -> list[str]:
        return [c for c in s if c.isalnum()]

    return edit_distance(keep(hyp), keep(ref)) / max(1, len(keep(ref)))


async def test_e2e_recognizer_zh_dev_06(engines: Engines, real_runner: EngineRunner) -> None:
    name = "zh_dev_06_funasr_asr_example_zh.wav"
    ctx = FakeContext(engines=engines, runner=real_runner)  # type: ignore[arg-type]
    handler = Recognizer(ctx, StartRecognition(enable_intermediate_result=True))
    await handler.on_start()
    for chunk in frames(_pcm(name)):
        await handler.on_audio(chunk)
    stop = time.monotonic()
    await handler.on_stop()
    latency = time.monotonic() - stop
    await handler.close()
    done = ctx.payloads("RecognitionCompleted")[0]
    print(f"recognizer: {done}, stop→completed {latency * 1000:.0f} ms")
    assert ctx.names()[0] == "RecognitionStarted"
    assert _cer(done["result"], reference(name)) < 0.3
    assert abs(done["duration"] - 5547) < 50


@pytest.mark.parametrize("name", ["zh_dev_long_01_concat.wav", "en_dev_long_01_concat.wav"])
async def test_e2e_transcriber_long_sentence_boundaries(
    engines: Engines, real_runner: EngineRunner, name: str
) -> None:
    # Issue 14: every reference segment is a SentenceEnd of its own (none lost, merged or
    # split), ending with its sentence mark, its times within 300 ms of the segment's.
    language = name[:2]
    project = Project(appkey="k", language=language)
    ctx = FakeContext(
        engines=engines, runner=real_runner, namespace="SpeechTranscriber", project=project
    )  # type: ignore[arg-type]
    cmd = StartTranscription(enable_words=True, enable_punctuation_prediction=True)
    started = time.monotonic()
    await drive(Transcriber(ctx, cmd), frames(_pcm(name)))
    elapsed = time.monotonic() - started
    ends = ctx.payloads("SentenceEnd")
    truth = segments(name)
    print(f"transcriber: {len(ends)} sentences in {elapsed:.1f} s of {name}")
    for e, (b, t) in zip(ends, truth, strict=False):
        print(e["index"], e["begin_time"] - b * 1000, e["time"] - t * 1000, e["result"])
    assert ctx.names()[-1] == "TranscriptionCompleted"
    assert len(ends) == len(truth)
    for end, (b, e) in zip(ends, truth, strict=True):
        # .segments.tsv gives the concatenated files' boundaries; a file may open with
        # silence, so the onset may come later than its boundary but never before it.
        assert b * 1000 - 300 <= end["begin_time"] < e * 1000
        assert abs(end["time"] - e * 1000) <= 300
        assert all(b * 1000 - 300 <= w["startTime"] <= e * 1000 + 300 for w in end["words"])
        assert end["result"][-1] in "。？！.?!", end["result"]
    errors, units = scoring_errors(" ".join(e["result"] for e in ends), reference(name), language)
    assert errors < (0.35 if language == "zh" else 0.1) * units


async def test_e2e_synthesizer_kokoro_first_audio(
    engines: Engines, real_runner: EngineRunner
) -> None:
    ctx = FakeContext(engines=engines, runner=real_runner, namespace="SpeechSynthesizer")  # type: ignore[arg-type]
    text = "北京今天温度已达零下十度。您好，欢迎使用智能语音交互服务，请问有什么可以帮您？"
    handler = Synthesizer(ctx, StartSynthesis(text=text, format="wav", enable_subtitle=True))
    started = time.monotonic()
    await handler.on_start()
    first = None
    while not handler.done and not ctx.failures:
        if first is None and ctx.audio:
            first = time.monotonic() - started
        await asyncio.sleep(0.005)
    total = time.monotonic() - started
    await handler.close()
    assert not ctx.failures
    data = b"".join(ctx.audio)
    seconds = (len(data) - 44) / 32000
    first_ms = (first or 0) * 1000
    print(f"synthesizer: first audio {first_ms:.0f} ms, total {total:.2f} s, {seconds:.1f} s audio")
    assert data[:4] == b"RIFF" and seconds > 3
    metas = ctx.payloads("MetaInfo")
    assert metas and metas[-1]["subtitles"][0]["sentence"] is True
    assert metas[-1]["subtitles"][-1]["end_time"] <= seconds * 1000 + 50


async def test_e2e_flowing_kokoro(engines: Engines, real_runner: EngineRunner) -> None:
    ctx = FakeContext(engines=engines, runner=real_runner, namespace="FlowingSpeechSynthesizer")  # type: ignore[arg-type]
    handler = FlowingSynthesizer(ctx, StartSynthesis(voice="xiaoyun", sample_rate=24000))
    await handler.on_start()
    for piece in ["今天天气", "很好。我们", "去公园吧！"]:
        await handler.on_command(RunSynthesis(text=piece))
    await handler.on_stop()
    await handler.close()
    assert [p["index"] for p in ctx.payloads("SentenceBegin")] == [1, 2]
    assert ctx.names()[-1] == "SynthesisCompleted"
    assert sum(len(a) for a in ctx.audio) > 24000 * 2


def test_e2e_eval_dir_present() -> None:
    assert (EVAL_DIR / "manifest.tsv").exists(), "../shared/eval is missing"
