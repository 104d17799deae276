"""The one background event loop every callback-style session in the process shares.

Design decision 2 (design.md): no thread per session. The drop-in classes run their
sessions as coroutines on this loop (one daemon thread, started on first use) and talk
to it with thread-safe futures; user callbacks run elsewhere (``dispatcher``), never on
this thread, so any SDK method can be called from a callback without deadlock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["SharedLoop", "shared_loop"]

_T = TypeVar("_T")


class SharedLoop:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._batch: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        self._batch_lock = threading.Lock()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nls-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop; returns a thread-safe future of its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread soon (thread-safe, non-blocking).

        Calls are batched: waking the loop costs a self-pipe write, so calls made while a
        wake-up is already pending ride along with it (one write per burst of audio from
        many sessions instead of one per frame).
        """
        with self._batch_lock:
            self._batch.append((fn, args))
            if len(self._batch) > 1:
                return
        self.loop.call_soon_threadsafe(self._run_batch)

    def _run_batch(self) -> None:
        with self._batch_lock:
            batch, self._batch = self._batch, []
        for fn, args in batch:
            fn(*args)

    def in_loop(self) -> bool:
        """True when called on the loop thread (where blocking would deadlock)."""
        return threading.current_thread() is self.thread


_instance: SharedLoop | None = None
_lock = threading.Lock()


def shared_loop() -> SharedLoop:
    """The process's shared loop, started on first use."""
    global _instance
    with _lock:
        if _instance is None or not _instance.thread.is_alive():
            _instance = SharedLoop()
        return _instance
