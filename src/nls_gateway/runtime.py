"""EngineRunner: the one way gateway coroutines reach blocking engine code (design rule R10).

This module owns the engine executor (a ``ThreadPoolExecutor`` sized for the box), the
bound on generic calls waiting for it (the policy is ``nls_gateway.admission``'s: more fail
at once instead of queueing without end) and the per-call timeout (a hung engine fails its
own task with ``EngineError`` and blocks nobody else). ASR decodes go through its
``DecodeScheduler`` (``nls_gateway.scheduler``: finals first, stale partials dropped,
streams ready together decoded as one batch).

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
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from nls_gateway.admission import Admission, AdmissionPolicy
from nls_gateway.engines.base import AsrEngine, AsrOptions, AsrResult, Float32Array
from nls_gateway.exception import EngineError
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.scheduler import BUSY, DecodeScheduler

__all__ = ["EngineRunner", "default_threads"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_SPARE_DECODE_THREADS = 2


def default_threads() -> int:
    """Executor size: one thread per CPU, at least two (a hung call must not stall all)."""
    return max(2, os.cpu_count() or 2)


class EngineRunner:
    """Runs engine calls in a thread pool, with a waiting bound, timeouts and ASR scheduling.

    Implements ``nls_gateway.tasks.base.Runner``. Create it on the event loop that will
    use it; call :meth:`close` when the gateway stops.

    Args:
        threads: executor threads (default :func:`default_threads`).
        max_pending: generic calls handed to the executor at once; later ones wait.
        admission: decides when too many calls wait and how many tasks are live
            (default: a fresh one with the policy's defaults).
        timeout: seconds one call may take before its task fails (None: no limit).
        decode_lanes: ASR model calls at once (``DecodeScheduler``).
        batch_window_ms: how long the first segment of a batch waits for company.
        max_batch: segments per ``transcribe_batch`` call.
        final_deadline_s: a final decode queued longer than this fails its task.
        metrics: where latencies and batch sizes go (optional).
    """

    def __init__(
        self,
        *,
        threads: int | None = None,
        max_pending: int = 256,
        admission: Admission | None = None,
        timeout: float | None = 120.0,
        decode_lanes: int = 1,
        batch_window_ms: float = 5.0,
        max_batch: int = 8,
        final_deadline_s: float | None = 3.0,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.threads = threads or default_threads()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.threads, thread_name_prefix="nls-engine"
        )
        self._slots = asyncio.Semaphore(max_pending)
        self._admission = admission or Admission(AdmissionPolicy(), metrics or GatewayMetrics())
        self._waiting = 0
        self._pending = 0
        self._timeout = timeout
        self._metrics = metrics
        self._closed = False
        # ASR decodes get threads of their own: a final never queues in the executor
        # behind ingest or synthesis calls. The scheduler bounds them to ``lanes`` calls;
        # the spare threads (started only when needed) serve the next decodes while a
        # timed-out call still holds its thread.
        self._decode_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=decode_lanes + _SPARE_DECODE_THREADS, thread_name_prefix="nls-decode"
        )
        self.scheduler = DecodeScheduler(
            functools.partial(self._call, pool=self._decode_pool),
            lanes=decode_lanes,
            max_batch=max_batch,
            batch_window_ms=batch_window_ms,
            final_deadline_s=final_deadline_s,
            metrics=metrics,
            live_tasks=lambda: self._admission.active,
        )

    @property
    def pending(self) -> int:
        """Generic engine calls admitted and not finished."""
        return self._pending

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return self._waiting

    @property
    def partial_backlog(self) -> float:
        """How far partial decodes are behind (``DecodeScheduler.partial_backlog``)."""
        return self.scheduler.partial_backlog

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in the executor and await its result.

        Raises:
            EngineError: too many calls waiting, or the call timed out; any exception
                ``fn`` raises propagates unchanged.
        """
        await self._admit()
        try:
            return await self._call(getattr(fn, "__name__", "call"), fn, *args)
        finally:
            self._release()

    async def decode(
        self, asr: AsrEngine, audio: Float32Array, options: AsrOptions, *, stream: Hashable
    ) -> AsrResult | None:
        """Decode one segment of ``stream`` through the scheduler (None: a superseded
        partial)."""
        return await self.scheduler.decode(asr, audio, options, stream=stream)

    def close(self) -> None:
        """Stop accepting calls; running engine calls finish in their threads."""
        self._closed = True
        self.scheduler.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._decode_pool.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- private

    async def _admit(self) -> None:
        if self._closed:
            raise EngineError("gateway is shutting down")
        if self._slots.locked():
            # All slots busy: wait in line, but only while the admission policy lets calls
            # wait and up to the call timeout; beyond that the task fails now (50000000, §9).
            if self._admission.engine_call_refused(self._waiting):
                self._count_error("busy")
                raise EngineError(BUSY)
            self._waiting += 1
            try:
                await asyncio.wait_for(self._slots.acquire(), self._timeout)
            except asyncio.TimeoutError:
                self._count_error("busy")
                raise EngineError(BUSY) from None
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

    async def _call(
        self,
        op: str,
        fn: Callable[..., _T],
        *args: Any,
        pool: concurrent.futures.Executor | None = None,
    ) -> _T:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        future = loop.run_in_executor(pool or self._executor, functools.partial(fn, *args))
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
