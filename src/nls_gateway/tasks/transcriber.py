"""SpeechTranscriber (real-time transcription, protocol.md §5): a stream → sentences.

This module owns the SpeechTranscriber task: it validates ``StartTranscription``, answers
``TranscriptionStarted {session_id}``, decodes the client's frames to 16 kHz float32, lets
the VAD segmenter cut them into sentences and reports each sentence as ``SentenceBegin``
→ (``TranscriptionResultChanged``)* → ``SentenceEnd``; ``ControlTranscriber`` changes
``max_sentence_silence`` mid-stream and ``StopTranscription`` flushes the open sentence
before ``TranscriptionCompleted``.

Theory of operation: each frame goes through one executor call (decode + VAD, rule R10,
the shared ``AsrTask`` ingest). Decodes start as soon as their audio is known and run in
the gateway's ``DecodeScheduler`` (finals before partials): a sentence's final decode
starts when the segmenter ends it, which also drops the sentence's queued partial, and a
partial starts when the shared cadence says it is due (``nls_gateway.tasks.asr``). What
goes to the client is queued as *jobs* to one worker coroutine per task that sends them
strictly in order (awaiting a sentence's final before its ``SentenceEnd``), so a
``SentenceBegin`` never overtakes the previous ``SentenceEnd`` however slow the decoder,
and a partial whose sentence already ended is never sent. Times are ms from the start of
the stream.

Speculative finals: when the segmenter reports a pause of ``SPECULATIVE_PAUSE_MS`` inside
a sentence, the final (beam) decode of the sentence so far starts at once (at most one per
task, keyed by the sentence begin and speech end). If speech resumes it is dropped; if
the sentence then ends with the same speech end, the ``SentenceEnd`` reuses it, so it goes
out as soon as ``max_sentence_silence`` has passed.

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from nls.protocol import Command, ControlTranscriber, StartTranscription
from nls_gateway.engines.base import AsrResult, Float32Array
from nls_gateway.exception import EngineError
from nls_gateway.segmenter import (
    PauseEnded,
    PauseStarted,
    Segmenter,
    SegmenterConfig,
    SegmenterEvent,
    SpeechEnded,
    SpeechStarted,
)
from nls_gateway.tasks import params, semantic
from nls_gateway.tasks.asr import RATE, AsrTask
from nls_gateway.tasks.base import TaskContext

__all__ = ["Transcriber"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_SENTENCE_SILENCE = 800
"""§5.1 default ``max_sentence_silence``."""
MAX_DECODE_MS = 20_000
"""Sentences are split at their best pause before this length, below NLS's 60 s
(``Limits.max_sentence_ms``) and Whisper's 30 s encoder window, beyond which the engine has
to cut the audio itself at an energy minimum with no idea of the speech. Every partial and
final of a sentence re-decodes all of it, so their cost grows with its length; on the
continuous zh_dev_long_02 (52.7 s, no 800 ms pause) 20 s pieces gave CER 20.2 % in 2.9 s
of decoding against 21.9 % in 4.4 s for 30 s (benchmarks/asr_accuracy.py, 2026-12-05)."""
SPECULATIVE_PAUSE_MS = 200
"""A pause this long starts the sentence's final decode. Its audio then ends up to 100 ms
before the sentence's (the segmenter's post-roll is 300 ms), which is silence after the
speech end both share. Waiting for the whole post-roll delays the final whenever the
speaker stops talking less than 300 ms before Stop (capacity.py, 1 stream: 583 ms after
Stop at 300 ms, 493 ms at 200 ms, one run each)."""


@dataclass(frozen=True, slots=True)
class _Begin:
    index: int
    time: int


@dataclass(frozen=True, slots=True)
class _Changed:
    """A partial result, ready to send."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _End:
    index: int
    begin: int
    end: int
    final: asyncio.Future[AsrResult]
    """The engine's final decode of the sentence (perhaps the speculative one, started
    at a pause, or a piece of a semantic split, already done); shaped when sent."""
    audio: Float32Array | None = None
    """Semantic mode: the sentence's audio, to break the final at its sentence marks."""


_Job = _Begin | _Changed | _End


class Transcriber(AsrTask[StartTranscription, list[SegmenterEvent]]):
    """The SpeechTranscriber task (§5)."""

    namespaces = ("SpeechTranscriber",)
    start_type = StartTranscription
    _segmenter: Segmenter

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._index = 0  # last SentenceBegin index (from 1, §5.4)
        self._ended = 0  # last index whose SentenceEnd is queued
        self._paused = False
        self._finals: set[asyncio.Task[AsrResult]] = set()
        # Speculative final decode: ((sentence begin ms, speech end ms), task)
        self._spec: tuple[tuple[int, int], asyncio.Task[AsrResult]] | None = None
        # Where the open sentence begins (ms); later than the segmenter's sentence once a
        # semantic break cut its front off.
        self._begin: int | None = None
        self._splitter: asyncio.Task[None] | None = None  # a semantic split's decode
        self._shift = 0  # sentences a final's semantic breaks added (worker side)
        self._keep_open = False  # a forced split fell before the open sentence began

    async def on_start(self) -> None:
        """Validate (41010100/41010101/40000003), then ``TranscriptionStarted``."""
        cmd = self._check_start()
        # §5.1: max_sentence_silence 200–6000 ms (the newest API page), else 40000003
        params.check_range("max_sentence_silence", cmd.max_sentence_silence, 200, 6000)
        params.check_range("speech_noise_threshold", cmd.speech_noise_threshold, -1, 1)
        vad = self._engines(need_vad=True)
        assert vad is not None  # _engines checked it
        config = SegmenterConfig(
            max_sentence_silence_ms=cmd.max_sentence_silence or DEFAULT_MAX_SENTENCE_SILENCE,
            speech_noise_threshold=cmd.speech_noise_threshold or 0.0,
            max_sentence_ms=max(1000, min(self.ctx.limits.max_sentence_ms, MAX_DECODE_MS)),
            pause_ms=SPECULATIVE_PAUSE_MS,
        )
        self._segmenter = await self._segmenter_for(vad, config)
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
        """Cancel the worker and every decode still pending (their results are dropped)."""
        self._drop_spec()
        self._drop_split()
        for task in self._finals:
            task.cancel()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker
        await super().close()

    # ------------------------------------------------------------------ internals

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
                if self._keep_open:
                    self._keep_open = False  # the sentence goes on from its own begin
                    continue
                self._index += 1
                self._begin = event.begin_ms
                self._cadence.begin(event.begin_ms * RATE // 1000)
                self._jobs.put_nowait(_Begin(self._index, event.begin_ms))
            elif isinstance(event, SpeechEnded):
                # forced=True: speech over limits.max_sentence_ms split at a pause (§2.5)
                begin = event.begin_ms if self._begin is None else self._begin
                if event.forced and event.end_ms < begin + semantic.MIN_SENTENCE_MS:
                    # The segmenter measures from its own sentence begin; a semantic
                    # break already cut that sentence later than its split point.
                    self._keep_open = True
                    continue
                self._ended = self._index
                self._paused = False
                self._begin = None
                self._cadence.end()
                self._drop_partials()  # the final below replaces them
                self._drop_split()  # and the whole sentence's final, a split of its front
                audio = _after(event.audio, event.begin_ms, begin)
                final = self._take_spec(event, begin) or self._start_final(audio)
                by_meaning = params.semantic_sentences(self._cmd)
                end = _End(self._index, begin, event.end_ms, final, audio if by_meaning else None)
                self._jobs.put_nowait(end)

    def _start_final(self, audio: Float32Array) -> asyncio.Task[AsrResult]:
        # Semantic mode breaks finals too, which needs their word times.
        words = True if params.semantic_sentences(self._cmd) else None
        task = asyncio.ensure_future(self._decode_final(audio, words=words))
        task.add_done_callback(_retrieve)
        self._finals.add(task)
        task.add_done_callback(self._finals.discard)
        return task

    def _start_spec(self, event: PauseStarted) -> None:
        """Start the final decode of the paused sentence (replacing a dropped one)."""
        self._drop_spec()
        begin = event.begin_ms if self._begin is None else self._begin
        audio = _after(event.audio, event.begin_ms, begin)
        self._spec = ((begin, event.speech_end_ms), self._start_final(audio))

    def _drop_spec(self) -> None:
        """Speech resumed: the speculative decode is stale. Cancelling it frees its place
        in the scheduler's queue; one the engine already runs finishes unused."""
        if self._spec is not None:
            self._spec[1].cancel()
            self._spec = None

    def _take_spec(self, event: SpeechEnded, begin: int) -> asyncio.Task[AsrResult] | None:
        """The speculative decode of ``event``'s sentence (from ``begin``), if it decoded
        the same speech."""
        spec, self._spec = self._spec, None
        if spec is None:
            return None
        same = (begin, event.speech_end_ms) == spec[0]
        if same and not spec[1].cancelled():
            return spec[1]
        spec[1].cancel()
        return None

    def _maybe_partial(self) -> None:
        seg = self._segmenter
        by_meaning = params.semantic_sentences(self._cmd)
        # Semantic breaks are read off the partials, so it decodes them even when the
        # client does not want them (NLS requires enable_intermediate_result with it).
        if not (self._cmd.enable_intermediate_result or by_meaning) or self._paused:
            return
        seg_begin, begin = seg.sentence_begin_ms, self._begin
        if seg_begin is None or begin is None:
            return
        if not self._cadence.due(seg.audio.end, seg.speech_end):
            return
        self._cadence.sent(seg.audio.end)
        index, audio = self._index, _after(seg.current_audio(), seg_begin, begin)
        end = begin + audio.size * 1000 // RATE

        async def deliver(result: AsrResult) -> None:
            # Not when its SentenceEnd is already queued (a pause or a semantic break).
            if index > self._ended and self._cmd.enable_intermediate_result:
                payload = self._result_payload(index, end, begin, result)
                self._jobs.put_nowait(_Changed(payload))

        def inspect(result: AsrResult) -> None:
            if index == self._index and index > self._ended and self._splitter is None:
                if semantic.breaks(result.text):
                    split = self._split(index, begin, audio)
                    self._splitter = asyncio.ensure_future(split)

        self._partial(audio, deliver, inspect if by_meaning else None)

    async def _split(self, index: int, begin: int, audio: Float32Array) -> None:
        """Semantic mode: a partial of sentence ``index`` (from ``begin`` ms) showed a
        finished sentence. Decode ``audio`` again with word times, end each finished
        sentence at its cut and go on with the rest as a new sentence."""
        try:
            result = await self._decode_final(audio, words=True)
        except EngineError as exc:
            # The VAD still ends the sentence, and its final says what went wrong.
            logger.info("semantic split skipped: %s", exc)
            return
        except Exception as exc:
            logger.exception("! semantic split failed")
            await self._fail(exc)
            return
        finally:
            if self._splitter is asyncio.current_task():
                self._splitter = None
        if index != self._index or index <= self._ended or begin != self._begin:
            return  # the sentence ended (or was split) meanwhile
        pieces = semantic.split(result, audio, RATE, more=True)[:-1]  # the rest goes on
        if not pieces:
            return
        self._drop_spec()  # it decoded from the old begin
        for piece in pieces:
            done: asyncio.Future[AsrResult] = asyncio.get_running_loop().create_future()
            done.set_result(piece.result)
            start, cut = begin + piece.start_ms, begin + piece.end_ms
            self._jobs.put_nowait(_End(self._index, start, cut, done))
            self._ended = self._index
            self._index += 1
            self._jobs.put_nowait(_Begin(self._index, cut))
        self._begin = begin + pieces[-1].end_ms
        self._cadence.begin(self._begin * RATE // 1000)

    def _drop_split(self) -> None:
        if self._splitter is not None:
            self._splitter.cancel()
            self._splitter = None

    async def _work(self) -> None:
        """Send the queued sentence events in order."""
        try:
            while (job := await self._jobs.get()) is not None:
                if isinstance(job, _Begin):
                    await self._sentence_begin(job.index + self._shift, job.time)
                elif isinstance(job, _Changed):
                    payload = {**job.payload, "index": job.payload["index"] + self._shift}
                    await self.ctx.send_event("TranscriptionResultChanged", payload)
                else:
                    await self._sentence_ends(job)
        except asyncio.CancelledError:
            raise
        except EngineError as exc:
            logger.warning("! transcription failed: %s", exc)
            await self._fail(exc)
        except Exception as exc:
            logger.exception("! transcription worker failed")
            await self._fail(exc)

    async def _sentence_begin(self, index: int, time_ms: int) -> None:
        # §5.4 SentenceBegin {index, time}: sentence start from stream start
        await self.ctx.send_event("SentenceBegin", {"index": index, "time": time_ms})

    async def _sentence_ends(self, job: _End) -> None:
        """The sentence's ``SentenceEnd``; in semantic mode one per finished sentence of
        its final (each after the first with its own ``SentenceBegin``), so a sentence the
        VAD ended before a partial showed its breaks is broken all the same."""
        raw = await job.final
        index = job.index + self._shift
        if job.audio is None:
            pieces = [semantic.Piece(raw, 0, job.end - job.begin)]
        else:
            pieces = semantic.split(raw, job.audio, RATE)
        for n, piece in enumerate(pieces):
            begin = job.begin + piece.start_ms
            if n:
                self._shift += 1
                index += 1
                await self._sentence_begin(index, begin)
            end = job.end if n == len(pieces) - 1 else job.begin + piece.end_ms
            result = self._shape(piece.result, final=True)
            payload = self._result_payload(index, end, begin, result)
            payload["begin_time"] = begin
            await self.ctx.send_event("SentenceEnd", payload)

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


def _after(audio: Float32Array, audio_begin_ms: int, begin_ms: int) -> Float32Array:
    """The part of ``audio`` (which starts at ``audio_begin_ms``) from ``begin_ms`` on."""
    return audio[max(0, begin_ms - audio_begin_ms) * RATE // 1000 :]


def _retrieve(task: asyncio.Task[AsrResult]) -> None:
    """Mark a dropped speculative decode's error as seen (its sentence decodes again)."""
    if not task.cancelled():
        task.exception()
