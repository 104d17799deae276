"""What the two recognition tasks share: set-up, audio ingest, decodes and partial cadence.

This module owns the parts of SpeechRecognizer (§4) and SpeechTranscriber (§5) that are the
same: the start checks (directive, ``format`` / ``sample_rate``, ``vocabulary_id``, the
engines), the VAD segmenter, the executor call that decodes and segments one frame (rule
R10), the path of every decode through the gateway's ``DecodeScheduler`` (finals before
partials, a stale partial dropped) and *when* a partial is due.

Partial cadence: the first partial of a sentence after ``Limits.first_partial_ms`` of speech,
then one per ``Limits.partial_interval_ms`` of new audio. While the engine is behind
(``Runner.partial_backlog``: queued partials per batch) or a partial took longer than the
interval to come back, the next one waits correspondingly longer, so a loaded gateway
spends its cores on finals and sends fewer, not later, partials. No partial is asked for
while the VAD hears no new speech since the last one, nor once the speaker has been quiet
for ``QUIET_MS``: there is nothing new to say, and the sentence's final may be about to
need the engine. A partial still queued when the next is due is replaced by it in the
scheduler (never decoded), and every partial result older than one already sent is
dropped.

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from nls.protocol import Command, StartRecognition, StartTranscription
from nls.protocol.constants import Status
from nls_gateway.audio.decoder import AudioFormatError, Decoder
from nls_gateway.engines.base import AsrEngine, AsrResult, Float32Array, VadEngine
from nls_gateway.engines.text import asr_zh, disfluency
from nls_gateway.exception import EngineError
from nls_gateway.segmenter import Segmenter, SegmenterConfig
from nls_gateway.tasks import params
from nls_gateway.tasks.base import (
    Limits,
    Runner,
    TaskContext,
    TaskError,
    TaskHandler,
    server_error_text,
)

__all__ = ["RATE", "AsrTask", "PartialCadence"]

logger = logging.getLogger(__name__)

RATE = 16000
"""Every engine here is fed 16 kHz float32 (§10.1: 8 kHz input is resampled)."""

QUIET_MS = 100
"""Trailing silence after which a stream asks for no more partials until speech resumes."""

_Start = TypeVar("_Start", StartRecognition, StartTranscription)
_Ingested = TypeVar("_Ingested")


class PartialCadence:
    """When a stream's next partial is due, in stream samples.

    Args:
        limits: ``first_partial_ms`` / ``partial_interval_ms``.
        runner: its ``partial_backlog`` stretches the interval while the engine is behind.
        pre_roll_ms: audio a sentence begins with before its speech onset (the segmenter's).
    """

    def __init__(self, limits: Limits, runner: Runner, *, pre_roll_ms: int) -> None:
        self._first = (pre_roll_ms + limits.first_partial_ms) * RATE // 1000
        self._interval = limits.partial_interval_ms * RATE // 1000
        self._runner = runner
        self._quiet = QUIET_MS * RATE // 1000
        self._next: int | None = None
        self._last = -1  # where the last requested partial's audio ended
        self._latency = 0  # the last partial's round trip, in samples of audio time

    def begin(self, sentence_begin: int) -> None:
        """A sentence began at stream sample ``sentence_begin`` (including its pre-roll)."""
        self._next = sentence_begin + self._first

    def end(self) -> None:
        """The sentence ended (or paused): nothing is due until the next ``begin``."""
        self._next = None

    def due(self, position: int, speech_end: int | None = None) -> bool:
        """True when a partial of the audio up to ``position`` should be decoded now;
        ``speech_end`` is where the VAD last heard speech (None: no VAD)."""
        if self._next is None or position < self._next:
            return False
        if speech_end is None:
            return True
        return speech_end > self._last and position - speech_end < self._quiet

    def sent(self, position: int) -> None:
        """A partial of the audio up to ``position`` was requested."""
        self._last = position
        stretch = 1.0 + self._runner.partial_backlog
        self._next = position + max(int(self._interval * stretch), self._latency)

    def answered(self, seconds: float) -> None:
        """A partial came back ``seconds`` after it was requested."""
        self._latency = int(seconds * RATE)


class AsrTask(TaskHandler, Generic[_Start, _Ingested]):
    """Base of the recognition task handlers; subclasses say what to do with the events."""

    start_type: type[_Start]
    _cmd: _Start
    _decoder: Decoder
    _asr: AsrEngine
    _cadence: PartialCadence

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._partials: set[asyncio.Task[None]] = set()
        self._partial_seq = 0  # requested partials
        self._partial_shown = 0  # the newest whose result was delivered
        self._failed = False

    # ------------------------------------------------------------------ set-up

    def _check_start(self) -> _Start:
        """The start checks every recognition task makes (41010100/41010101/40000003)."""
        cmd = self.command
        if not isinstance(cmd, self.start_type):
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(f"Invalid directive '{cmd.name}'!"),
            )
        self._cmd = cmd
        self._decoder = params.asr_decoder(cmd)
        params.hotwords(cmd, self.ctx.project)  # an unknown vocabulary_id: 40000003 now
        return cmd

    def _engines(self, *, need_vad: bool) -> VadEngine | None:
        """Take the ASR engine (and the VAD when needed); 50000000 when one is missing."""
        asr, vad = self.ctx.engines.asr, self.ctx.engines.vad
        missing = "ASR" if asr is None else "VAD" if vad is None and need_vad else None
        if missing is not None or asr is None:
            raise TaskError(
                Status.SERVER_ERROR,
                Status.SERVER_ERROR.text.format(f"No {missing} engine configured!"),
            )
        self._asr = asr
        return vad

    async def _segmenter_for(
        self, vad: VadEngine, config: SegmenterConfig, *, retain: bool = False
    ) -> Segmenter:
        """A segmenter over a fresh VAD stream; also sets the partial cadence."""
        stream = await self.ctx.runner.run(vad.create_stream)
        self._cadence = PartialCadence(
            self.ctx.limits, self.ctx.runner, pre_roll_ms=config.pre_roll_ms
        )
        return Segmenter(
            stream,
            config=config,
            sample_rate=vad.sample_rate,
            frame_samples=vad.frame_samples,
            retain=retain,
        )

    # ------------------------------------------------------------------ audio

    async def _run_ingest(self, data: bytes, *, last: bool) -> _Ingested:
        """Decode and segment one frame in the executor (R10)."""
        try:
            return await self.ctx.runner.run(self._ingest, data, last)
        except AudioFormatError as exc:
            # 40000009 bad WAV/Ogg header, 40270003 undecodable (§9)
            raise params.audio_error(exc) from exc

    @abc.abstractmethod
    def _ingest(self, data: bytes, last: bool) -> _Ingested:
        """Executor side: decode ``data`` (``last``: flush the decoder) and segment it."""

    # ------------------------------------------------------------------ decodes

    async def _final(self, audio: Float32Array) -> AsrResult:
        """The final (beam) decode of ``audio``, shaped for the client (``_shape``); it
        goes before every queued partial.

        Raises:
            EngineError: it waited past the scheduler's deadline (50000000 "Instance pool
                exhausted!", §9), or the engine failed.
        """
        return self._shape(await self._decode_final(audio), final=True)

    async def _decode_final(self, audio: Float32Array, *, words: bool | None = None) -> AsrResult:
        """The engine's final decode of ``audio``, as it gave it (``words``: override the
        request's ``enable_words``)."""
        options = params.asr_options(self._cmd, self.ctx.project, final=True)
        if words is not None:
            options = dataclasses.replace(options, words=words)
        result = await self.ctx.runner.decode(self._asr, audio, options, stream=self)
        if result is None:  # only partials are ever dropped
            raise EngineError("final decode dropped")
        return result

    def _shape(self, result: AsrResult, *, final: bool) -> AsrResult:
        """The engine's result as the request wants it: fillers removed (``disfluency``,
        their words too), and for a final its sentence's end mark; the marks the engine
        added only for those rules are stripped when punctuation is off."""
        text, words = result.text, result.words
        if params.disfluency(self._cmd) and text:
            spans = disfluency.filler_spans(text)
            if spans:
                keep = disfluency.kept_words(text, [w.text for w in words], spans)
                words = tuple(w for w, k in zip(words, keep, strict=True) if k)
                text = disfluency.remove_spans(text, spans)
        if not self._cmd.enable_punctuation_prediction:
            if params.asr_options(self._cmd, self.ctx.project).punctuation:
                text = asr_zh.strip_punctuation(text)
        elif final and text:
            # A final is a whole sentence, and NLS ends each with its mark; Whisper leaves
            # it off about half the Chinese ones (partials stay open: the sentence goes on).
            text = asr_zh.end_sentence(text, result.language or self.ctx.project.language)
        if (text, words) == (result.text, result.words):
            return result
        return dataclasses.replace(result, text=text, words=words)

    def _partial(
        self,
        audio: Float32Array,
        deliver: Callable[[AsrResult], Awaitable[None]],
        inspect: Callable[[AsrResult], None] | None = None,
    ) -> None:
        """Ask for a partial of ``audio`` (``sent`` is the caller's to record); ``deliver``
        gets its shaped result unless it was superseded, is empty or is older than one
        shown; ``inspect`` gets the engine's own result first (with every mark)."""
        self._partial_seq += 1
        run = self._run_partial(self._partial_seq, audio, deliver, inspect)
        task = asyncio.ensure_future(run)
        self._partials.add(task)
        task.add_done_callback(self._partials.discard)

    async def _run_partial(
        self,
        seq: int,
        audio: Float32Array,
        deliver: Callable[[AsrResult], Awaitable[None]],
        inspect: Callable[[AsrResult], None] | None,
    ) -> None:
        options = params.asr_options(self._cmd, self.ctx.project, final=False)
        started = time.monotonic()
        try:
            result = await self.ctx.runner.decode(self._asr, audio, options, stream=self)
            if result is None or seq < self._partial_shown:
                return  # a newer partial or the final replaced it
            self._cadence.answered(time.monotonic() - started)
            self._partial_shown = seq
            if self._failed or self.done:
                return
            if inspect is not None and result.text:
                inspect(result)
            shaped = self._shape(result, final=False)
            if shaped.text:
                await deliver(shaped)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("! partial decode failed")
            await self._fail(exc)

    async def _fail(self, exc: Exception) -> None:
        """Fail the task from background work (an engine error keeps its text, §9)."""
        if self._failed:
            return
        self._failed = True
        await self.ctx.fail(Status.SERVER_ERROR, server_error_text(exc))

    def _drop_partials(self) -> None:
        """The final is being decoded: no partial may be decoded or shown any more."""
        self._partial_shown = self._partial_seq + 1
        for task in self._partials:
            task.cancel()

    async def close(self) -> None:
        """Cancel partials still queued or running (their results are dropped)."""
        tasks = list(self._partials)
        self._drop_partials()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
