"""Fakes for driving task handlers without a server: a recording TaskContext, a Runner on
a thread pool, and scripted engines whose output follows from their input.

* ``ScriptedVad``: the gateway's (a frame is speech when its RMS reaches 0.01).
* ``ScriptedAsr``: one ``字`` per 100 ms of loud audio (rounded), with one Word per
  character at its place in the segment; records every call and its options.
* ``ScriptedTts``: the gateway's at 24 kHz (a tone per clause, 50 ms per character),
  recording the texts and counting the chunks pulled so laziness can be checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from nls.protocol import Command
from nls_gateway import testing
from nls_gateway.engines.base import (
    AsrEngine,
    AsrOptions,
    AsrResult,
    Float32Array,
    TtsChunk,
    TtsOptions,
    Word,
)
from nls_gateway.tasks.base import Engines, Limits, Project, TaskHandler

T = TypeVar("T")
RATE = 16000


def tone(seconds: float, *, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float, *, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def frames(data: bytes, size: int = 3200) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class ScriptedAsr:
    sample_rate = RATE

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []  # (samples, final)
        self.options: list[AsrOptions] = []

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        self.calls.append((audio.size, options.final))
        self.options.append(options)
        block = RATE // 100  # loudness per 10 ms; one character per 100 ms of tone
        n = audio.size // block
        rms = np.sqrt((audio[: n * block].reshape(n, block) ** 2).mean(axis=1)) if n else []
        loud = [i for i, r in enumerate(rms) if r > 0.01]
        first = loud[0] * 10 if loud else 0
        words = [
            Word("字", first + 100 * k, first + 100 * (k + 1)) for k in range(round(len(loud) / 10))
        ]
        return AsrResult("".join(w.text for w in words), tuple(words), 0.9, options.language)

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        return [self.transcribe(a, o) for a, o in zip(audios, options, strict=True)]


class ScriptedTts(testing.ScriptedTts):
    """The gateway's scripted TTS at 24 kHz, recording each text and every chunk pulled."""

    def __init__(self) -> None:
        super().__init__(sample_rate=24000)
        self.texts: list[str] = []
        self.pulled = 0

    def synthesize(self, text: str, options: TtsOptions) -> Iterator[TtsChunk]:
        chunks = super().synthesize(text, options)
        self.texts.append(text)
        return self._count(chunks)

    def _count(self, chunks: Iterator[TtsChunk]) -> Iterator[TtsChunk]:
        for chunk in chunks:
            self.pulled += 1
            yield chunk


class ThreadRunner:
    """Runner on a small thread pool (like nls_gateway.runtime, without its scheduler)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(2)
        self.calls = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        self.calls += 1
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def decode(
        self, asr: AsrEngine, audio: Float32Array, options: AsrOptions, *, stream: Hashable
    ) -> AsrResult | None:
        return await self.run(asr.transcribe, audio, options)

    @property
    def partial_backlog(self) -> float:
        return 0.0

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class FakeContext:
    """A TaskContext that records what the handler sends."""

    engines: Engines
    runner: ThreadRunner
    namespace: str = "SpeechRecognizer"
    task_id: str = "0" * 32
    project: Project = field(default_factory=lambda: Project(appkey="k"))
    limits: Limits = field(default_factory=Limits)
    events: list[tuple[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # event names and "audio", in order

    async def send_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        self.events.append((name, dict(payload) if payload is not None else None))
        self.log.append(name)

    async def send_audio(self, data: bytes) -> None:
        self.audio.append(data)
        self.log.append("audio")

    async def fail(self, status: int, status_text: str) -> None:
        self.failures.append((status, status_text))
        self.log.append("TaskFailed")

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def payloads(self, name: str) -> list[Any]:
        return [p for n, p in self.events if n == name]


async def drive(handler: TaskHandler, chunks: Sequence[bytes], *, stop: bool = True) -> None:
    """on_start, every chunk (until the handler is done), then on_stop and close."""
    await handler.on_start()
    try:
        for chunk in chunks:
            if handler.done:
                break
            await handler.on_audio(chunk)
        if stop and not handler.done:
            await handler.on_stop()
    finally:
        await handler.close()


def start(cls: type[TaskHandler], ctx: FakeContext, command: Command) -> TaskHandler:
    return cls(ctx, command)  # type: ignore[arg-type]
