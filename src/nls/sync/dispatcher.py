"""Runs user callbacks off the loop thread, in order per session, on a small shared pool.

Each session owns a :class:`SerialQueue`; all queues share one bounded thread pool, so
the number of threads stays fixed however many sessions run. A callback that raises is
logged with its traceback (never swallowed silently) and the next one still runs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["DEFAULT_CALLBACK_THREADS", "SerialQueue", "callback_pool", "current_queue"]

logger = logging.getLogger("nls")

DEFAULT_CALLBACK_THREADS = int(os.environ.get("NLS_CALLBACK_THREADS", "8"))
"""Threads that run user callbacks for every session of the process."""

_BATCH = 64
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_local = threading.local()


def callback_pool() -> ThreadPoolExecutor:
    """The shared callback pool (created on first use)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(DEFAULT_CALLBACK_THREADS, thread_name_prefix="nls-callback")
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
