"""SpeechRecognizer (one-sentence recognition, protocol.md §4): audio → one result.

This module owns the SpeechRecognizer task: it validates ``StartRecognition``, answers
``RecognitionStarted``, decodes the client's frames to 16 kHz float32 and keeps them,
runs the VAD segmenter over them, sends ``RecognitionResultChanged`` partials and finally
``RecognitionCompleted {result, duration}`` — after ``StopRecognition``, or by itself when
``enable_voice_detection`` is on and the start/end silence runs out.

Theory of operation: every binary frame goes through one executor call
(:meth:`Recognizer._ingest`: decode + VAD), so the event loop never runs model code (R10).
The recognised span is from the first speech onset (with the segmenter's pre-roll) to
the last speech end. A *speculative* final decode starts as soon as the VAD reports a
pause of ``PAUSE_MS`` (or the end of speech); it is keyed by the span's begin and speech
end, dropped when speech resumes, and a Stop that brings no new speech reuses it, so the
final is usually ready when Stop arrives (at most one runs per task). Partials re-decode
the growing span, at most one at a time, the first after ``FIRST_PARTIAL_MS`` of speech
and then after enough new audio, so their cadence falls back by itself when the machine
is loaded; none runs during a pause, and Stop drops one in flight. Silence only gives an
empty result.

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import numpy as np

from nls.protocol import Command, StartRecognition
from nls.protocol.constants import Status
from nls_gateway.audio import AudioFormatError, Decoder
from nls_gateway.engines.base import AsrEngine, AsrResult, Float32Array
from nls_gateway.segmenter import (
    EndSilenceTimeout,
    PauseEnded,
    PauseStarted,
    Segmenter,
    SegmenterConfig,
    SegmenterEvent,
    SpeechEnded,
    SpeechStarted,
    StartSilenceTimeout,
)
from nls_gateway.tasks import params
from nls_gateway.tasks.base import TaskContext, TaskError, TaskHandler

__all__ = ["Recognizer", "SampleBuffer"]

logger = logging.getLogger(__name__)

RATE = 16000
"""Every engine here is fed 16 kHz float32 (§10.1: 8 kHz input is resampled)."""
PARTIAL_STEP_MS = 600
"""New audio needed before another partial decode (at most one runs at a time)."""
DEFAULT_END_SILENCE_MS = 800
"""§4.1: "cloud default silence detection 800 ms" with ``enable_voice_detection``."""
SPECULATIVE_PAUSE_MS = 600
"""A pause this long ends a sentence for the segmenter (the task goes on until Stop)."""
PAUSE_MS = 200
"""A pause this long starts the speculative final decode (speech after it drops it)."""
FIRST_PARTIAL_MS = 500
"""Speech (after the segmenter's pre-roll) before the first partial decode."""
PRE_ROLL_MS = 300
"""The segmenter's pre-roll (SegmenterConfig default): audio before the first onset."""


class SampleBuffer:
    """A growing float32 buffer whose snapshots are views that later appends never move."""

    def __init__(self) -> None:
        self._data: Float32Array = np.zeros(RATE, dtype=np.float32)
        self.size = 0

    def append(self, samples: Float32Array) -> None:
        """Append ``samples``; grows by doubling (old snapshots keep their own array)."""
        need = self.size + samples.size
        if need > self._data.size:
            grown = np.zeros(max(need, 2 * self._data.size), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = samples
        self.size = need

    def view(self, start: int, end: int) -> Float32Array:
        """Samples ``start…end``; appends never overwrite them."""
        return self._data[max(0, start) : min(end, self.size)]


@dataclass(slots=True)
class _Span:
    begin: int
    end: int
    speech_end: int = -1
    """End of the last speech frame (``end`` adds post-roll); -1 while speech is open."""


class Recognizer(TaskHandler):
    """The SpeechRecognizer task (§4)."""

    namespaces = ("SpeechRecognizer",)

    _cmd: StartRecognition
    _decoder: Decoder
    _asr: AsrEngine

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._vd = False
        self._segmenter: Segmenter | None = None
        self._buffer = SampleBuffer()
        self._speech: _Span | None = None  # first onset … last end (end = -1 while open)
        # The speculative / final decode: ((begin, speech end), task); at most one.
        self._final: tuple[tuple[int, int], asyncio.Task[AsrResult]] | None = None
        self._paused = False
        self._partial: asyncio.Task[None] | None = None
        self._partial_end = 0
        self._last_partial = ""
        self._finished = False

    async def on_start(self) -> None:
        """Validate (41010100/41010101/40000003), then send ``RecognitionStarted``."""
        cmd = self.command
        if not isinstance(cmd, StartRecognition):
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(f"Invalid directive '{cmd.name}'!"),
            )
        self._cmd = cmd
        self._decoder = params.asr_decoder(cmd)
        params.hotwords(cmd, self.ctx.project)  # an unknown vocabulary_id: 40000003 now
        self._vd = bool(cmd.enable_voice_detection)
        if self._vd:
            params.check_range("max_start_silence", cmd.max_start_silence, 0, 60_000)
            params.check_range("max_end_silence", cmd.max_end_silence, 0, 6000)
        asr = self.ctx.engines.asr
        if asr is None:
            raise TaskError(
                Status.SERVER_ERROR, Status.SERVER_ERROR.text.format("No ASR engine configured!")
            )
        self._asr = asr
        vad = self.ctx.engines.vad
        if vad is None and self._vd:
            raise TaskError(
                Status.SERVER_ERROR, Status.SERVER_ERROR.text.format("No VAD engine configured!")
            )
        if vad is not None:
            config = SegmenterConfig(
                max_sentence_silence_ms=SPECULATIVE_PAUSE_MS,
                pause_ms=PAUSE_MS,
                max_sentence_ms=max(1000, self.ctx.limits.max_recognition_ms + 1000),
                max_start_silence_ms=cmd.max_start_silence if self._vd else None,
                max_end_silence_ms=(cmd.max_end_silence or DEFAULT_END_SILENCE_MS)
                if self._vd
                else None,
            )
            stream = await self.ctx.runner.run(vad.create_stream)
            self._segmenter = Segmenter(
                stream, config=config, sample_rate=vad.sample_rate, frame_samples=vad.frame_samples
            )
        await self.ctx.send_event("RecognitionStarted")

    async def on_audio(self, data: bytes) -> None:
        """Decode and segment one frame; may send a partial or (with VAD) complete."""
        if self.done or self._finished:
            return  # §4: audio after the server-side end is not recognised
        samples, events = await self._run_ingest(data, last=False)
        self._buffer.append(samples)
        limit = self.ctx.limits.max_recognition_ms
        if self._buffer.size > limit * RATE // 1000:
            # 41010104 TOO_LONG_SPEECH: one-sentence audio over 60 s (§2.5)
            raise TaskError(
                Status.TOO_LONG_SPEECH,
                Status.TOO_LONG_SPEECH.text.format(
                    f"Speech is too long, one-sentence recognition takes at most {limit} ms!"
                ),
            )
        if await self._handle(events):
            return
        self._maybe_partial()

    async def on_stop(self) -> None:
        """Flush the decoder and the VAD, then send ``RecognitionCompleted``."""
        if self.done or self._finished:
            return
        if self._partial is not None:
            self._partial.cancel()  # the final has priority; its text would be dropped
        samples, events = await self._run_ingest(b"", last=True)
        self._buffer.append(samples)
        if await self._handle(events):
            return
        await self._complete()

    async def close(self) -> None:
        """Stop waiting for partials and speculative decodes."""
        self._finished = True
        final = None if self._final is None else self._final[1]
        tasks = [t for t in (self._partial, final) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self._final = None

    # ------------------------------------------------------------------ internals

    async def _run_ingest(
        self, data: bytes, *, last: bool
    ) -> tuple[Float32Array, list[SegmenterEvent]]:
        try:
            return await self.ctx.runner.run(self._ingest, data, last)
        except AudioFormatError as exc:
            # 40000009 bad WAV/Ogg header, 40270003 undecodable (§9)
            raise params.audio_error(exc) from exc

    def _ingest(self, data: bytes, last: bool) -> tuple[Float32Array, list[SegmenterEvent]]:
        """Executor side: decode one frame and run the VAD over it (R10)."""
        samples = self._decoder.finish() if last else self._decoder.feed(data)
        events: list[SegmenterEvent] = []
        if self._segmenter is not None:
            if samples.size:
                events += self._segmenter.accept_waveform(samples)
            if last:
                events += self._segmenter.flush()
        return samples, events

    async def _handle(self, events: list[SegmenterEvent]) -> bool:
        """Apply segmenter events; True if the task completed by itself."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._paused = False
                begin = event.begin_ms * RATE // 1000
                if self._speech is None:
                    self._speech = _Span(begin, -1)
                else:
                    self._speech.end = self._speech.speech_end = -1
            elif isinstance(event, PauseStarted) and self._speech is not None:
                # Speculative final decode of the speech so far: ready (or nearly) at Stop.
                self._paused = True
                speech_end = event.speech_end_ms * RATE // 1000
                end = event.end_ms * RATE // 1000
                self._decode(self._speech.begin, end, speech_end)
            elif isinstance(event, PauseEnded):
                self._paused = False
                self._drop_final()
            elif isinstance(event, SpeechEnded):
                self._paused = False
                if self._speech is None:  # cannot happen: an end follows a start
                    self._speech = _Span(event.begin_ms * RATE // 1000, -1)
                self._speech.end = event.end_ms * RATE // 1000
                ms = event.end_ms if event.speech_end_ms is None else event.speech_end_ms
                self._speech.speech_end = ms * RATE // 1000
                span = self._speech
                self._decode(span.begin, span.end, span.speech_end)
            elif self._vd and isinstance(event, StartSilenceTimeout | EndSilenceTimeout):
                # §4: with voice detection the server ends the task itself
                # (RecognitionCompleted without Stop) once the silence runs out.
                await self._complete()
                return True
        return False

    def _final_span(self) -> tuple[int, int, int] | None:
        """``(begin, end, speech end)`` of the final result's audio, or None for silence."""
        if self._segmenter is None:
            size = self._buffer.size
            return (0, size, size) if size else None
        if self._speech is None:
            return None  # silence only: the result is "" (not an error)
        if self._speech.end < 0:
            size = self._buffer.size
            return self._speech.begin, size, size
        return self._speech.begin, self._speech.end, self._speech.speech_end

    def _decode(self, begin: int, end: int, speech_end: int) -> asyncio.Task[AsrResult]:
        """The final decode of ``begin…end``, reused while the speech end is the same."""
        key = (begin, speech_end)
        if self._final is not None and self._final[0] == key and not self._final[1].cancelled():
            return self._final[1]
        audio = self._buffer.view(begin, end)
        self._drop_final()
        task = asyncio.ensure_future(self._final_decode(audio))
        task.add_done_callback(_retrieve)
        self._final = (key, task)
        return task

    async def _final_decode(self, audio: Float32Array) -> AsrResult:
        options = params.asr_options(self._cmd, self.ctx.project, final=True)
        return await self.ctx.runner.transcribe(self._asr, audio, options)

    def _drop_final(self) -> None:
        """Speech resumed: the speculative decode is stale. Cancelling it frees its place in
        the runner's queue; one the engine already runs finishes unused."""
        if self._final is not None:
            self._final[1].cancel()
            self._final = None

    def _maybe_partial(self) -> None:
        """Start a partial decode if enabled, idle and enough new audio has arrived."""
        if not self._cmd.enable_intermediate_result or self._partial is not None:
            return
        if self._segmenter is not None and (
            self._speech is None or self._speech.end >= 0 or self._paused
        ):
            return  # no speech yet, or paused: nothing new to say
        begin = 0 if self._speech is None else self._speech.begin
        end = self._buffer.size
        if self._partial_end <= begin and self._segmenter is not None:
            # The first partial: as soon as there is enough speech to say something.
            if end - begin < (PRE_ROLL_MS + FIRST_PARTIAL_MS) * RATE // 1000:
                return
        elif end - max(self._partial_end, begin) < PARTIAL_STEP_MS * RATE // 1000:
            return
        self._partial_end = end
        self._partial = asyncio.ensure_future(self._send_partial(begin, end))

    async def _send_partial(self, begin: int, end: int) -> None:
        try:
            audio = self._buffer.view(begin, end)
            options = params.asr_options(self._cmd, self.ctx.project, final=False)
            result = await self.ctx.runner.transcribe(self._asr, audio, options)
            if result.text and result.text != self._last_partial and not self._finished:
                self._last_partial = result.text
                # §4.3: {result, duration}: duration is the audio processed so far (ms)
                await self.ctx.send_event(
                    "RecognitionResultChanged",
                    {"result": result.text, "duration": end * 1000 // RATE},
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("! partial decode failed")
            self._finished = True
            await self.ctx.fail(Status.SERVER_ERROR, Status.SERVER_ERROR.text.format(exc))
        finally:
            self._partial = None

    async def _complete(self) -> None:
        """Send ``RecognitionCompleted`` with the final result and finish the task."""
        self._finished = True  # no partial may follow the final result
        span = self._final_span()
        text = ""
        if span is not None:
            text = (await self._decode(*span)).text
        duration = self._buffer.size * 1000 // RATE
        await self.ctx.send_event("RecognitionCompleted", {"result": text, "duration": duration})
        self.done = True


def _retrieve(task: asyncio.Task[AsrResult]) -> None:
    """Mark a dropped speculative decode's error as seen (the final decodes again)."""
    if not task.cancelled():
        task.exception()
