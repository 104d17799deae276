"""The official alibabacloud-nls-python-sdk 1.0.2, unchanged, against our gateway with real
engines on real speech (issue: the official clients cannot tell the gateway from the cloud).

The official package is also named ``nls``, so it runs in its own process with only its
install directory (``$NLS_OFFICIAL_SDK_DIR``, made by scripts/env.sh) on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import wave
from pathlib import Path
from typing import Any

import av
import pytest

from evaldata import EVAL_DIR, ROOT, cer

OFFICIAL = Path(os.environ.get("NLS_OFFICIAL_SDK_DIR") or ROOT / ".venv" / "official-nls-sdk")
SPOKEN = "欢迎大家来体验达摩院推出的语音识别模型"


@pytest.mark.timeout(240)
async def test_official_sdk_recognizes_and_synthesizes(gateway: Any, tmp_path: Path) -> None:
    assert (OFFICIAL / "nls" / "__init__.py").is_file(), f"run scripts/env.sh: {OFFICIAL}"
    gw = await gateway(engines="real", token=["official-token"], appkey=["official-app"])
    with wave.open(str(EVAL_DIR / "zh_dev_06_funasr_asr_example_zh.wav"), "rb") as w:
        (tmp_path / "speech.pcm").write_bytes(w.readframes(w.getnframes()))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("official_client.py")),
        gw.url,
        "official-token",
        "official-app",
        str(tmp_path / "speech.pcm"),
        str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(OFFICIAL)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 200)
    assert proc.returncode == 0, err.decode()
    results = {r["task"]: r for r in map(json.loads, out.decode().splitlines())}

    rec = [name for name, _ in results["recognizer"]["calls"]]
    assert rec[0] == "start" and "completed" in rec and "error" not in rec, rec
    completed = next(args for name, args in results["recognizer"]["calls"] if name == "completed")
    assert completed[1:] == ["r"]
    assert cer(SPOKEN, json.loads(completed[0])["payload"]["result"]) <= 0.2

    tr = results["transcriber"]["calls"]
    names = [name for name, _ in tr]
    assert names[0] == "start" and "begin" in names and "completed" in names, names
    assert "error" not in names
    text = "".join(json.loads(a[0])["payload"]["result"] for n, a in tr if n == "end")
    assert cer(SPOKEN, text) <= 0.2

    for task, fmt in (("tts-False-pcm", "pcm"), ("tts-True-wav", "wav"), ("tts-False-mp3", "mp3")):
        result = results[task]
        names = [name for name, _ in result["calls"]]
        assert result["ok"] is not False and "completed" in names and "error" not in names
        assert "metainfo" in names
        data = Path(result["file"]).read_bytes()
        if fmt == "pcm":
            seconds = len(data) / 32000
        else:
            with av.open(result["file"]) as container:
                stream = container.streams.audio[0]
                assert stream.rate == 16000
                samples = sum(f.samples for f in container.decode(stream))
            seconds = samples / 16000
        assert 0.8 < seconds < 6, (task, seconds)
