"""DecodeScheduler: when ASR decodes run, in which order, and which are dropped.

This module owns the order of speech-recognition work on the engine. Live streams ask for
two kinds of decode: *finals* (a ``SentenceEnd``, a ``RecognitionCompleted``, a
speculative final at a pause) and *partials* (``*ResultChanged``). A caller is waiting
for a final; a partial is only a preview that the next partial or the final replaces. So:

* finals always go before partials: a batch holds finals while any are queued;
* a stream has at most one queued partial: a newer partial (newer audio) or a final of
  the same stream supersedes it, and a superseded partial resolves to ``None`` without
  being decoded (work never queues behind work it makes stale);
* partials get at most ``partial_share`` of the engine's time: after a partial batch that
  took *d* seconds the lane rests *d* × (1 / share − 1) before the next partial batch
  (a final starts at once), and a partial batch holds at most ``max_partial_batch``
  segments, so a final that arrives while partials run waits for a short call only; a
  partial batch is also abandoned at the engine's next step (``AsrOptions.abandon``:
  before the encoder, before the decoder) once a final is queued, so that final waits
  for one encoder pass at most (``nls_decodes_dropped_total{reason="preempted"}``);
* decodes run in ``lanes`` model calls at once (default 1: CTranslate2 already spreads one
  call over every core, and two calls at once only split the cores between them, while a
  free executor thread keeps audio ingest and TTS moving); what is queued when a lane
  frees up goes as one ``transcribe_batch`` (measured cheaper per segment, BENCHMARKS.md);
* a final queued longer than ``final_deadline_s`` fails its task with
  ``EngineError("Instance pool exhausted!")`` (50000000, the cloud's overload answer,
  protocol.md §9) instead of answering seconds late; a partial older than that is dropped.
  A final's wait counts from when its stream's previous final was answered: a client that
  sends a recording faster than real time queues several sentences of its own, and that
  backlog is its own doing, not the gateway's overload.

``partial_backlog`` tells task handlers how deep the partial queue is, so they space their
partials out when the engine is behind (see ``nls_gateway.tasks.asr``).

It knows nothing of sockets, NLS messages or tasks: a *stream* is any hashable key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from nls_gateway.engines.base import AsrEngine, AsrOptions, AsrResult, Float32Array
from nls_gateway.exception import DecodeAbandoned, EngineError
from nls_gateway.metrics import GatewayMetrics

__all__ = ["BUSY", "DecodeScheduler"]

logger = logging.getLogger(__name__)

BUSY = "Instance pool exhausted!"
"""The cloud's text for an overloaded engine pool (50000000, protocol.md §9)."""

EngineCall = Callable[..., Awaitable[Any]]
"""``call(op, fn, *args)``: run ``fn(*args)`` on the engine executor (the runner's)."""


@dataclass(eq=False, slots=True)
class _Request:
    asr: AsrEngine
    audio: Float32Array
    options: AsrOptions
    stream: Hashable
    future: asyncio.Future[AsrResult | None]
    queued: float
    waits_from: float | None = None
    """When the deadline clock started (finals): None while the stream's previous final
    is still being decoded or queued."""

    @property
    def kind(self) -> str:
        return "final" if self.options.final else "partial"


class DecodeScheduler:
    """Priority queue of ASR decodes in front of the engine executor.

    Args:
        call: runs one engine call off the loop (``EngineRunner._call``).
        lanes: model calls at once.
        max_batch: segments per ``transcribe_batch`` call of finals.
        max_partial_batch: segments per call of partials.
        partial_share: the most of the lane's time partials may take (0 < share ≤ 1).
        batch_window_ms: when every lane is idle and other tasks are live, how long the
            first segment waits for theirs (alone it goes at once).
        live_tasks: how many tasks are live (``Admission.active``); None: always wait.
        final_deadline_s: a final queued longer than this fails (None: never).
        metrics: queue depth, wait and decode time, real-time factor.
    """

    def __init__(
        self,
        call: EngineCall,
        *,
        lanes: int = 1,
        max_batch: int = 8,
        max_partial_batch: int = 2,
        partial_share: float = 0.5,
        batch_window_ms: float = 5.0,
        final_deadline_s: float | None = 3.0,
        metrics: GatewayMetrics | None = None,
        live_tasks: Callable[[], int] | None = None,
    ) -> None:
        if lanes < 1 or max_batch < 1 or max_partial_batch < 1:
            raise ValueError("lanes and batch sizes must be at least 1")
        if not 0 < partial_share <= 1:
            raise ValueError("partial_share must be within (0, 1]")
        self._call = call
        self._lanes = lanes
        self._max_batch = max_batch
        self._max_partial_batch = max_partial_batch
        self._rest_factor = 1.0 / partial_share - 1.0
        self._partials_after = 0.0  # loop time before which no partial batch starts
        self._rest: asyncio.TimerHandle | None = None
        self._window_s = batch_window_ms / 1000.0
        self._deadline = final_deadline_s
        self._metrics = metrics
        self._finals: deque[_Request] = deque()
        self._partials: dict[Hashable, _Request] = {}  # insertion order = oldest first
        self._last_final: dict[Hashable, _Request] = {}  # each stream's newest final
        self._busy = 0
        self._live_tasks = live_tasks
        self._timer: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def queued(self) -> tuple[int, int]:
        """``(finals, partials)`` waiting for a lane."""
        return len(self._finals), len(self._partials)

    @property
    def partial_backlog(self) -> float:
        """Queued partials per batch: 0 when partials go at once, 1 when a batch is waiting."""
        return len(self._partials) / self._max_partial_batch

    async def decode(
        self, asr: AsrEngine, audio: Float32Array, options: AsrOptions, *, stream: Hashable
    ) -> AsrResult | None:
        """Decode one segment of ``stream``; ``None`` when a partial was superseded.

        Raises:
            EngineError: the final waited past its deadline, the gateway is shutting down,
                or the engine call timed out. Any other exception the engine raises for a
                batch reaches only the segment(s) that cause it.
        """
        if self._closed:
            raise EngineError("gateway is shutting down")
        loop = asyncio.get_running_loop()
        request = _Request(asr, audio, options, stream, loop.create_future(), loop.time())
        self._supersede(stream)  # a newer partial, or the final, makes the queued one stale
        if options.final:
            self._queue_final(request, loop)
        else:
            self._partials[stream] = request
        self._observe_depth()
        self._kick(loop)
        try:
            return await request.future
        except asyncio.CancelledError:
            # The caller gave up (speech resumed, the client left): free its place.
            self._forget(request)
            raise

    def close(self) -> None:
        """Fail everything queued; batches already running finish in their threads."""
        self._closed = True
        for timer in (self._timer, self._rest):
            if timer is not None:
                timer.cancel()
        for request in [*self._finals, *self._partials.values()]:
            if not request.future.done():
                request.future.set_exception(EngineError("gateway is shutting down"))
        self._finals.clear()
        self._partials.clear()

    # ---------------------------------------------------------------- queue

    def _final_waiting(self) -> bool:
        return bool(self._finals)

    def _queue_final(self, request: _Request, loop: asyncio.AbstractEventLoop) -> None:
        previous = self._last_final.get(request.stream)
        self._last_final[request.stream] = request
        if previous is None or previous.future.done():
            request.waits_from = request.queued
        else:  # its clock starts when the stream's previous final is answered
            previous.future.add_done_callback(lambda _: setattr(request, "waits_from", loop.time()))

        def done(_: object) -> None:
            if self._last_final.get(request.stream) is request:
                del self._last_final[request.stream]

        request.future.add_done_callback(done)
        self._finals.append(request)

    def _supersede(self, stream: Hashable) -> None:
        stale = self._partials.pop(stream, None)
        if stale is not None and not stale.future.done():
            stale.future.set_result(None)
            self._count("superseded")

    def _forget(self, request: _Request) -> None:
        if self._partials.get(request.stream) is request:
            del self._partials[request.stream]
        elif request in self._finals:
            self._finals.remove(request)
        self._observe_depth()

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        """Work arrived: start a batch when a lane is free: after the window while other
        streams are live, else once this loop iteration's requests are in."""
        if self._busy >= self._lanes:
            return
        if self._timer is not None:
            full = len(self._finals) >= self._max_batch or (
                len(self._partials) >= self._max_partial_batch
            )
            if not full:
                return
            self._timer.cancel()  # a full batch need not wait for company
            self._dispatch()
        elif self._window_s > 0 and self._busy == 0 and self._others_live():
            self._timer = loop.call_later(self._window_s, self._dispatch)
        else:
            self._timer = loop.call_soon(self._dispatch)

    def _others_live(self) -> bool:
        """True when another task is live: only then may a batch partner arrive."""
        return self._live_tasks is None or self._live_tasks() > 1

    def _dispatch(self) -> None:
        self._timer = None
        while self._busy < self._lanes and not self._closed:
            batch = self._take()
            if not batch:
                break
            self._busy += 1
            task = asyncio.get_running_loop().create_task(self._run(batch))
            # The loop holds tasks weakly; results travel in the requests' futures.
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._observe_depth()

    def _take(self) -> list[_Request]:
        """The next batch: queued finals (oldest first), else the oldest partials."""
        now = asyncio.get_running_loop().time()
        for request in list(self._finals):
            if request.future.done():
                self._finals.remove(request)
            elif (
                self._deadline is not None
                and request.waits_from is not None
                and now - request.waits_from > self._deadline
            ):
                self._finals.remove(request)
                self._count("deadline")
                waited = now - request.queued
                logger.warning("! final decode waited %.1f s: failing its task", waited)
                request.future.set_exception(EngineError(BUSY))
        if self._finals:
            return self._pick(self._finals, lambda r: self._finals.remove(r), self._max_batch)
        for stream, request in list(self._partials.items()):
            if self._deadline is not None and now - request.queued > self._deadline:
                del self._partials[stream]
                request.future.set_result(None)  # too old to be worth showing
                self._count("expired")
        if not self._partials:
            return []
        if now < self._partials_after:
            # Partials rest so that a final finds the lane free; wake up when they may go.
            if self._rest is None:
                self._rest = asyncio.get_running_loop().call_at(self._partials_after, self._wake)
            return []
        return self._pick(
            list(self._partials.values()),
            lambda r: self._partials.pop(r.stream),
            self._max_partial_batch,
        )

    def _wake(self) -> None:
        self._rest = None
        if not self._closed:
            self._dispatch()

    def _pick(
        self, queue: Sequence[_Request], remove: Callable[[_Request], object], size: int
    ) -> list[_Request]:
        if not queue:
            return []
        asr = queue[0].asr  # one model call serves one engine
        batch = [r for r in queue if r.asr is asr and not r.future.done()][:size]
        for request in batch:
            remove(request)
        return batch

    # ---------------------------------------------------------------- running

    async def _run(self, batch: list[_Request]) -> None:
        try:
            await self._decode(batch)
        finally:
            self._busy -= 1
            if not self._closed:
                self._dispatch()

    async def _decode(self, batch: list[_Request]) -> None:
        live = [r for r in batch if not r.future.done()]
        if not live:
            return
        started = time.perf_counter()
        kind = live[0].kind
        metrics = self._metrics
        if metrics is not None:
            metrics.asr_batch_size.observe(len(live))
            loop_now = asyncio.get_running_loop().time()
            for request in live:
                metrics.decode_wait.labels(kind).observe(loop_now - request.queued)
        asr = live[0].asr
        options = [r.options for r in live]
        if kind == "partial":  # the engine stops it once a final waits (thread-safe read)
            options = [dataclasses.replace(o, abandon=self._final_waiting) for o in options]
        try:
            if len(live) == 1:
                results = [
                    await self._call("transcribe", asr.transcribe, live[0].audio, options[0])
                ]
            else:
                audios = [r.audio for r in live]
                results = await self._call(
                    "transcribe_batch", asr.transcribe_batch, audios, options
                )
            if len(results) != len(live):
                raise EngineError(
                    f"transcribe_batch returned {len(results)} results for {len(live)} segments"
                )
        except DecodeAbandoned:
            for request in live:
                if not request.future.done():
                    request.future.set_result(None)
                    self._count("preempted")
            return
        except EngineError as exc:
            # A timeout (or shutdown) stays with the whole batch: retrying a hung segment
            # would only tie up another executor thread.
            _fail(live, exc)
            return
        except Exception as exc:
            if len(live) == 1:
                _fail(live, exc)
                return
            # One bad segment must fail only its own task: decode them one by one.
            await self._decode_each(live)
            return
        except BaseException as exc:
            _fail(live, EngineError(str(exc)))
            raise
        spent = time.perf_counter() - started
        if kind == "partial":
            loop_now = asyncio.get_running_loop().time()
            self._partials_after = loop_now + spent * self._rest_factor
        self._observe_decode(kind, live, spent)
        for request, result in zip(live, results, strict=True):
            if not request.future.done():
                request.future.set_result(result)

    async def _decode_each(self, requests: list[_Request]) -> None:
        for request in requests:
            if request.future.done():
                continue
            try:
                result = await self._call(
                    "transcribe", request.asr.transcribe, request.audio, request.options
                )
            except Exception as exc:
                if not request.future.done():
                    request.future.set_exception(exc)
            else:
                if not request.future.done():
                    request.future.set_result(result)

    # ---------------------------------------------------------------- metrics

    def _observe_depth(self) -> None:
        if self._metrics is not None:
            self._metrics.decode_queue.labels("final").set(len(self._finals))
            self._metrics.decode_queue.labels("partial").set(len(self._partials))

    def _observe_decode(self, kind: str, batch: list[_Request], seconds: float) -> None:
        if self._metrics is None:
            return
        audio_s = sum(r.audio.size for r in batch) / 16000.0
        self._metrics.decode_latency.labels(kind).observe(seconds)
        if audio_s > 0:
            self._metrics.decode_rtf.labels(kind).observe(seconds / audio_s)

    def _count(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.decodes_dropped.labels(reason).inc()


def _fail(requests: list[_Request], exc: BaseException) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(exc)
