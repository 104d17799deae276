"""Load generator for any NLS endpoint (our gateway or the cloud), driven by our SDK.

``--concurrency`` workers each run sessions back to back for ``--duration`` seconds, in
one namespace:

* ``recognizer`` / ``transcriber``: start, stream ``--audio`` (WAV or raw 16-bit PCM;
  default: 3 s of generated tone and silence) in 100 ms frames, paced at 1× unless
  ``--no-realtime``, stop, wait for ``*Completed``;
* ``synthesizer``: synthesize ``--text`` and read all audio.

Reports throughput (sessions/s, audio seconds per second), latency percentiles (start →
``*Started``, Stop → ``*Completed``, first audio for TTS, whole session) and errors by
status code (NLS status from TaskFailed, ``http 403`` for refused handshakes,
``connect`` / ``timeout``). Writes JSON with ``--out``.

Examples::

    python benchmarks/load.py --local --namespace transcriber --concurrency 50 --duration 30
    python benchmarks/load.py --url ws://127.0.0.1:8765/ws/v1 --token T --appkey K \\
        --namespace synthesizer --concurrency 8 --duration 60
    python benchmarks/load.py --url wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1 \\
        --akid $ALIYUN_AK_ID --aksecret $ALIYUN_AK_SECRET --appkey $NLS_APP_KEY \\
        --namespace recognizer --audio speech.wav --concurrency 2 --duration 60

``--local`` starts a scripted gateway (no models) on a free loopback port first.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import sys
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import summary_ms, write_json  # noqa: E402

from nls.asyncio import AsyncSpeechRecognizer, AsyncSpeechSynthesizer, AsyncSpeechTranscriber
from nls.exception import ConnectionUnavailable, NlsError, NlsTimeoutError, TaskFailedError

FRAME_MS = 100


def load_audio(path: str | None) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) from a WAV or raw PCM file, or 3 s generated."""
    if path is None:
        rate = 16000
        tone = b"".join(
            int(9000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
            for i in range(rate)
        )
        return tone + b"\0\0" * rate + tone[:rate], rate
    if path.lower().endswith(".wav"):
        with wave.open(path) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise SystemExit(f"{path}: need 16-bit mono WAV")
            return w.readframes(w.getnframes()), w.getframerate()
    return Path(path).read_bytes(), 16000


class Stats:
    def __init__(self) -> None:
        self.ok = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.audio_s = 0.0

    def error(self, exc: BaseException) -> None:
        if isinstance(exc, TaskFailedError):
            key = str(exc.status)
        elif isinstance(exc, ConnectionUnavailable):
            key = f"http {exc.http_status}" if exc.http_status else "connect"
        elif isinstance(exc, (NlsTimeoutError, TimeoutError)):
            key = "timeout"
        else:
            key = type(exc).__name__
        self.errors[key] += 1


async def asr_session(args: argparse.Namespace, pcm: bytes, rate: int, stats: Stats) -> None:
    cls = AsyncSpeechRecognizer if args.namespace == "recognizer" else AsyncSpeechTranscriber
    session = cls(
        args.url,
        appkey=args.appkey,
        token=args.token,
        akid=args.akid,
        aksecret=args.aksecret,
        format="pcm",
        sample_rate=rate,
        enable_intermediate_result=True,
        timeout=args.timeout,
    )
    loop = asyncio.get_running_loop()
    begin = loop.time()
    step = rate * 2 * FRAME_MS // 1000
    try:
        async with session:
            started = loop.time()
            stats.latency["start"].append(started - begin)
            events = asyncio.create_task(_drain(session))
            for i, offset in enumerate(range(0, len(pcm), step)):
                if session.completed is not None and session.completed.done():
                    break  # recognizer: the server's VAD ended the sentence
                await session.send_audio(pcm[offset : offset + step])
                if args.realtime:
                    await asyncio.sleep(max(0.0, started + (i + 1) * FRAME_MS / 1000 - loop.time()))
            stopping = loop.time()
            await session.finish(timeout=args.timeout)
            stats.latency["stop_to_completed"].append(loop.time() - stopping)
            events.cancel()
        stats.latency["session"].append(loop.time() - begin)
        stats.audio_s += len(pcm) / (2 * rate)
        stats.ok += 1
    except (NlsError, OSError, TimeoutError) as exc:
        stats.error(exc)


async def _drain(session: Any) -> None:
    try:
        async for _ in session.events():
            pass
    except NlsError:
        pass


async def tts_session(args: argparse.Namespace, stats: Stats) -> None:
    session = AsyncSpeechSynthesizer(
        args.url,
        appkey=args.appkey,
        token=args.token,
        akid=args.akid,
        aksecret=args.aksecret,
        long_tts=len(args.text) > 300,
    )
    loop = asyncio.get_running_loop()
    begin = loop.time()
    first: float | None = None
    size = 0
    try:
        async for chunk in session.stream(
            args.text, voice=args.voice, format="pcm", sample_rate=16000, timeout=args.timeout
        ):
            if first is None:
                first = loop.time()
                stats.latency["first_audio"].append(first - begin)
            size += len(chunk)
        stats.latency["session"].append(loop.time() - begin)
        stats.audio_s += size / 32000
        stats.ok += 1
    except (NlsError, OSError, TimeoutError) as exc:
        stats.error(exc)
    finally:
        await session.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pcm, rate = load_audio(args.audio)
    stats = Stats()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.duration

    async def worker() -> None:
        while loop.time() < deadline:
            if args.namespace == "synthesizer":
                await tts_session(args, stats)
            else:
                await asr_session(args, pcm, rate, stats)

    begin = loop.time()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    wall = loop.time() - begin
    total = stats.ok + sum(stats.errors.values())
    return {
        "url": args.url if "token=" not in args.url else "(hidden)",
        "namespace": args.namespace,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "realtime": args.realtime,
        "wall_s": round(wall, 2),
        "sessions": total,
        "completed": stats.ok,
        "sessions_per_s": round(stats.ok / wall, 2),
        "audio_s_per_s": round(stats.audio_s / wall, 2),
        "latency": {name: summary_ms(values) for name, values in stats.latency.items()},
        "errors": dict(stats.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="ws:// or wss:// endpoint (…/ws/v1)")
    parser.add_argument("--local", action="store_true", help="start a scripted gateway")
    parser.add_argument("--token")
    parser.add_argument("--akid")
    parser.add_argument("--aksecret")
    parser.add_argument("--appkey", default="default")
    parser.add_argument(
        "--namespace", choices=("recognizer", "transcriber", "synthesizer"), default="transcriber"
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--audio", help="WAV (16-bit mono) or raw 16 kHz PCM file")
    parser.add_argument("--text", default="今天天气很好，我们一起去公园散步吧。")
    parser.add_argument("--voice", default="xiaoyun")
    parser.add_argument("--no-realtime", dest="realtime", action="store_false")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    gateway = None
    if args.local:
        from nls_gateway.testing import GatewayProcess

        gateway = GatewayProcess(timeout=60.0, max_concurrent_tasks=10000, max_connections=10000)
        args.url = gateway.url
    if not args.url:
        parser.error("give --url (or --local)")
    if not args.token and not (args.akid and args.aksecret):
        args.token = "load-test"  # a local dev-mode gateway accepts any token
    try:
        result = asyncio.run(run(args))
    finally:
        if gateway is not None:
            gateway.close()
    print(
        f"{result['namespace']}: {result['completed']}/{result['sessions']} sessions in "
        f"{result['wall_s']} s — {result['sessions_per_s']} sessions/s, "
        f"{result['audio_s_per_s']} audio s/s, concurrency {result['concurrency']}"
    )
    for name, values in result["latency"].items():
        print(f"  {name:18} " + "  ".join(f"{k} {v}" for k, v in values.items()))
    print(f"  errors: {result['errors'] or 'none'}")
    if args.out:
        print(f"wrote {write_json('load', result, args.out)}")


if __name__ == "__main__":
    main()
