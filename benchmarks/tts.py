"""Kokoro TTS: time to first audio, real-time factor and round-trip intelligibility.

For a fixed sentence set (numbers, dates, times, a phone number, a percentage, a negative
temperature, mixed Chinese–English, plain English) this synthesizes every sentence with each
chosen NLS voice, measures the time until the first chunk arrives and the real-time factor
(synthesis time / audio duration), then transcribes the audio with the project's Whisper
engine as the gateway decodes finals (its default beam, homophone repair on) and scores
it: zh by CER, en by WER, both after ``asr_zh.scoring_form``.
Because a Chinese reader may say 2026年 as 二零二六年 and Whisper may write either digits or
hanzi, the zh reference is scored against both the written sentence and its spoken form
(our text normalisation) and the lower CER counts. Latency is measured separately, several
runs each, on one short and one long sentence (p50/p95). Prints a table and writes JSON with
machine information to benchmarks/results/tts.json.

"plain" is the round-trip error rate of a second set, twenty ordinary zh sentences (no digits
or Latin letters; en: the paragraph's sentences), reported beside the target set's, not in
its place: it separates how a voice sounds from how the front-end reads numbers and words.
"mixed" is a third set, zh only: twenty zh sentences with English words (Python, GitHub,
Starbucks …), scored the same way; it measures how a Mandarin voice reads English words
without leaning on the one such sentence of the target set.
"para" is the RTF of a paragraph of four sentences (later clauses are grouped).
"first/dur" is the first audio's p50 over the audio duration of a two-clause sentence
(今天天气不错，我们去公园散步吧。), the figure a voice bot feels.

Usage: python benchmarks/tts.py [--voices xiaoyun,xiaogang,abby] [--runs 5]
Targets: first audio ≤ 300 ms p50 (short), first/dur ≤ 0.15, RTF ≤ 0.35, CER ≤ 5 % zh,
WER ≤ 5 % en.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from nls_gateway import modelstore
from nls_gateway.engines import kokoro
from nls_gateway.engines.base import AsrOptions, TtsOptions
from nls_gateway.engines.text.asr_zh import scoring_errors
from nls_gateway.engines.text.tts_normalize import normalize
from nls_gateway.engines.whisper import DEFAULT_BEAM_SIZE, WhisperEngine

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tts.json"
TARGETS = {
    "first_audio_p50_ms": 300.0,
    "first_audio_ratio": 0.15,
    "rtf": 0.35,
    "cer_zh": 0.05,
    "wer_en": 0.05,
}

SENTENCES: dict[str, list[str]] = {
    "zh": [
        "今天天气很好，我们一起去公园散步吧。",
        "会议定于2026年11月22日下午14:30在三楼会议室召开。",
        "请拨打客服电话13800138000咨询。",
        "今年公司销售额增长了35%，利润达到1250万元。",
        "明天最低气温-5℃，请注意保暖。",
        "我们使用Python和WebSocket开发语音应用。",
        "北京时间今天上午十点整，我们在会议室召开全体员工大会。",
    ],
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "Please call me back at five thirty this afternoon.",
        "Speech synthesis converts written text into natural sounding audio.",
    ],
}
# Ordinary sentences (zh: no digits, units or Latin letters), scored apart ("plain").
PLAIN: dict[str, list[str]] = {
    "zh": [
        "欢迎大家来体验达摩院推出的语音识别模型。",
        "科学家们发现，这种新材料在高温下依然能保持稳定的性能。",
        "请各位乘客系好安全带，飞机即将起飞。",
        "我认为跑步最重要的就是给我带来了身体健康。",
        "这家餐厅的服务态度非常好，菜的味道也很不错。",
        "孩子们在操场上快乐地踢着足球。",
        "请您在听到提示音后留言，我们会尽快给您回复。",
        "图书馆每天早上八点开门，晚上十点关门。",
        "他每天坚持学习英语，进步非常明显。",
        "为了保护环境，我们应该减少使用塑料袋。",
        "这部电影讲述了一个感人的家庭故事。",
        "智能语音交互已经广泛应用于客服和导航。",
        "春天来了，公园里的花都开了。",
        "您的快递已经送到楼下的快递柜。",
        "银行将于下周一起调整存款利率。",
        "语音合成技术可以把文字转换成自然的声音。",
        "火车站的候车大厅里挤满了回家过年的人。",
        "今天天气很好，我们一起去公园散步吧。",
        "北京时间今天上午十点整，我们在会议室召开全体员工大会。",
        "明天最低气温零下五摄氏度，请注意保暖。",
    ],
    "en": [
        "Good morning, everyone.",
        "Today we will walk in the park, and then we will have lunch together.",
        "Please bring a jacket, because the weather may turn cold in the afternoon.",
        "See you soon.",
    ],
}
# zh sentences with English words in them, scored apart ("mixed"; zh voices only).
MIXED: dict[str, list[str]] = {
    "zh": [
        "我们使用Python和WebSocket开发语音应用。",
        "请用Java和Docker部署这个服务。",
        "这个项目用GitHub管理代码。",
        "我的电脑装了Windows和Linux两个系统。",
        "打开App，点击OK按钮。",
        "他在Google工作，负责AI产品。",
        "我们下周去Starbucks开会。",
        "请把文件发到我的Email。",
        "这款手机支持Bluetooth和WiFi。",
        "周末我们一起看了一部Disney的电影。",
        "她每天早上都喝一杯Coffee。",
        "请在Excel里整理一下数据。",
        "我们的服务器运行在Kubernetes上。",
        "这个问题可以问一下ChatGPT。",
        "他用Photoshop修改了这张图片。",
        "明天的Party你来不来？",
        "我买了一个新的Keyboard。",
        "我们的Team今年完成了很多任务。",
        "请打开Chrome浏览器。",
        "他在Tesla的工厂上班。",
    ],
}
SHORT = {"zh": "今天天气很好。", "en": "Good morning, everyone."}
# Issue 15's short sentence of two clauses: first audio / its audio duration (goal ≤ 0.15).
CLAUSES = {
    "zh": "今天天气不错，我们去公园散步吧。",
    "en": "Good morning, everyone, let us take a walk in the park.",
}
# A paragraph of several sentences: the RTF of long text, where clauses are grouped.
PARAGRAPH = {
    "zh": "今天天气很好，我们一起去公园散步吧。明天最低气温零下五摄氏度，请注意保暖。"
    "北京时间今天上午十点整，我们在会议室召开全体员工大会，讨论明年的计划。大家准时参加，不要迟到。",
    "en": "Good morning, everyone. Today we will walk in the park, and then we will have lunch"
    " together. Please bring a jacket, because the weather may turn cold in the afternoon."
    " See you soon.",
}
LONG = {
    "zh": "北京时间今天上午十点整我们在会议室召开全体员工大会讨论明年的计划。",
    "en": "Speech synthesis converts written text into natural sounding audio for everyone.",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default="xiaoyun,xiaogang,abby,andy")
    parser.add_argument("--runs", type=int, default=5, help="latency runs per sentence")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--asr-beam",
        type=int,
        default=DEFAULT_BEAM_SIZE,
        help="beam of the round trip's ASR (default: the gateway's for finals)",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    os.environ.setdefault("NLS_MODEL_MIRROR", str(ROOT.parent / "shared" / "models"))

    start = time.perf_counter()
    engine = kokoro.create(
        locate=modelstore.locate, threads=args.threads, cache_dir=modelstore.cache_dir()
    )
    load_s = time.perf_counter() - start
    asr = WhisperEngine(locate=modelstore.locate, beam_size=args.asr_beam)
    asr.preload(("zh", "en"))
    infos = {v.name: v for v in engine.voices()}
    voices = [infos[name] for name in args.voices.split(",")]
    list(engine.synthesize(SHORT["zh"], TtsOptions(voices[0].name)))  # warm-up

    rows: list[dict[str, Any]] = []
    for info in voices:
        latency = {
            kind: _latency(engine, text[info.language], info.name, args.runs)
            for kind, text in (("short", SHORT), ("long", LONG), ("clauses", CLAUSES))
        }
        synth_s = audio_s = 0.0
        details = []
        for sentence in SENTENCES[info.language]:
            detail, seconds, audio_seconds = _round_trip(
                engine, asr, sentence, info.name, info.language
            )
            synth_s += seconds
            # Audio is trimmed to speech plus pauses, so RTF is synthesis time over that.
            audio_s += audio_seconds
            details.append(detail)
        plain = [
            _round_trip(engine, asr, sentence, info.name, info.language)[0]
            for sentence in PLAIN[info.language]
        ]
        mixed = [
            _round_trip(engine, asr, sentence, info.name, info.language)[0]
            for sentence in MIXED.get(info.language, [])
        ]
        t0 = time.perf_counter()
        samples = sum(
            c.audio.size for c in engine.synthesize(PARAGRAPH[info.language], TtsOptions(info.name))
        )
        paragraph_rtf = (time.perf_counter() - t0) / (samples / kokoro.SAMPLE_RATE)
        rows.append(
            {
                "voice": info.name,
                "paragraph_rtf": paragraph_rtf,
                "engine_voice": info.engine_voice,
                "language": info.language,
                "first_audio_ms": latency,
                "rtf": synth_s / audio_s,
                "error_rate": _error_rate(details),
                "metric": "CER" if info.language == "zh" else "WER",
                "sentences": details,
                "plain_error_rate": _error_rate(plain),
                "plain_sentences": plain,
                "mixed_error_rate": _error_rate(mixed) if mixed else None,
                "mixed_sentences": mixed,
            }
        )
    _print(rows, load_s)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
        },
        "threads": args.threads,
        "load_s": load_s,
        "targets": TARGETS,
        "asr": f"Whisper engine, beam {args.asr_beam} (zh: base; en: per engine default)",
        "results": rows,
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"wrote {args.out}")


def _latency(engine: kokoro.KokoroEngine, text: str, voice: str, runs: int) -> dict[str, float]:
    """Time from the call to the first chunk, over ``runs`` runs (ms).

    ``speech_p50`` adds the silence at the head of that chunk: when a listener hears the
    first word, which is what a short first chunk is for.
    """
    times = []
    speech = []
    samples = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        chunks = engine.synthesize(text, TtsOptions(voice))
        first = next(iter(chunks))
        times.append((time.perf_counter() - t0) * 1000)
        speech.append(times[-1] + _lead_silence_ms(first.audio))
        samples = first.audio.size
        for chunk in chunks:  # let the generator finish so runs do not overlap
            samples += chunk.audio.size
    times.sort()
    p95_index = min(len(times) - 1, round(0.95 * (len(times) - 1)))
    duration_ms = samples * 1000 / kokoro.SAMPLE_RATE
    return {
        "p50": statistics.median(times),
        "p95": times[p95_index],
        "speech_p50": statistics.median(speech),
        "duration_ms": duration_ms,
        "ratio": statistics.median(times) / duration_ms,
    }


def _lead_silence_ms(audio: np.ndarray[Any, Any]) -> float:
    """Milliseconds before the first 10 ms window louder than −40 dBFS RMS."""
    frame = kokoro.SAMPLE_RATE // 100
    n = audio.size // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.01)
    return float(loud[0] * 10) if loud.size else 0.0


def _round_trip(
    engine: kokoro.KokoroEngine, asr: WhisperEngine, sentence: str, voice: str, language: str
) -> tuple[dict[str, Any], float, float]:
    """Synthesize ``sentence``, transcribe it, score it: (detail, synthesis s, audio s)."""
    t0 = time.perf_counter()
    audio = np.concatenate([c.audio for c in engine.synthesize(sentence, TtsOptions(voice))])
    seconds = time.perf_counter() - t0
    audio16 = soxr.resample(audio, kokoro.SAMPLE_RATE, 16000).astype(np.float32)
    heard = asr.transcribe(audio16, AsrOptions(language=language)).text
    err, n = _score(sentence, heard, language)
    detail = {"text": sentence, "heard": heard, "errors": err, "ref_len": n}
    return detail, seconds, audio.size / kokoro.SAMPLE_RATE


def _error_rate(details: list[dict[str, Any]]) -> float:
    """Errors over reference length, summed over the sentences (not a mean of rates)."""
    return float(sum(d["errors"] for d in details) / sum(d["ref_len"] for d in details))


def _score(reference: str, heard: str, language: str) -> tuple[int, int]:
    """(edit errors, reference length) in characters (zh) or words (en); a zh reference
    is scored as written and as the front-end reads it aloud, whichever is closer."""
    if language == "en":
        return scoring_errors(heard, reference, "en")
    spoken = "".join(span.spoken for span in normalize(reference))
    return min(
        (scoring_errors(heard, ref, "zh") for ref in (reference, spoken)),
        key=lambda errors_len: errors_len[0] / errors_len[1],
    )


def _print(rows: list[dict[str, Any]], load_s: float) -> None:
    print(f"Kokoro load {load_s:.2f} s")
    header = (
        f"{'voice':<10} {'kokoro':<22} {'short p50/p95 ms':>17} {'long p50/p95 ms':>17}"
        f" {'first/dur':>9} {'RTF':>5} {'para':>5} {'err':>9} {'plain':>6} {'mixed':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        short, long_ = r["first_audio_ms"]["short"], r["first_audio_ms"]["long"]
        ratio = r["first_audio_ms"]["clauses"]["ratio"]
        mixed = r["mixed_error_rate"]
        errors = (
            f"{r['metric']} {r['error_rate'] * 100:>4.1f}% {r['plain_error_rate'] * 100:>5.1f}%"
            f" {'' if mixed is None else f'{mixed * 100:>5.1f}%':>6}"
        )
        print(
            f"{r['voice']:<10} {r['engine_voice']:<22}"
            f" {short['p50']:>8.0f}/{short['p95']:<8.0f} {long_['p50']:>8.0f}/{long_['p95']:<8.0f}"
            f" {ratio:>9.2f} {r['rtf']:>5.2f} {r['paragraph_rtf']:>5.2f}"
            f" {errors}"
            f"  first word heard p50 {short['speech_p50']:.0f}/{long_['speech_p50']:.0f} ms"
        )
    for r in rows:
        for s in r["sentences"] + r["plain_sentences"] + r["mixed_sentences"]:
            if s["errors"]:
                print(f"  [{r['voice']}] {s['text']} → {s['heard']}")


if __name__ == "__main__":
    main()
