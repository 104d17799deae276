"""``nls transcribe`` in a real process: sentences reach a pipe as they finish.

One subprocess with the real engines transcribes the 48 s eval recording (sent at full
speed to its embedded gateway). Each stdout line is timestamped as it is read: the first
sentences must arrive well before the process ends, not all at once at exit.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from evaldata import EVAL_DIR, cer, segments

LONG = "zh_dev_long_01_concat.wav"


async def test_transcribe_streams_sentences_to_a_pipe_as_they_finish():
    env = {**os.environ}
    for name in ("NLS_URL", "NLS_TOKEN", "NLS_APP_KEY", "ALIYUN_AK_ID", "ALIYUN_AK_SECRET"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "nls_gateway",
        "transcribe",
        "--language",
        "zh",
        str(EVAL_DIR / LONG),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    arrivals: list[tuple[float, str]] = []
    try:
        while line := await asyncio.wait_for(proc.stdout.readline(), 50):
            arrivals.append((time.monotonic(), line.decode("utf-8").rstrip("\n")))
        err = await asyncio.wait_for(proc.stderr.read(), 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0, err.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    ended = time.monotonic()
    texts = [text for _, text in arrivals]
    assert len(texts) >= len(segments(LONG)) - 2, texts
    assert all(t.strip() and "\x1b" not in t for t in texts)  # plain lines on a pipe
    # Real speech, with its end mark. Not the exact text: Whisper base's two best beams
    # for this sentence (达摩愿 / 达摩院) are 0.13 nats apart, which a CPU's maths can flip.
    welcome = [t for t in texts if cer("欢迎大家来体验达摩院推出的语音识别模型", t) <= 0.1]
    assert len(welcome) == 1 and welcome[0].endswith("。"), texts
    # Streaming, not buffered to the end: the first sentence came long before the last,
    # and well before the process finished.
    first, last = arrivals[0][0], arrivals[-1][0]
    assert last - first > 2.0, arrivals
    assert ended - first > 2.0
    assert err == b""  # no progress bar or log noise when stderr is not a terminal
