"""ASR accuracy and speed of the Whisper engine on every labelled file of ../shared/eval.

Scores zh by CER and en by WER after ``asr_zh.scoring_form`` (simplified script, Arabic
digits spelt as Chinese numerals, punctuation and case removed). Files whose manifest
note says "UNCERTAIN reference" are reported separately, and the long concatenations
apart from the short dev clips. Prints a table and writes JSON with machine information
to benchmarks/results/asr_accuracy.json. Runs offline; one model load, then one
transcribe() per file (after one warm-up call); the long files go through the VAD
segmenter first and their sentences are decoded with one transcribe_batch() call.

Usage: python benchmarks/asr_accuracy.py [--beam N] [--lm-weight W] [--no-homophone-repair]
       [--eval-dir DIR] [--partial]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from nls_gateway import modelstore
from nls_gateway.engines.base import AsrOptions, AsrResult
from nls_gateway.engines.silero_vad import SileroVad
from nls_gateway.engines.text.asr_zh import scoring_errors
from nls_gateway.engines.whisper import DEFAULT_BEAM_SIZE, LM_WEIGHT, WhisperEngine
from nls_gateway.segmenter import Segmenter, SegmenterConfig, SpeechEnded
from nls_gateway.tasks.transcriber import MAX_DECODE_MS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EVAL = Path(os.environ.get("NLS_EVAL_DIR") or ROOT / ".." / "shared" / "eval")
OUT = ROOT / "benchmarks" / "results" / "asr_accuracy.json"
TARGETS = {"zh": 0.08, "en": 0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument(
        "--beam", type=int, default=DEFAULT_BEAM_SIZE, help="beam size for final results"
    )
    parser.add_argument(
        "--lm-weight", type=float, default=LM_WEIGHT, help="zh word-LM weight (0: off)"
    )
    parser.add_argument(
        "--no-homophone-repair",
        action="store_true",
        help="zh n-best ranked by the unigram LM only (no trigram respelling)",
    )
    parser.add_argument("--partial", action="store_true", help="decode as partials (greedy)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    load_start = time.perf_counter()
    engine = WhisperEngine(
        locate=modelstore.locate,
        beam_size=args.beam,
        lm_weight=args.lm_weight,
        homophone_repair=not args.no_homophone_repair,
    )
    engine.preload(("zh", "en"))
    load_s = time.perf_counter() - load_start
    vad = SileroVad()
    rows = _manifest(args.eval_dir)
    # Warm-up: the first CTranslate2 call allocates its buffers.
    engine.transcribe(_load(args.eval_dir / rows[0]["file"]), AsrOptions(rows[0]["language"]))

    results = []
    for row in rows:
        audio = _load(args.eval_dir / row["file"])
        options = AsrOptions(language=row["language"], final=not args.partial)
        start = time.perf_counter()
        if _group(row) == "long":
            # As the gateway does it: VAD-segment the stream, decode the sentences in one
            # batch call, join the texts.
            result = _segmented(engine, vad, audio, options)
        else:
            result = engine.transcribe(audio, options)
        elapsed = time.perf_counter() - start
        errors, length = scoring_errors(result.text, row["reference_text"], row["language"])
        results.append(
            {
                "file": row["file"],
                "language": row["language"],
                "group": _group(row),
                "duration_s": round(audio.size / 16000, 3),
                "time_s": round(elapsed, 3),
                "rtf": round(elapsed / (audio.size / 16000), 4),
                "errors": errors,
                "ref_len": length,
                "error_rate": round(errors / length, 4),
                "hypothesis": result.text,
                "reference": row["reference_text"],
            }
        )
        print(
            f"{row['file'][:44]:44} {row['language']} {results[-1]['group']:9} "
            f"{results[-1]['error_rate']:6.1%} {elapsed:6.3f}s rtf {results[-1]['rtf']:.3f}  "
            f"{result.text[:60]}"
        )

    summary = _summary(results)
    print()
    for name, item in summary.items():
        target = item.get("target")
        verdict = (
            "" if target is None else (" meets" if item["error_rate"] <= target else " misses")
        )
        print(
            f"{name:22} {item['metric']} {item['error_rate']:6.1%} over {item['files']} files"
            f" (target {target if target is not None else '-'}){verdict};"
            f" median {item['median_time_s']:.3f}s, RTF {item['rtf']:.3f}"
        )
    report = {
        "machine": _machine(),
        "settings": {
            "beam_final": args.beam,
            "lm_weight": args.lm_weight,
            "homophone_repair": not args.no_homophone_repair,
            "partial": args.partial,
            "load_s": round(load_s, 2),
        },
        "summary": summary,
        "files": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


def _segmented(
    engine: WhisperEngine, vad: SileroVad, audio: np.ndarray[Any, Any], options: AsrOptions
) -> AsrResult:
    # The transcriber's split limit, so long pauseless speech is cut where the gateway cuts it.
    segmenter = Segmenter(
        vad.create_stream(), config=SegmenterConfig(max_sentence_ms=MAX_DECODE_MS)
    )
    events = segmenter.accept_waveform(audio) + segmenter.flush()
    pieces = [e.audio for e in events if isinstance(e, SpeechEnded)]
    results = engine.transcribe_batch(pieces, [options] * len(pieces))
    sep = "" if options.language == "zh" else " "
    return AsrResult(sep.join(r.text for r in results if r.text), language=options.language)


def _manifest(eval_dir: Path) -> list[dict[str, str]]:
    with (eval_dir / "manifest.tsv").open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["reference_text"].strip()]


def _group(row: dict[str, str]) -> str:
    if "UNCERTAIN reference" in row["notes"]:
        return "uncertain"
    return "long" if "_long_" in row["file"] else "dev"


def _load(path: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    with wave.open(str(path)) as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected 16 kHz mono")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def _summary(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for language in ("zh", "en"):
        for group in ("dev", "uncertain", "long"):
            items = [r for r in results if r["language"] == language and r["group"] == group]
            if not items:
                continue
            errors = sum(r["errors"] for r in items)
            length = sum(r["ref_len"] for r in items)
            out[f"{language}_{group}"] = {
                "metric": "CER" if language == "zh" else "WER",
                "files": len(items),
                "error_rate": round(errors / length, 4),
                "mean_file_error_rate": round(statistics.mean(r["error_rate"] for r in items), 4),
                "median_time_s": round(statistics.median(r["time_s"] for r in items), 3),
                "rtf": round(
                    sum(r["time_s"] for r in items) / sum(r["duration_s"] for r in items), 4
                ),
                "target": TARGETS[language] if group == "dev" else None,
            }
    return out


def _machine() -> dict[str, Any]:
    import ctranslate2
    import faster_whisper

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "ctranslate2": ctranslate2.__version__,
        "faster_whisper": faster_whisper.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


if __name__ == "__main__":
    main()
