"""EngineRunner: the one way gateway coroutines reach blocking engine code (design rule R10).

This module owns the engine executor (a ``ThreadPoolExecutor`` sized for the box), the
admission control in front of it (a bounded number of calls waiting or running; more
fail at once instead of queueing without end), the per-call timeout (a hung engine fails
its own task with ``EngineError`` and blocks nobody else) and ASR micro-batching: segments
that arrive within a few milliseconds of each other, from any session, are decoded by one
``transcribe_batch`` call (sherpa-onnx ``streaming_server.py``: one shared model, batched
decoding off the loop).

It must not call engines on the event loop, and it knows nothing of sockets or NLS
messages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nls_gateway.engines.base import AsrEngine, AsrOptions, AsrResult, Float32Array
from nls_gateway.exception import EngineError
from nls_gateway.metrics import GatewayMetrics

__all__ = ["EngineRunner", "default_threads"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# The cloud answers an exhausted instance pool with 50000000 "Instance pool exhausted!" (§9).
_BUSY = "Instance pool exhausted!"


def default_threads() -> int:
    """Executor size: one thread per CPU, at least two (a hung call must not stall all)."""
    return max(2, os.cpu_count() or 2)


@dataclass(eq=False)
class _Batch:
    asr: AsrEngine
    items: list[tuple[Float32Array, AsrOptions, asyncio.Future[AsrResult]]] = field(
        default_factory=list
    )
    timer: asyncio.TimerHandle | None = None


class EngineRunner:
    """Runs engine calls in a thread pool, with admission control, timeouts and batching.

    Implements ``nls_gateway.tasks.base.Runner``. Create it on the event loop that will
    use it; call :meth:`close` when the gateway stops.

    Args:
        threads: executor threads (default :func:`default_threads`).
        max_pending: calls handed to the executor at once; later ones wait their turn.
        max_waiting: calls waiting for a turn; one more raises ``EngineError`` at once
            (the bound that keeps a burst from becoming an unbounded backlog).
        timeout: seconds one call may take before its task fails (None: no limit).
        batch_window_ms: how long the first segment of a batch waits for company.
        max_batch: segments per ``transcribe_batch`` call.
        metrics: where latencies and batch sizes go (optional).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        max_pending: int = 256,
        max_waiting: int = 4096,
        timeout: float | None = 120.0,
        batch_window_ms: float = 5.0,
        max_batch: int = 8,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.threads = threads or default_threads()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="nls-engine"
        )
        self._slots = asyncio.Semaphore(max_pending)
        self._max_waiting = max_waiting
        self._waiting = 0
        self._pending = 0
        self._timeout = timeout
        self._window_s = batch_window_ms / 1000.0
        self._max_batch = max_batch
        self._metrics = metrics
        self._batches: dict[int, _Batch] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Engine calls (or batched segments) admitted and not finished."""
        return self._pending

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return self._waiting

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in the executor and await its result.

        Raises:
            EngineError: too many calls pending, or the call timed out; any exception
                ``fn`` raises propagates unchanged.
        """
        await self._admit()
        try:
            return await self._call(getattr(fn, "__name__", "call"), fn, *args)
        finally:
            self._release()

    async def transcribe(
        self, asr: AsrEngine, audio: Float32Array, options: AsrOptions
    ) -> AsrResult:
        """Decode one segment; segments arriving together share one model call.

        Raises:
            EngineError: too many segments pending or the batch timed out (reported to
                every segment of that batch). An exception the engine raises for a batch
                is narrowed down by decoding its segments one by one, so it reaches only
                the segment(s) that cause it.
        """
        await self._admit()
        try:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[AsrResult] = loop.create_future()
            batch = self._batches.get(id(asr))
            if batch is None:
                batch = self._batches[id(asr)] = _Batch(asr)
                # The first segment waits a few ms for others; a full batch goes at once.
                batch.timer = loop.call_later(self._window_s, self._flush, id(asr))
            batch.items.append((audio, options, future))
            if len(batch.items) >= self._max_batch:
                self._flush(id(asr))
            return await future
        finally:
            self._release()

    def close(self) -> None:
        """Stop accepting calls; running engine calls finish in their threads."""
        self._closed = True
        for batch in self._batches.values():
            if batch.timer is not None:
                batch.timer.cancel()
            for _, _, fut in batch.items:
                if not fut.done():
                    fut.set_exception(EngineError("gateway is shutting down"))
        self._batches.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- private

    async def _admit(self) -> None:
        if self._closed:
            raise EngineError("gateway is shutting down")
        if self._slots.locked():
            # All slots busy: wait in line, but only up to max_waiting calls and up to
            # the call timeout; beyond that the task fails now (50000000, §9).
            if self._waiting >= self._max_waiting:
                self._count_error("busy")
                raise EngineError(_BUSY)
            self._waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout)
            except asyncio.TimeoutError:
                self._count_error("busy")
                raise EngineError(_BUSY) from None
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        self._pending += 1

    def _release(self) -> None:
        self._pending -= 1
        self._slots.release()

    def _count_error(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.engine_errors.labels(reason).inc()

    def _flush(self, key: int) -> None:
        batch = self._batches.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._decode(batch))
        # The loop holds tasks weakly: keep a reference until done. Results and errors
        # travel in the batch's futures, so the task itself never has one to report.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decode(self, batch: _Batch) -> None:
        live = [item for item in batch.items if not item[2].done()]
        if not live:
            return
        audios = [a for a, _, _ in live]
        options = [o for _, o, _ in live]
        if self._metrics is not None:
            self._metrics.asr_batch_size.observe(len(live))
        try:
            if len(live) == 1:
                results = [
                    await self._call("transcribe", batch.asr.transcribe, audios[0], options[0])
                ]
            else:
                results = await self._call(
                    "transcribe_batch", batch.asr.transcribe_batch, audios, options
                )
            if len(results) != len(live):
                raise EngineError(
                    f"transcribe_batch returned {len(results)} results for {len(live)} segments"
                )
        except EngineError as exc:
            # A timeout (or the pool shutting down) stays with the whole batch: retrying a
            # hung segment would only tie up another executor thread.
            self._fail_all(live, exc)
            return
        except Exception as exc:
            if len(live) == 1:
                self._fail_all(live, exc)
                return
            # One bad segment must fail only its own task: decode them one by one.
            await self._decode_each(batch.asr, live)
            return
        except BaseException as exc:
            self._fail_all(live, EngineError(str(exc)))
            raise
        for (_, _, fut), result in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _decode_each(
        self,
        asr: AsrEngine,
        items: list[tuple[Float32Array, AsrOptions, asyncio.Future[AsrResult]]],
    ) -> None:
        for audio, options, fut in items:
            if fut.done():
                continue
            try:
                result = await self._call("transcribe", asr.transcribe, audio, options)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)

    @staticmethod
    def _fail_all(
        items: list[tuple[Float32Array, AsrOptions, asyncio.Future[AsrResult]]], exc: Exception
    ) -> None:
        for _, _, fut in items:
            if not fut.done():
                fut.set_exception(exc)

    async def _call(self, op: str, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(self._executor, functools.partial(fn, *args))
        try:
            # Not asyncio.wait_for: before Python 3.12 it swallows a cancellation that
            # arrives as the call completes, and a connection whose client vanished
            # would then never see its consumer end (the task leaked until shutdown).
            done, _ = await asyncio.wait({future}, timeout=self._timeout)
            if not done:
                # The thread keeps running (threads cannot be killed); only this call fails.
                future.cancel()
                self._count_error("timeout")
                logger.error("! engine call %s timed out after %.1f s", op, self._timeout)
                raise EngineError(f"engine call timed out after {self._timeout:g} s")
            return future.result()
        except asyncio.CancelledError:
            future.cancel()
            raise
        finally:
            if self._metrics is not None:
                self._metrics.engine_latency.labels(op).observe(time.perf_counter() - started)
