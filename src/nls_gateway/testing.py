"""Scripted engines: deterministic test doubles for the gateway and for users' own tests.

``ScriptedAsr`` answers with texts you give it, ``ScriptedVad`` calls any frame above an
energy threshold speech, and ``ScriptedTts`` speaks a sine tone whose length follows the
text, with per-character subtitles. Each implements its interface from
``nls_gateway.engines.base`` exactly, so a gateway started with
``ServerConfig(engines="scripted")`` (``nls serve --engines scripted``) speaks the full
protocol in milliseconds and without model weights (httpx ``MockTransport`` idea).

These are never a default and never chosen silently when a real engine is missing
(design decision 3). The engines do no I/O. ``GatewayProcess`` runs a gateway with them in
a child process: for tests that must kill the server like a crash, and for benchmarks that
measure clients apart from the server.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from nls_gateway.engines.base import (
    AsrOptions,
    AsrResult,
    Float32Array,
    Subtitle,
    TtsChunk,
    TtsOptions,
    VoiceInfo,
    Word,
)

__all__ = ["SCRIPTED_VOICES", "GatewayProcess", "ScriptedAsr", "ScriptedTts", "ScriptedVad"]

SCRIPTED_VOICES: Final = (
    VoiceInfo("xiaoyun", "zh", "female", "tone-440", "Scripted test voice (440 Hz tone)"),
    VoiceInfo("xiaogang", "zh", "male", "tone-220", "Scripted test voice (220 Hz tone)"),
    VoiceInfo("longxiaochun", "zh", "female", "tone-330", "Scripted test voice (330 Hz tone)"),
    VoiceInfo("abby", "en", "female", "tone-550", "Scripted test voice (550 Hz tone)"),
)

_CLAUSE_END = set("，。！？；,.!?;\n")


class ScriptedAsr:
    """An ASR engine that returns the given texts in order, one per final decode.

    Args:
        texts: the results of successive final decodes; after the last one it starts over.
        sample_rate: rate of the audio it expects.
        delay_s: sleep per model call (to test batching, timeouts and backpressure).
        empty_below_rms: segments quieter than this decode to ``""`` (like silence).

    Partial decodes (``options.final`` False) return the text the next final decode will
    give, without consuming it. ``calls`` records every model call's batch size.
    """

    def __init__(
        self,
        texts: Sequence[str] = ("北京的天气。",),
        *,
        sample_rate: int = 16000,
        delay_s: float = 0.0,
        empty_below_rms: float = 0.0,
    ) -> None:
        if not texts:
            raise ValueError("ScriptedAsr needs at least one text")
        self.sample_rate = sample_rate
        self.texts = tuple(texts)
        self.delay_s = delay_s
        self.empty_below_rms = empty_below_rms
        self.calls: list[int] = []
        self._next = itertools.cycle(range(len(self.texts)))
        self._peek = next(self._next)
        self._lock = threading.Lock()

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        """Return the next scripted text (see the class docstring)."""
        return self.transcribe_batch([audio], [options])[0]

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        """Decode several segments in one call (same order as ``audios``)."""
        if len(audios) != len(options):
            raise ValueError("audios and options differ in length")
        with self._lock:
            self.calls.append(len(audios))
        if self.delay_s:
            time.sleep(self.delay_s)
        return [self._one(a, o) for a, o in zip(audios, options, strict=True)]

    def _one(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        if audio.size == 0 or _rms(audio) < self.empty_below_rms:
            return AsrResult("", language=options.language)
        with self._lock:
            text = self.texts[self._peek]
            if options.final:
                self._peek = next(self._next)
        duration_ms = int(1000 * audio.size / self.sample_rate)
        return AsrResult(
            text, words=_spread(text, duration_ms), confidence=0.9, language=options.language
        )


class _EnergyStream:
    def __init__(self, vad: ScriptedVad) -> None:
        self._vad = vad
        self._rest = np.zeros(0, dtype=np.float32)

    def accept_waveform(self, samples: Float32Array) -> npt.NDArray[np.float32]:
        data = np.concatenate([self._rest, np.asarray(samples, dtype=np.float32)])
        n = self._vad.frame_samples
        whole = data.size // n
        self._rest = data[whole * n :]
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        frames = data[: whole * n].reshape(whole, n)
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        speech: npt.NDArray[np.float32] = (rms >= self._vad.threshold).astype(np.float32)
        return speech


class ScriptedVad:
    """A VAD that calls a frame speech (probability 1.0) when its RMS reaches a threshold.

    A tone is speech, digital silence is not: tests build utterances from tones and gaps.
    """

    def __init__(
        self, *, sample_rate: int = 16000, frame_samples: int = 512, threshold: float = 0.01
    ) -> None:
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples
        self.threshold = threshold

    def create_stream(self) -> _EnergyStream:
        return _EnergyStream(self)


class ScriptedTts:
    """A TTS engine that speaks a sine tone, ``ms_per_char`` per character, clause by clause.

    Each clause (split after ``，。！？；,.!?;``) is one chunk; every non-space character
    takes an equal share of its time, and letters, digits and hanzi get a subtitle
    (punctuation is a pause without one, as with Kokoro).
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        ms_per_char: int = 50,
        delay_s: float = 0.0,
        voices: Sequence[VoiceInfo] = SCRIPTED_VOICES,
    ) -> None:
        self.sample_rate = sample_rate
        self.ms_per_char = ms_per_char
        self.delay_s = delay_s
        self._voices = tuple(voices)

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    def synthesize(self, text: str, options: TtsOptions) -> Iterator[TtsChunk]:
        """Yield one tone chunk per clause.

        Raises:
            KeyError: unknown voice.
            ValueError: nothing to speak (only punctuation or spaces).
        """
        voice = next((v for v in self._voices if v.name == options.voice), None)
        if voice is None:
            raise KeyError(options.voice)
        if not any(c.isalnum() for c in text):
            raise ValueError("nothing to speak")
        freq = float(voice.engine_voice.rpartition("-")[2] or 440)
        return self._chunks(text, freq, max(0.5, min(2.0, options.speed)))

    def _chunks(self, text: str, freq: float, speed: float) -> Iterator[TtsChunk]:
        start = 0
        for end in _clause_ends(text):
            clause = text[start:end]
            spoken = [(i, c) for i, c in enumerate(clause, start) if not c.isspace()]
            if not any(c.isalnum() for _, c in spoken):
                start = end
                continue
            if self.delay_s:
                time.sleep(self.delay_s)
            per_char = max(1, int(self.ms_per_char / speed))
            n = int(self.sample_rate * per_char * len(spoken) / 1000)
            t = np.arange(n, dtype=np.float32) / self.sample_rate
            audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
            subs = tuple(
                Subtitle(c, i, i + 1, k * per_char, (k + 1) * per_char)
                for k, (i, c) in enumerate(spoken)
                if c.isalnum()
            )
            yield TtsChunk(audio, start, end, subs)
            start = end


_CHILD = r"""
import asyncio, json, logging, signal, sys
from nls_gateway.config import ServerConfig
from nls_gateway.server import serve

async def main():
    options = json.loads(sys.argv[1])
    gw = serve(ServerConfig(host="127.0.0.1", port=0, engines="scripted", **options))
    await gw.start()
    await gw.wait_ready()
    print("ready on", gw.url, file=sys.stderr, flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await gw.shutdown(grace=0)

logging.basicConfig(level=logging.WARNING)
asyncio.run(main())
"""
"""The child's program: started through the library (not the CLI), so it depends only on
``ServerConfig`` and ``serve``. argv[1]: ServerConfig fields as JSON."""


class GatewayProcess:
    """A gateway with scripted engines in its own process on a free loopback port.

    Use as a context manager (or call :meth:`close`); :meth:`kill` ends it abruptly
    (SIGKILL), like a crash. The child's stderr is drained in the background (its last
    lines in ``stderr_tail``) so it never blocks on a full pipe.

    Args:
        timeout: seconds to wait for the child to report ready.
        **options: ``ServerConfig`` fields, e.g. ``max_concurrent_tasks=5000``.

    Raises:
        RuntimeError: the child did not become ready in time.
    """

    def __init__(self, timeout: float = 30.0, **options: Any) -> None:
        # The derived stream budget measures the real engines; scripted ones cost nothing,
        # so only max_concurrent_tasks limits them unless a test asks otherwise.
        options.setdefault("max_live_streams", options.get("max_concurrent_tasks", 64))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, json.dumps(options)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        self.url = ""
        self.stderr_tail: list[str] = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            match = re.search(r"ready on (ws://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            self.kill()
            self.proc.stderr.close()
            raise RuntimeError("the gateway process did not become ready")
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def http_url(self) -> str:
        """The HTTP base URL (CreateToken, /metrics, /healthz)."""
        return self.url.replace("ws://", "http://").removesuffix("/ws/v1")

    def kill(self) -> None:
        """SIGKILL the gateway, like a crash."""
        self.proc.kill()
        self.proc.wait(5)

    def close(self) -> None:
        """Stop the gateway (SIGTERM, then SIGKILL after 10 s). Idempotent."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:  # closed at the child's end of output
            for line in self.proc.stderr:
                self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-50:]


def _clause_ends(text: str) -> list[int]:
    ends = [i + 1 for i, c in enumerate(text) if c in _CLAUSE_END]
    if not ends or ends[-1] != len(text):
        ends.append(len(text))
    return ends


def _spread(text: str, duration_ms: int) -> tuple[Word, ...]:
    chars = [c for c in text if c.isalnum()]
    if not chars:
        return ()
    step = max(1, duration_ms // len(chars))
    return tuple(Word(c, k * step, (k + 1) * step) for k, c in enumerate(chars))


def _rms(audio: Float32Array) -> float:
    return float(np.sqrt(np.mean(np.asarray(audio, dtype=np.float64) ** 2)))
