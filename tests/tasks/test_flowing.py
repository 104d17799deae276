from __future__ import annotations

import asyncio

import pytest

from nls.protocol import FlushText, RunSynthesis, StartSynthesis, StopSynthesis
from nls_gateway.tasks.base import Limits, TaskError
from nls_gateway.tasks.flowing import FlowingSynthesizer
from tasks.fakes import FakeContext, ScriptedTts


async def test_flowing_sentences_in_order(make_ctx, tts: ScriptedTts) -> None:
    ctx: FakeContext = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, StartSynthesis(session_id="s1"))
    await handler.on_start()
    for piece in ["你好，", "世界。今", "天天气", "很好！明天", "见"]:
        await handler.on_command(RunSynthesis(text=piece))
    await handler.on_stop()
    await handler.close()
    assert ctx.payloads("SynthesisStarted") == [{"session_id": "s1"}]
    assert tts.texts == ["你好，世界。", "今天天气很好！", "明天见"]
    names = [n for n in ctx.log if n != "audio"]
    assert names == ["SynthesisStarted"] + ["SentenceBegin", "SentenceEnd"] * 3 + [
        "SynthesisCompleted"
    ]
    assert [p["index"] for p in ctx.payloads("SentenceBegin")] == [1, 2, 3]
    # Audio sits between each SentenceBegin and its SentenceEnd.
    first = ctx.log.index("SentenceBegin")
    assert ctx.log[first + 1] == "audio"
    assert ctx.payloads("SentenceEnd")[0] == {}
    assert handler.done


async def test_flowing_session_id_generated_and_volumn_accepted(make_ctx) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    cmd = StartSynthesis.from_payload({"voice": "xiaoyun", "volumn": 80})
    assert cmd.volume == 80
    handler = FlowingSynthesizer(ctx, cmd)
    await handler.on_start()
    await handler.on_stop()
    await handler.close()
    assert len(ctx.payloads("SynthesisStarted")[0]["session_id"]) == 32
    assert ctx.names() == ["SynthesisStarted", "SynthesisCompleted"]


async def test_flowing_flush_text_synthesizes_pending(make_ctx, tts: ScriptedTts) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, StartSynthesis())
    await handler.on_start()
    await handler.on_command(RunSynthesis(text="没有句号的文本"))
    await asyncio.sleep(0.05)
    assert "SentenceBegin" not in ctx.names()
    await handler.on_command(FlushText())
    for _ in range(200):
        if "SentenceEnd" in ctx.names():
            break
        await asyncio.sleep(0.005)
    assert tts.texts == ["没有句号的文本"]
    await handler.on_stop()
    await handler.close()
    assert ctx.names()[-1] == "SynthesisCompleted"


async def test_flowing_subtitles(make_ctx) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, StartSynthesis(enable_subtitle=True))
    await handler.on_start()
    await handler.on_command(RunSynthesis(text="你好，世界。再见。"))
    await handler.on_stop()
    await handler.close()
    incremental = ctx.payloads("SentenceSynthesis")
    assert [[e["text"] for e in p["subtitles"]] for p in incremental] == [
        ["你", "好"],
        ["世", "界"],
        ["再", "见"],
    ]
    ends = ctx.payloads("SentenceEnd")
    whole = ends[0]["subtitles"]
    assert whole[0]["sentence"] is True and whole[0]["text"] == "你好，世界。"
    assert [e["text"] for e in whole[1:]] == ["你", "好", "世", "界"]
    assert set(whole[1]) == {
        "text",
        "begin_time",
        "end_time",
        "begin_index",
        "end_index",
        "sentence",
        "phoneme_list",
    }
    # Indexes within the sentence; times from the task's audio start (50 ms/char).
    assert ends[1]["subtitles"][1]["begin_index"] == 0
    assert ends[1]["subtitles"][1]["begin_time"] == 300


async def test_flowing_total_text_limit(make_ctx) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer", limits=Limits(max_long_tts_chars=10))
    handler = FlowingSynthesizer(ctx, StartSynthesis())
    await handler.on_start()
    await handler.on_command(RunSynthesis(text="一二三四五"))
    with pytest.raises(TaskError) as err:
        await handler.on_command(RunSynthesis(text="六七八九十。"))
    assert err.value.status == 40010003
    await handler.close()


@pytest.mark.parametrize(
    ("cmd", "status"),
    [
        (StartSynthesis(voice="nobody"), 40000003),
        (StartSynthesis(format="aac"), 40000003),
        (StartSynthesis(sample_rate=96000), 40000003),
        (StartSynthesis(volume=-1), 40000003),
    ],
)
async def test_flowing_start_validation(make_ctx, cmd: StartSynthesis, status: int) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, cmd)
    with pytest.raises(TaskError) as err:
        await handler.on_start()
    await handler.close()
    assert err.value.status == status
    assert ctx.events == []


async def test_flowing_rejects_other_commands(make_ctx) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, StartSynthesis())
    await handler.on_start()
    with pytest.raises(TaskError) as err:
        await handler.on_command(StopSynthesis())
    assert err.value.status == 40010003
    await handler.close()


async def test_flowing_close_cancels_background(make_ctx, tts: ScriptedTts) -> None:
    ctx = make_ctx("FlowingSpeechSynthesizer")
    handler = FlowingSynthesizer(ctx, StartSynthesis())
    await handler.on_start()
    await handler.on_command(RunSynthesis(text="一句话。" * 100))
    while not ctx.audio:
        await asyncio.sleep(0.001)
    await handler.close()
    pulled = tts.pulled
    await asyncio.sleep(0.05)
    assert tts.pulled == pulled < 100
    assert "SynthesisCompleted" not in ctx.names()
