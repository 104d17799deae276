"""``nls serve`` / ``python -m nls_gateway``: start, answer, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from websockets.asyncio.client import connect

from nls.protocol import new_id
from server.scripted import command, recv_event

SRC = Path(__file__).resolve().parents[2] / "src"


async def test_serve_runs_a_task_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for name in ("NLS_APP_KEY", "NLS_TOKEN", "ALIYUN_AK_ID", "ALIYUN_AK_SECRET"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nls_gateway",
        "serve",
        "--port",
        "0",
        "--engines",
        "scripted",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "gateway exited before it was ready"
            match = re.search(r"ready on (ws://\S+)", line)
            url = match.group(1) if match else None
        async with connect(url) as ws:
            task = new_id()
            await ws.send(
                command(
                    "StartSynthesis",
                    task,
                    namespace="SpeechSynthesizer",
                    payload={"text": "你好。", "voice": "xiaoyun"},
                )
            )
            names = []
            while not names or names[-1] != "SynthesisCompleted":
                names.append((await recv_event(ws))["header"]["name"])
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_serve_refuses_public_address_without_credentials():
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    for name in ("NLS_APP_KEY", "NLS_TOKEN", "ALIYUN_AK_ID", "ALIYUN_AK_SECRET"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nls_gateway",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b"without credentials" in err
