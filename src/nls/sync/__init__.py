"""The thread bridge: one shared event loop thread and a bounded callback pool."""

from __future__ import annotations

from nls.sync.dispatcher import SerialQueue, callback_pool
from nls.sync.loop import SharedLoop, shared_loop
from nls.sync.session import SyncSession

__all__ = ["SerialQueue", "SharedLoop", "SyncSession", "callback_pool", "shared_loop"]
