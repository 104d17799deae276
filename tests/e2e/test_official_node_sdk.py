"""The official Node.js SDK (npm ``alibabacloud-nls`` 1.0.4, pinned in
``tests/e2e/node/package-lock.json`` and installed by scripts/env.sh) against our gateway
with real engines on real speech: recognition, transcription and synthesis, unchanged.

It shows that a client in another language, with its own WebSocket library (``ws``), its
own ids and its keepalive pings, cannot tell the gateway from the cloud.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import wave
from pathlib import Path
from typing import Any

import pytest

from evaldata import EVAL_DIR, cer

NODE_DIR = Path(__file__).with_name("node")
SPOKEN = "欢迎大家来体验达摩院推出的语音识别模型"


@pytest.mark.timeout(240)
async def test_official_node_sdk_recognizes_transcribes_and_synthesizes(
    gateway: Any, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed (scripts/env.sh installs it)"
    assert (NODE_DIR / "node_modules" / "alibabacloud-nls").is_dir(), "run scripts/env.sh"
    gw = await gateway(engines="real", token=["node-token"], appkey=["node-app"])
    with wave.open(str(EVAL_DIR / "zh_dev_06_funasr_asr_example_zh.wav"), "rb") as w:
        (tmp_path / "speech.pcm").write_bytes(w.readframes(w.getnframes()))
    tts_file = tmp_path / "tts.wav"
    proc = await asyncio.create_subprocess_exec(
        node,
        str(NODE_DIR / "official_sdk.js"),
        gw.url,
        "node-app",
        "node-token",
        str(tmp_path / "speech.pcm"),
        str(tts_file),
        cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 200)
    assert proc.returncode == 0, out.decode() + err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    events = {
        task: [r["event"] for r in lines if r["task"] == task] for task in ("sr", "st", "tts")
    }
    assert not any("failed" in names for names in events.values()), lines

    def messages(task: str, event: str) -> list[dict[str, Any]]:
        return [
            json.loads(r["message"]) for r in lines if r["task"] == task and r["event"] == event
        ]

    assert events["sr"][0] == "started" and "completed" in events["sr"], events["sr"]
    (completed,) = messages("sr", "completed")
    assert completed["header"]["status"] == 20000000
    assert cer(SPOKEN, completed["payload"]["result"]) <= 0.2

    assert events["st"][0] == "started" and "begin" in events["st"], events["st"]
    assert events["st"].index("completed") > events["st"].index("end")
    text = "".join(m["payload"]["result"] for m in messages("st", "end"))
    assert cer(SPOKEN, text) <= 0.2

    # "closed" follows the SDK's own ws.terminate() asynchronously; the script may exit first.
    tts_events = [e for e in events["tts"] if e != "closed"]
    assert tts_events.count("meta") >= 1 and tts_events[-1] == "completed", events["tts"]
    subtitles = [s for m in messages("tts", "meta") for s in m["payload"]["subtitles"]]
    assert subtitles and all(s["end_time"] >= s["begin_time"] for s in subtitles)
    with wave.open(str(tts_file), "rb") as w:  # the SDK's default format: 16 kHz WAV
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
    # A streamed WAV's header cannot know the length; count the samples after it.
    seconds = (tts_file.stat().st_size - 44) / 32000
    assert 1.0 < seconds < 6, seconds
