"""Where a decode's time goes: the real Whisper engine alone, no gateway.

Times one final (beam) and one partial (greedy) decode of prefixes of ``zh_dev_06`` and
batches of finals / partials of the whole clip, through ``WhisperEngine.transcribe`` /
``transcribe_batch`` (median of ``--runs``). This is the cost model behind the gateway's
scheduler and stream budget (BENCHMARKS.md, "Serving under load").

    python benchmarks/decode_cost.py [--runs 3]

Writes benchmarks/results/decode_cost.json and prints a table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from common import write_json  # noqa: E402

from evaldata import load_wav  # noqa: E402
from nls_gateway.config import ServerConfig, load_engines  # noqa: E402
from nls_gateway.engines.base import AsrOptions  # noqa: E402

CLIP = "zh_dev_06_funasr_asr_example_zh.wav"


def _median_s(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asr = load_engines(ServerConfig(engines="real")).asr
    assert asr is not None
    audio = load_wav(CLIP)
    final = AsrOptions(final=True, inverse_text_normalization=True, words=False)
    partial = AsrOptions(final=False, inverse_text_normalization=True, words=False)
    asr.transcribe(audio, final)  # load and warm up
    rows = []
    for seconds in (1.5, 3.0, 5.5):
        clip = audio[: int(seconds * 16000)]
        for kind, opts in (("final", final), ("partial", partial)):
            s = _median_s(lambda c=clip, o=opts: asr.transcribe(c, o), args.runs)
            rows.append({"kind": kind, "audio_s": seconds, "batch": 1, "seconds": s})
    for batch in (2, 4, 8):
        for kind, opts in (("final", final), ("partial", partial)):
            s = _median_s(
                lambda b=batch, o=opts: asr.transcribe_batch([audio] * b, [o] * b), args.runs
            )
            rows.append({"kind": kind, "audio_s": 5.5, "batch": batch, "seconds": s})
    print("| decode | audio s | batch | wall s | per segment s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        per = r["seconds"] / r["batch"]
        print(f"| {r['kind']} | {r['audio_s']} | {r['batch']} | {r['seconds']:.3f} | {per:.3f} |")
    out = write_json("decode_cost", {"clip": CLIP, "runs": args.runs, "rows": rows})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
