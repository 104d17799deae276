"""SpeechRecognizer (one-sentence recognition, protocol.md §4): audio → one result.

This module owns the SpeechRecognizer task: it validates ``StartRecognition``, answers
``RecognitionStarted``, decodes the client's frames to 16 kHz float32 and keeps them,
runs the VAD segmenter over them, sends ``RecognitionResultChanged`` partials and finally
``RecognitionCompleted {result, duration}`` — after ``StopRecognition``, or by itself when
``enable_voice_detection`` is on and the start/end silence runs out.

Theory of operation: every binary frame goes through one executor call (decode + VAD, the
shared ``AsrTask`` ingest), so the event loop never runs model code (R10). The audio is
kept once, in the segmenter's buffer (retain mode) or, without a VAD, in a buffer of the
task's own; decodes get views of it. The recognised span is from the first speech onset
(with the segmenter's pre-roll) to the last speech end. A *speculative* final decode
starts as soon as the VAD reports a pause of ``PAUSE_MS`` (or the end of speech); it is
keyed by the span's begin and speech end, dropped when speech resumes, and a Stop that
brings no new speech reuses it, so the final is usually ready when Stop arrives (at most
one runs per task). Partials re-decode the growing span at the shared cadence
(``nls_gateway.tasks.asr``); none runs during a pause, and Stop drops any still queued.
Silence only gives an empty result.

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from nls.protocol import Command, StartRecognition
from nls.protocol.constants import Status
from nls_gateway.engines.base import AsrResult
from nls_gateway.segmenter import (
    EndSilenceTimeout,
    PauseEnded,
    PauseStarted,
    SampleBuffer,
    Segmenter,
    SegmenterConfig,
    SegmenterEvent,
    SpeechEnded,
    SpeechStarted,
    StartSilenceTimeout,
)
from nls_gateway.tasks import params
from nls_gateway.tasks.asr import RATE, AsrTask, PartialCadence
from nls_gateway.tasks.base import TaskContext, TaskError

__all__ = ["Recognizer"]

DEFAULT_END_SILENCE_MS = 800
"""§4.1: "cloud default silence detection 800 ms" with ``enable_voice_detection``."""
SPECULATIVE_PAUSE_MS = 600
"""A pause this long ends a sentence for the segmenter (the task goes on until Stop)."""
PAUSE_MS = 200
"""A pause this long starts the speculative final decode (speech after it drops it)."""


@dataclass(slots=True)
class _Span:
    begin: int
    end: int
    speech_end: int = -1
    """End of the last speech frame (``end`` adds post-roll); -1 while speech is open."""


class Recognizer(AsrTask[StartRecognition, list[SegmenterEvent]]):
    """The SpeechRecognizer task (§4)."""

    namespaces = ("SpeechRecognizer",)
    start_type = StartRecognition

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._vd = False
        self._segmenter: Segmenter | None = None
        self._audio = SampleBuffer()  # the segmenter's own once there is one
        self._speech: _Span | None = None  # first onset … last end (end = -1 while open)
        # The speculative / final decode: ((begin, speech end), task); at most one.
        self._final_task: tuple[tuple[int, int], asyncio.Task[AsrResult]] | None = None
        self._paused = False
        self._last_partial = ""
        self._finished = False

    async def on_start(self) -> None:
        """Validate (41010100/41010101/40000003), then send ``RecognitionStarted``."""
        cmd = self._check_start()
        self._vd = bool(cmd.enable_voice_detection)
        if self._vd:
            params.check_range("max_start_silence", cmd.max_start_silence, 0, 60_000)
            params.check_range("max_end_silence", cmd.max_end_silence, 0, 6000)
        vad = self._engines(need_vad=self._vd)
        if vad is None:
            # Without a VAD the whole audio is the sentence: partials from its first sample.
            self._cadence = PartialCadence(self.ctx.limits, self.ctx.runner, pre_roll_ms=0)
            self._cadence.begin(0)
        else:
            config = SegmenterConfig(
                max_sentence_silence_ms=SPECULATIVE_PAUSE_MS,
                pause_ms=PAUSE_MS,
                max_sentence_ms=max(1000, self.ctx.limits.max_recognition_ms + 1000),
                max_start_silence_ms=cmd.max_start_silence if self._vd else None,
                max_end_silence_ms=(cmd.max_end_silence or DEFAULT_END_SILENCE_MS)
                if self._vd
                else None,
            )
            self._segmenter = await self._segmenter_for(vad, config, retain=True)
            self._audio = self._segmenter.audio
        await self.ctx.send_event("RecognitionStarted")

    async def on_audio(self, data: bytes) -> None:
        """Decode and segment one frame; may send a partial or (with VAD) complete."""
        if self.done or self._finished or self._failed:
            return  # §4: audio after the server-side end is not recognised
        events = await self._run_ingest(data, last=False)
        limit = self.ctx.limits.max_recognition_ms
        if self._audio.end > limit * RATE // 1000:
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
        if self.done or self._finished or self._failed:
            return
        self._drop_partials()  # the final has priority; their text would be dropped
        events = await self._run_ingest(b"", last=True)
        if await self._handle(events):
            return
        await self._complete()

    async def close(self) -> None:
        """Stop waiting for partials and speculative decodes."""
        self._finished = True
        final = None if self._final_task is None else self._final_task[1]
        self._final_task = None
        if final is not None:
            final.cancel()
            with contextlib.suppress(BaseException):
                await final
        await super().close()

    # ------------------------------------------------------------------ internals

    def _ingest(self, data: bytes, last: bool) -> list[SegmenterEvent]:
        """Executor side: decode one frame and run the VAD over it (R10)."""
        samples = self._decoder.finish() if last else self._decoder.feed(data)
        if self._segmenter is None:
            self._audio.append(samples)
            return []
        events = self._segmenter.accept_waveform(samples) if samples.size else []
        if last:
            events += self._segmenter.flush()
        return events

    async def _handle(self, events: list[SegmenterEvent]) -> bool:
        """Apply segmenter events; True if the task completed by itself."""
        for event in events:
            if isinstance(event, SpeechStarted):
                self._paused = False
                begin = event.begin_ms * RATE // 1000
                if self._speech is None:
                    self._speech = _Span(begin, -1)
                    self._cadence.begin(begin)
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
        size = self._audio.end
        if self._segmenter is None:
            return (0, size, size) if size else None
        if self._speech is None:
            return None  # silence only: the result is "" (not an error)
        if self._speech.end < 0:
            return self._speech.begin, size, size
        return self._speech.begin, self._speech.end, self._speech.speech_end

    def _decode(self, begin: int, end: int, speech_end: int) -> asyncio.Task[AsrResult]:
        """The final decode of ``begin…end``, reused while the speech end is the same."""
        key = (begin, speech_end)
        final = self._final_task
        if final is not None and final[0] == key and not final[1].cancelled():
            return final[1]
        self._drop_final()
        task = asyncio.ensure_future(self._final(self._audio.view(begin, end)))
        task.add_done_callback(_retrieve)
        self._final_task = (key, task)
        return task

    def _drop_final(self) -> None:
        """Speech resumed: the speculative decode is stale. Cancelling it frees its place in
        the scheduler's queue; one the engine already runs finishes unused."""
        if self._final_task is not None:
            self._final_task[1].cancel()
            self._final_task = None

    def _maybe_partial(self) -> None:
        """Ask for a partial if enabled, in speech and one is due."""
        if not self._cmd.enable_intermediate_result:
            return
        if self._segmenter is not None and (
            self._speech is None or self._speech.end >= 0 or self._paused
        ):
            return  # no speech yet, or paused: nothing new to say
        end = self._audio.end
        speech_end = None if self._segmenter is None else self._segmenter.speech_end
        if not self._cadence.due(end, speech_end):
            return
        self._cadence.sent(end)
        begin = 0 if self._speech is None else self._speech.begin
        duration = end * 1000 // RATE

        async def deliver(result: AsrResult) -> None:
            if result.text != self._last_partial and not self._finished:
                self._last_partial = result.text
                # §4.3: {result, duration}: duration is the audio processed so far (ms)
                await self.ctx.send_event(
                    "RecognitionResultChanged", {"result": result.text, "duration": duration}
                )

        self._partial(self._audio.view(begin, end), deliver)

    async def _complete(self) -> None:
        """Send ``RecognitionCompleted`` with the final result and finish the task."""
        self._finished = True  # no partial may follow the final result
        self._drop_partials()
        span = self._final_span()
        text = ""
        if span is not None:
            text = (await self._decode(*span)).text
        duration = self._audio.end * 1000 // RATE
        await self.ctx.send_event("RecognitionCompleted", {"result": text, "duration": duration})
        self.done = True


def _retrieve(task: asyncio.Task[AsrResult]) -> None:
    """Mark a dropped speculative decode's error as seen (the final decodes again)."""
    if not task.cancelled():
        task.exception()
