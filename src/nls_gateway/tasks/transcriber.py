"""SpeechTranscriber (real-time transcription, protocol.md §5): a stream → sentences.

This module owns the SpeechTranscriber task: it validates ``StartTranscription``, answers
``TranscriptionStarted {session_id}``, decodes the client's frames to 16 kHz float32, lets
the VAD segmenter cut them into sentences and reports each sentence as ``SentenceBegin``
→ (``TranscriptionResultChanged``)* → ``SentenceEnd``; ``ControlTranscriber`` changes
``max_sentence_silence`` mid-stream and ``StopTranscription`` flushes the open sentence
before ``TranscriptionCompleted``.

Theory of operation: each frame goes through one executor call (decode + VAD, rule R10).
Sentence events are queued as *jobs* to one worker coroutine per task, which decodes
(``runner.transcribe``, batched across tasks) and sends them strictly in order, so a
``SentenceBegin`` never overtakes the previous ``SentenceEnd`` however slow the decoder.
At most one partial job is pending at a time and a new one needs enough new audio, so
the partial cadence adapts to load; a partial whose sentence has already ended is
dropped. Times are ms from the start of the stream.

Speculative finals: when the segmenter reports a pause of ``SPECULATIVE_PAUSE_MS`` inside
a sentence, the final (beam) decode of the sentence so far starts at once, outside the
worker (at most one per task, keyed by the sentence begin and speech end). If speech
resumes it is dropped; if the sentence then ends with the same speech end, the
``SentenceEnd`` reuses it, so it goes out as soon as ``max_sentence_silence`` has passed.

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from nls.protocol import Command, ControlTranscriber, StartTranscription
from nls.protocol.constants import Status
from nls_gateway.audio import AudioFormatError, Decoder
from nls_gateway.engines.base import AsrEngine, AsrResult, Float32Array
from nls_gateway.segmenter import (
    PauseEnded,
    PauseStarted,
    Segmenter,
    SegmenterConfig,
    SegmenterEvent,
    SpeechEnded,
    SpeechStarted,
)
from nls_gateway.tasks import params
from nls_gateway.tasks.base import TaskContext, TaskError, TaskHandler

__all__ = ["Transcriber"]

logger = logging.getLogger(__name__)

RATE = 16000
PARTIAL_STEP_MS = 800
"""New audio before the next partial; partials come about every 0.8–1 s while idle."""
DEFAULT_MAX_SENTENCE_SILENCE = 800
"""§5.1 default ``max_sentence_silence``."""
SPECULATIVE_PAUSE_MS = 250
"""A pause this long starts the sentence's final decode (at least the segmenter's post-roll,
so the audio is the same as the sentence's if it ends there)."""


@dataclass(frozen=True, slots=True)
class _Begin:
    index: int
    time: int


@dataclass(frozen=True, slots=True)
class _Partial:
    index: int
    begin: int
    audio: Float32Array


@dataclass(frozen=True, slots=True)
class _End:
    index: int
    begin: int
    end: int
    audio: Float32Array
    spec: asyncio.Task[AsrResult] | None = None
    """The speculative final decode of the same speech, started at a pause."""


_Job = _Begin | _Partial | _End


class Transcriber(TaskHandler):
    """The SpeechTranscriber task (§5)."""

    namespaces = ("SpeechTranscriber",)

    _cmd: StartTranscription
    _decoder: Decoder
    _asr: AsrEngine
    _segmenter: Segmenter

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._index = 0  # last SentenceBegin index (from 1, §5.4)
        self._ended = 0  # last index whose SentenceEnd is queued
        self._partial_pending = False
        self._partial_at = 0  # stream sample where the last partial's audio ended
        self._partial_step = PARTIAL_STEP_MS * RATE // 1000
        self._failed = False
        self._paused = False
        # Speculative final decode: ((sentence begin ms, speech end ms), task)
        self._spec: tuple[tuple[int, int], asyncio.Task[AsrResult]] | None = None

    async def on_start(self) -> None:
        """Validate (41010100/41010101/40000003), then ``TranscriptionStarted``."""
        cmd = self.command
        if not isinstance(cmd, StartTranscription):
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(f"Invalid directive '{cmd.name}'!"),
            )
        self._cmd = cmd
        self._decoder = params.asr_decoder(cmd)
        params.hotwords(cmd, self.ctx.project)  # an unknown vocabulary_id: 40000003 now
        # §5.1: max_sentence_silence 200–6000 ms (the newest API page), else 40000003
        params.check_range("max_sentence_silence", cmd.max_sentence_silence, 200, 6000)
        params.check_range("speech_noise_threshold", cmd.speech_noise_threshold, -1, 1)
        asr, vad = self.ctx.engines.asr, self.ctx.engines.vad
        if asr is None or vad is None:
            missing = "ASR" if asr is None else "VAD"
            raise TaskError(
                Status.SERVER_ERROR,
                Status.SERVER_ERROR.text.format(f"No {missing} engine configured!"),
            )
        self._asr = asr
        config = SegmenterConfig(
            max_sentence_silence_ms=cmd.max_sentence_silence or DEFAULT_MAX_SENTENCE_SILENCE,
            speech_noise_threshold=cmd.speech_noise_threshold or 0.0,
            max_sentence_ms=max(1000, self.ctx.limits.max_sentence_ms),
            pause_ms=SPECULATIVE_PAUSE_MS,
        )
        stream = await self.ctx.runner.run(vad.create_stream)
        self._segmenter = Segmenter(
            stream, config=config, sample_rate=vad.sample_rate, frame_samples=vad.frame_samples
        )
        session_id = cmd.session_id or uuid.uuid4().hex
        self._worker = asyncio.ensure_future(self._work())
        await self.ctx.send_event("TranscriptionStarted", {"session_id": session_id})

    async def on_audio(self, data: bytes) -> None:
        """Decode and segment one frame; queue the sentence events it caused."""
        if self._failed or self.done:
            return
        events = await self._run_ingest(data, last=False)
        self._enqueue(events)
        self._maybe_partial()

    async def on_command(self, command: Command) -> None:
        """``ControlTranscriber``: change ``max_sentence_silence`` mid-stream (§5.2)."""
        if not isinstance(command, ControlTranscriber):
            await super().on_command(command)
            return
        value = command.max_sentence_silence
        params.check_range("max_sentence_silence", value, 200, 6000)
        if value is not None:
            # The segmenter reads its config per frame: the next frame uses the new pause.
            self._segmenter.config = dataclasses.replace(
                self._segmenter.config, max_sentence_silence_ms=value
            )

    async def on_stop(self) -> None:
        """Flush the open sentence (if it holds speech), then ``TranscriptionCompleted``."""
        if self._failed or self.done:
            return
        events = await self._run_ingest(b"", last=True)
        self._enqueue(events)
        await self._jobs.put(None)
        if self._worker is not None:
            await self._worker
        if not self._failed:
            # §5: TranscriptionCompleted only after Stop, no payload
            await self.ctx.send_event("TranscriptionCompleted")
            self.done = True

    async def close(self) -> None:
        """Cancel the worker (pending decodes are dropped)."""
        self._drop_spec()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker

    # ------------------------------------------------------------------ internals

    async def _run_ingest(self, data: bytes, *, last: bool) -> list[SegmenterEvent]:
        try:
            return await self.ctx.runner.run(self._ingest, data, last)
        except AudioFormatError as exc:
            # 40000009 bad WAV/Ogg header, 40270003 undecodable (§9)
            raise params.audio_error(exc) from exc

    def _ingest(self, data: bytes, last: bool) -> list[SegmenterEvent]:
        """Executor side: decode one frame and run the VAD over it (R10)."""
        samples = self._decoder.finish() if last else self._decoder.feed(data)
        events = self._segmenter.accept_waveform(samples) if samples.size else []
        if last:
            events += self._segmenter.flush()
        return events

    def _enqueue(self, events: list[SegmenterEvent]) -> None:
        for event in events:
            if isinstance(event, PauseStarted):
                self._paused = True
                self._start_spec(event)
            elif isinstance(event, PauseEnded):
                self._paused = False
                self._drop_spec()
            elif isinstance(event, SpeechStarted):
                self._paused = False
                self._index += 1
                self._partial_at = event.begin_ms * RATE // 1000
                self._jobs.put_nowait(_Begin(self._index, event.begin_ms))
            elif isinstance(event, SpeechEnded):
                # forced=True: speech over limits.max_sentence_ms split at a pause (§2.5)
                self._ended = self._index
                self._paused = False
                spec = self._take_spec(event)
                self._jobs.put_nowait(
                    _End(self._index, event.begin_ms, event.end_ms, event.audio, spec)
                )

    def _start_spec(self, event: PauseStarted) -> None:
        """Start the final decode of the paused sentence (replacing a dropped one)."""
        self._drop_spec()
        task = asyncio.ensure_future(self._transcribe(event.audio, final=True))
        task.add_done_callback(_retrieve)
        self._spec = ((event.begin_ms, event.speech_end_ms), task)

    def _drop_spec(self) -> None:
        """Speech resumed: the speculative decode is stale. Cancelling it frees its place
        in the runner's queue; one the engine already runs finishes unused."""
        if self._spec is not None:
            self._spec[1].cancel()
            self._spec = None

    def _take_spec(self, event: SpeechEnded) -> asyncio.Task[AsrResult] | None:
        """The speculative decode of ``event``'s sentence, if it decoded the same speech."""
        spec, self._spec = self._spec, None
        if spec is None:
            return None
        if event.speech_end_ms is not None and spec[0] == (event.begin_ms, event.speech_end_ms):
            return spec[1]
        spec[1].cancel()
        return None

    def _maybe_partial(self) -> None:
        seg = self._segmenter
        if not self._cmd.enable_intermediate_result or self._partial_pending or self._paused:
            return
        begin_ms = seg.sentence_begin_ms
        if begin_ms is None:
            return
        position = seg.position_ms * RATE // 1000
        if position - self._partial_at < self._partial_step:
            return
        self._partial_at = position
        self._partial_pending = True
        self._jobs.put_nowait(_Partial(self._index, begin_ms, seg.current_audio()))

    async def _work(self) -> None:
        """Decode and send the queued sentence events in order."""
        try:
            while (job := await self._jobs.get()) is not None:
                if isinstance(job, _Begin):
                    # §5.4 SentenceBegin {index, time}: sentence start from stream start
                    await self.ctx.send_event(
                        "SentenceBegin", {"index": job.index, "time": job.time}
                    )
                elif isinstance(job, _Partial):
                    await self._partial(job)
                else:
                    if job.spec is not None and not job.spec.cancelled():
                        result = await job.spec
                    else:
                        result = await self._transcribe(job.audio, final=True)
                    payload = self._result_payload(job.index, job.end, job.begin, result)
                    payload["begin_time"] = job.begin
                    await self.ctx.send_event("SentenceEnd", payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("! transcription worker failed")
            self._failed = True
            await self.ctx.fail(Status.SERVER_ERROR, Status.SERVER_ERROR.text.format(exc))

    async def _partial(self, job: _Partial) -> None:
        try:
            if job.index <= self._ended:
                return  # the sentence already ended: its SentenceEnd follows
            started = time.monotonic()
            result = await self._transcribe(job.audio, final=False)
            # Adapt: never ask for partials faster than the decoder delivers them.
            spent = int((time.monotonic() - started) * RATE)
            self._partial_step = max(PARTIAL_STEP_MS * RATE // 1000, spent)
            if job.index <= self._ended or not result.text:
                return
            end = job.begin + job.audio.size * 1000 // RATE
            await self.ctx.send_event(
                "TranscriptionResultChanged",
                self._result_payload(job.index, end, job.begin, result),
            )
        finally:
            self._partial_pending = False

    async def _transcribe(self, audio: Float32Array, *, final: bool) -> AsrResult:
        options = params.asr_options(self._cmd, self.ctx.project, final=final)
        return await self.ctx.runner.transcribe(self._asr, audio, options)

    def _result_payload(
        self, index: int, time_ms: int, begin: int, result: AsrResult
    ) -> dict[str, Any]:
        """§5.4 fields shared by TranscriptionResultChanged and SentenceEnd."""
        payload: dict[str, Any] = {
            "index": index,
            "time": time_ms,
            "result": result.text,
            "confidence": round(float(result.confidence), 3),
        }
        if self._cmd.enable_words:
            # Word times are ms from the stream start (engines give them per segment).
            payload["words"] = [
                {"text": w.text, "startTime": begin + w.start_ms, "endTime": begin + w.end_ms}
                for w in result.words
            ]
        payload["status"] = 0
        return payload


def _retrieve(task: asyncio.Task[AsrResult]) -> None:
    """Mark a dropped speculative decode's error as seen (its sentence decodes again)."""
    if not task.cancelled():
        task.exception()
