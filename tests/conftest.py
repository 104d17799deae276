"""Shared fixtures: an in-process gateway on 127.0.0.1:0 (``gateway`` factory).

Usage in any test module::

    async def test_something(gateway):
        gw = await gateway()                              # scripted engines, real handlers
        gw = await gateway(engines="real")                # Whisper/Silero/Kokoro, loaded once
        gw = await gateway(handlers={...}, idle_timeout=0.5, token=["t"])
        async with websockets.connect(gw.url) as ws: ...

Keyword arguments other than ``engines``/``handlers`` are ``ServerConfig`` fields, plus
``token`` / ``appkey`` / ``access_keys`` shortcuts for credentials. Every gateway started
by the fixture is shut down (grace 0) when the test ends.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import pytest

from nls_gateway.auth import Credentials
from nls_gateway.config import ServerConfig, load_engines, parse_appkey
from nls_gateway.server import Gateway, serve
from nls_gateway.tasks.base import Engines, TaskHandler
from nls_gateway.testing import ScriptedAsr, ScriptedTts, ScriptedVad

GatewayFactory = Callable[..., Awaitable[Gateway]]

# The shared data beside the clone: the model mirror (weights no registry ships) and the
# real speech for end-to-end tests. scripts/env.sh sets the same defaults.
_SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
os.environ.setdefault("NLS_MODEL_MIRROR", os.path.abspath(os.path.join(_SHARED, "models")))
os.environ.setdefault("NLS_EVAL_DIR", os.path.abspath(os.path.join(_SHARED, "eval")))

_real: Engines | None = None
_real_lock = threading.Lock()


def real_engines() -> Engines:
    """Whisper + Silero + Kokoro, loaded once per test session (blocking)."""
    global _real
    with _real_lock:
        if _real is None:
            _real = load_engines(ServerConfig(engines="real"))
            # The models' objects live for the whole session: keep them out of every
            # later collection (the per-test gc.collect below would walk them each time).
            # Undone at session end (pytest_sessionfinish), before plugins that look for
            # referrers (hypothesis's register_random) run their end-of-session imports.
            gc.freeze()
        return _real


def scripted_engines(**asr_options: Any) -> Engines:
    """Fresh scripted engines (``ScriptedAsr(**asr_options)``)."""
    return Engines(asr=ScriptedAsr(**asr_options), vad=ScriptedVad(), tts=ScriptedTts())


@pytest.fixture
async def gateway() -> AsyncIterator[GatewayFactory]:
    """Factory starting gateways in this test's event loop; all stop at teardown."""
    started: list[Gateway] = []

    async def start(
        *,
        engines: str | Engines = "scripted",
        handlers: Mapping[str, type[TaskHandler]] | None = None,
        token: list[str] | None = None,
        appkey: list[str] | None = None,
        access_keys: Mapping[str, str] | None = None,
        **config: Any,
    ) -> Gateway:
        if isinstance(engines, Engines):
            loaded = engines
        elif engines == "real":
            loaded = await asyncio.to_thread(real_engines)
        elif engines == "scripted":
            loaded = scripted_engines()
        else:
            raise ValueError(f"engines must be 'scripted', 'real' or Engines, not {engines!r}")
        if token or appkey or access_keys:
            config["credentials"] = Credentials(
                appkeys=dict(parse_appkey(a) for a in appkey or ()),
                tokens=frozenset(token or ()),
                access_keys=dict(access_keys or {}),
            )
        if engines != "real":
            # The derived stream budget measures the real engines; scripted ones cost
            # nothing, so only max_concurrent_tasks limits them unless a test asks.
            config.setdefault("max_live_streams", config.get("max_concurrent_tasks", 64))
        config.setdefault("host", "127.0.0.1")
        config.setdefault("port", 0)
        gw = serve(ServerConfig(**config), engines=loaded, handlers=handlers)
        started.append(gw)
        await gw.start()
        await gw.wait_ready()
        return gw

    yield start
    for gw in reversed(started):
        await gw.shutdown(grace=0)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect garbage after every test, so a leaked socket's ResourceWarning fails the test
    that leaked it rather than whichever test the collector happens to run in later."""
    yield
    gc.collect()


def pytest_sessionfinish() -> None:
    gc.unfreeze()
