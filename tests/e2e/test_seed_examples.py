"""The official example programs (examples/seeds/, verbatim from ../shared/seeds) run
unchanged against the gateway with real engines; only URL, credentials and appkey values
are replaced, and ``while True`` becomes two rounds."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import wave
from pathlib import Path

import pytest

from evaldata import EVAL_DIR, cer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "seeds"
SPOKEN = "欢迎大家来体验达摩院推出的语音识别模型"
AKID, AKSECRET, TOKEN, APPKEY = "testid", "testsecret", "static-test-token", "testappkey"


def _prepare(name: str, url: str, workdir: Path) -> Path:
    source = (EXAMPLES / f"{name}.py").read_text(encoding="utf-8")
    values = {"URL": url, "AKID": AKID, "AKKEY": AKSECRET, "TOKEN": TOKEN, "APPKEY": APPKEY}
    for key, value in values.items():
        source = re.sub(rf'^{key}="[^"]*"', f'{key}="{value}"', source, flags=re.M)
    source = source.replace("while True:", "for _round in range(2):")
    # NlsCommonProto has no blocking stop: the example sends StopRecognition and gives the
    # answer 1 s before its thread (and then the process) ends. A final from Whisper on a
    # busy 2-core CI box can take longer than that, so the grace grows to 5 s here.
    source = source.replace(
        'send_text(name="StopRecognition") \n            time.sleep(1)',
        'send_text(name="StopRecognition") \n            time.sleep(5)',
    )
    (workdir / "tests").mkdir(exist_ok=True)
    with wave.open(str(EVAL_DIR / "zh_dev_06_funasr_asr_example_zh.wav"), "rb") as w:
        (workdir / "tests" / "test1.pcm").write_bytes(w.readframes(w.getnframes()))
    script = workdir / f"{name}.py"
    script.write_text(source, encoding="utf-8")
    return script


async def _run(script: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=script.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    return text


@pytest.fixture
async def gateway_url(gateway):  # type: ignore[no-untyped-def]
    gw = await gateway(engines="real", token=[TOKEN], appkey=[APPKEY], access_keys={AKID: AKSECRET})
    return gw.url


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", ["recognizer_2025", "recognizer_001", "common_proto_001"])
async def test_recognizer_examples(name: str, gateway_url: str, tmp_path: Path) -> None:
    rounds = 2 if "while True" in (EXAMPLES / f"{name}.py").read_text() else 1
    out = await _run(_prepare(name, gateway_url, tmp_path))
    assert "on_error" not in out, out
    completed = [line for line in out.splitlines() if line.startswith("on_completed:")]
    assert len(completed) == rounds, out
    for line in completed:
        assert "args=>('thread0',)" in line
        result = re.search(r'"result":\s*"([^"]*)"', line)
        assert result is not None and cer(SPOKEN, result.group(1)) <= 0.2, line
    assert out.count("on_close: args=>('thread0',)") == rounds, out
    if name != "common_proto_001":
        assert out.count("thread0: sr stopped:True") == rounds, out


@pytest.mark.timeout(240)
async def test_transcriber_example(gateway_url: str, tmp_path: Path) -> None:
    out = await _run(_prepare("transcriber_001", gateway_url, tmp_path))
    assert "on_error" not in out, out
    assert out.count("test_on_start:") == 2
    ends = re.findall(r'test_on_sentence_end:.*"result":\s*"([^"]*)"', out)
    assert ends and cer(SPOKEN, "".join(ends[: len(ends) // 2])) <= 0.2, out
    assert out.count("thread0: sr stopped:True") == 2, out


@pytest.mark.timeout(240)
async def test_synthesizer_example(gateway_url: str, tmp_path: Path) -> None:
    out = await _run(_prepare("synthesizer_001", gateway_url, tmp_path))
    assert "on_error" not in out, out
    assert out.count("tts done with result:True") == 2, out
    assert (tmp_path / "tests" / "test_tts.pcm").stat().st_size > 16000 * 2 * 3
