"""ASR latency and density through the gateway (real engines, our asyncio SDK, 1× pace).

* One-sentence (SpeechRecognizer): a 5.5 s clip sent at real-time pace in 100 ms frames
  with intermediate results; measures the first partial after speech starts and the final
  result after StopRecognition (p50/p95 over ``--runs``).
* Transcriber density (SpeechTranscriber): K concurrent live streams of a 49 s recording
  at 1×; for each sentence, how long after its audio ended the SentenceEnd arrived (p95),
  and the longest gap between partial results while speech continues. The largest K
  within the bounds (SentenceEnd ≤ 1 s p95, partials at least every 1 s) is the density.

Targets (issue): final ≤ 300 ms p50 after Stop; first partial ≤ 1 s after speech starts;
≥ 4 concurrent live zh streams within the bounds.

    python benchmarks/asr_latency.py [--runs 5] [--streams 1 2 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import percentile, summary_ms, write_json  # noqa: E402

import nls.asyncio as nlsa  # noqa: E402
from nls.protocol import (  # noqa: E402
    RecognitionCompleted,
    RecognitionResultChanged,
    SentenceEnd,
    TranscriptionResultChanged,
)
from nls_gateway.config import ServerConfig, load_engines  # noqa: E402
from nls_gateway.server import serve  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("NLS_EVAL_DIR") or ROOT.parent / "shared" / "eval")
ONE = "zh_dev_06_funasr_asr_example_zh.wav"
LONG = "zh_dev_long_01_concat.wav"
FRAME_S = 0.1
FRAME = int(16000 * 2 * FRAME_S)


def _pcm(name: str) -> bytes:
    with wave.open(str(EVAL / name), "rb") as w:
        return w.readframes(w.getnframes())


def _speech_start_s(pcm: bytes, threshold: int = 500) -> float:
    """Time of the first 10 ms block whose peak exceeds ``threshold`` (speech onset)."""
    for i in range(0, len(pcm), 320):
        block = memoryview(pcm[i : i + 320]).cast("h")
        if max((abs(v) for v in block), default=0) > threshold:
            return i / 32000
    return 0.0


async def _paced(session: Any, pcm: bytes, t0: float) -> None:
    for k, offset in enumerate(range(0, len(pcm), FRAME)):
        await asyncio.sleep(max(0.0, t0 + k * FRAME_S - time.perf_counter()))
        await session.send_audio(pcm[offset : offset + FRAME])


async def one_sentence(url: str, runs: int) -> dict[str, Any]:
    pcm = _pcm(ONE)
    onset = _speech_start_s(pcm)
    first_partial, final = [], []
    for _ in range(runs):
        async with nlsa.AsyncSpeechRecognizer(
            url, appkey="zh", token="t", enable_intermediate_result=True
        ) as sr:
            t0 = time.perf_counter()
            seen: dict[str, float] = {}

            async def watch(sr: Any = sr, seen: dict[str, float] = seen) -> None:
                async for event in sr.events():
                    if isinstance(event, RecognitionCompleted):
                        seen["final"] = time.perf_counter()
                    elif isinstance(event, RecognitionResultChanged) and event.result:
                        seen.setdefault("partial", time.perf_counter())

            watcher = asyncio.create_task(watch())
            await _paced(sr, pcm, t0)
            stop_sent = time.perf_counter()
            await sr.finish(timeout=30)
            await watcher
            final.append(seen["final"] - stop_sent)
            if "partial" in seen:
                first_partial.append(seen["partial"] - (t0 + onset))
    return {
        "clip": ONE,
        "runs": runs,
        "final_after_stop": summary_ms(final),
        "first_partial_after_speech_start": summary_ms(first_partial),
        "runs_with_partials": len(first_partial),
    }


async def _stream(url: str, pcm: bytes, t0: float) -> dict[str, list[float]]:
    ends: list[float] = []
    gaps: list[float] = []
    async with nlsa.AsyncSpeechTranscriber(
        url, appkey="zh", token="t", enable_intermediate_result=True
    ) as st:

        async def watch() -> None:
            last: float | None = None
            async for event in st.events():
                now = time.perf_counter()
                if isinstance(event, TranscriptionResultChanged):
                    if last is not None:
                        gaps.append(now - last)
                    last = now
                elif isinstance(event, SentenceEnd):
                    # The sentence's audio ended at t0 + time (1× pace).
                    ends.append(now - (t0 + event.time / 1000))
                    last = None

        watcher = asyncio.create_task(watch())
        await _paced(st, pcm, t0)
        await st.finish(timeout=60)
        await watcher
    return {"ends": ends, "gaps": gaps}


async def density(url: str, streams: list[int]) -> list[dict[str, Any]]:
    pcm = _pcm(LONG)
    rows = []
    for k in streams:
        t0 = time.perf_counter() + 0.2
        results = await asyncio.gather(*(_stream(url, pcm, t0) for _ in range(k)))
        ends = [e for r in results for e in r["ends"]]
        gaps = [g for r in results for g in r["gaps"]]
        p95_end = percentile(ends, 95)
        max_gap = max(gaps, default=float("nan"))
        rows.append(
            {
                "streams": k,
                "sentences": len(ends),
                "sentence_end_delay": summary_ms(ends),
                "partial_gap": summary_ms(gaps),
                "within_bounds": p95_end <= 1.0 and max_gap <= 1.0,
            }
        )
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    engines = await asyncio.to_thread(load_engines, ServerConfig(engines="real"))
    # Density is measured past the default stream budget, so admission must not refuse.
    config = ServerConfig(host="127.0.0.1", port=0, max_concurrent_tasks=64, max_live_streams=64)
    async with serve(config, engines=engines) as gw:
        await gw.wait_ready()
        one = await one_sentence(gw.url, args.runs)
        rows = await density(gw.url, args.streams)
    return {"one_sentence": one, "transcriber_density": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    result = asyncio.run(run(args))
    one = result["one_sentence"]
    print("| measure | p50 ms | p95 ms | target |")
    print("|---|---:|---:|---|")
    print(
        f"| final after Stop | {one['final_after_stop']['p50_ms']} | "
        f"{one['final_after_stop']['p95_ms']} | ≤ 300 ms p50 |"
    )
    fp = one["first_partial_after_speech_start"]
    print(f"| first partial after speech start | {fp['p50_ms']} | {fp['p95_ms']} | ≤ 1000 ms |")
    print()
    print("| live streams | sentences | SentenceEnd delay p95 ms | max partial gap ms | ok |")
    print("|---:|---:|---:|---:|---|")
    for row in result["transcriber_density"]:
        print(
            f"| {row['streams']} | {row['sentences']} | {row['sentence_end_delay']['p95_ms']} | "
            f"{row['partial_gap']['max_ms']} | {'yes' if row['within_bounds'] else 'no'} |"
        )
    ok = [r["streams"] for r in result["transcriber_density"] if r["within_bounds"]]
    result["density"] = max(ok, default=0)
    print(f"\ndensity (largest K within bounds): {result['density']} (target ≥ 4)")
    print(f"wrote {write_json('asr_latency', result)}")


if __name__ == "__main__":
    main()
