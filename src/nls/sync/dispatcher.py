"""Runs user callbacks off the loop thread, in order per session, on a small shared pool.

Each session owns a :class:`SerialQueue`; all queues share one bounded pool of daemon
threads, so the number of threads stays fixed however many sessions run. A callback that
raises is logged with its traceback (never swallowed silently) and the next one still runs.

Why not ``concurrent.futures.ThreadPoolExecutor``: it refuses work once the main thread
has finished, but the official examples start a worker thread and let the main thread
end, and their sessions' callbacks must keep running until that worker is done.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = [
    "DEFAULT_CALLBACK_THREADS",
    "CallbackPool",
    "SerialQueue",
    "callback_pool",
    "current_queue",
]

logger = logging.getLogger("nls")

DEFAULT_CALLBACK_THREADS = int(os.environ.get("NLS_CALLBACK_THREADS", "8"))
"""Threads that run user callbacks for every session of the process."""

_BATCH = 64
_local = threading.local()


class CallbackPool:
    """Daemon worker threads, started on demand up to ``max_threads``."""

    def __init__(self, max_threads: int = DEFAULT_CALLBACK_THREADS) -> None:
        self.max_threads = max(1, max_threads)
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on a pool thread soon; never blocks."""
        with self._lock:
            start = self._idle == 0 and self._threads < self.max_threads
            if start:
                self._threads += 1
            else:
                self._idle -= 1  # one idle worker is now spoken for
        self._jobs.put(job)
        if start:
            name = f"nls-callback-{self._threads}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            finally:
                with self._lock:
                    self._idle += 1


_pool: CallbackPool | None = None
_pool_lock = threading.Lock()


def callback_pool() -> CallbackPool:
    """The shared callback pool (created on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = CallbackPool()
        return _pool


def current_queue() -> SerialQueue | None:
    """The queue whose callback is running on this thread, if any."""
    return getattr(_local, "queue", None)


class SerialQueue:
    """Callbacks of one session: run one at a time, in submission order."""

    def __init__(self) -> None:
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; never blocks."""
        with self._lock:
            self._items.append((fn, args))
            if self._running:
                return
            self._running = True
            self._idle.clear()
        callback_pool().submit(self._drain)

    def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every queued callback has run (False on timeout).

        Returns at once when called from one of this queue's own callbacks.
        """
        if current_queue() is self:
            return True
        return self._idle.wait(timeout)

    def _drain(self) -> None:
        _local.queue = self
        try:
            for _ in range(_BATCH):
                with self._lock:
                    if not self._items:
                        self._running = False
                        self._idle.set()
                        return
                    fn, args = self._items.popleft()
                try:
                    fn(*args)
                except Exception:
                    logger.exception("! callback %s raised", getattr(fn, "__name__", fn))
            # A busy session yields its pool thread to the others, then continues.
            callback_pool().submit(self._drain)
        finally:
            _local.queue = None
