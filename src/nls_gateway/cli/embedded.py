"""The embedded gateway: a real gateway on a free loopback port, inside the CLI process.

When a speech command gets no ``--url`` (nor ``NLS_URL``), it starts one of these and
talks to it through the SDK exactly as it would to the cloud. The gateway runs on its own
event loop in a daemon thread, so the command's client code keeps ``asyncio.run`` for
itself, and it is shut down when the ``with`` block ends. Engines are loaded once per
process and only those the command needs (recognition needs no TTS model, synthesis no
ASR model); later embedded gateways in the same process reuse them.

It must not parse arguments or print: ``target.py`` decides when to start one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from types import TracebackType
from typing import cast

from nls_gateway.auth import Credentials
from nls_gateway.config import ServerConfig
from nls_gateway.engines.base import AsrEngine, TtsEngine, VadEngine
from nls_gateway.server import Gateway, serve
from nls_gateway.tasks.base import Engines, Project

__all__ = ["APPKEYS", "EmbeddedGateway", "TOKEN", "load", "local_config", "preload"]

TOKEN = "embedded"
"""Any token works on the embedded gateway (dev mode); this one is sent."""
APPKEYS: dict[str, Project] = {
    "zh": Project(language="zh"),
    "en": Project(language="en"),
    "auto": Project(language="auto"),
}
"""Appkey → recognition language; the CLI's ``--language`` picks the appkey."""

_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0

_cache: dict[tuple[str, str], object] = {}
_cache_lock = threading.Lock()


def load(kind: str, name: str) -> object:
    """The engine ``kind`` (asr/vad/tts) called ``name``, loaded once per process.

    Raises:
        EngineUnavailableError: its package or weights are missing (the message says how
            to install them).
    """
    from nls_gateway import modelstore
    from nls_gateway.engines import registry

    loaders = {"asr": registry.load_asr, "vad": registry.load_vad, "tts": registry.load_tts}
    with _cache_lock:
        engine = _cache.get((kind, name))
        if engine is None:
            engine = _cache[(kind, name)] = loaders[kind](
                name, locate=modelstore.locate, cache_dir=modelstore.cache_dir()
            )
        return engine


def preload(
    engines: Engines, *, asr: str = "whisper", vad: str = "silero", tts: str = "kokoro"
) -> None:
    """Hand already-loaded engines to later embedded gateways (tests share theirs)."""
    with _cache_lock:
        for kind, name, engine in (
            ("asr", asr, engines.asr),
            ("vad", vad, engines.vad),
            ("tts", tts, engines.tts),
        ):
            if engine is not None:
                _cache[(kind, name)] = engine


def local_config() -> ServerConfig:
    """The embedded gateway's configuration: loopback, any token, no overload refusals."""
    # Dev mode, said explicitly: nobody else can reach 127.0.0.1, and an explicit flag
    # keeps the config from logging its "no credentials" warning on every command.
    return ServerConfig(
        host="127.0.0.1",
        port=0,
        credentials=Credentials(appkeys=dict(APPKEYS), dev_mode=True),
        # Synthesis of a long text or transcription of a long file sent at full speed
        # queues engine work; the cloud's 10 s idle rule would otherwise cut it.
        idle_timeout=60.0,
        # Its only client is this process: a sentence it queued behind its own is never
        # refused as overload, however slow the machine (no final deadline).
        final_deadline_s=None,
        shutdown_grace=0.0,
    )


class EmbeddedGateway:
    """A gateway on ``127.0.0.1:0`` in a background thread; use it as a context manager.

    Args:
        need: which engines to load: any of ``asr``, ``vad``, ``tts``.
        asr: ASR engine name (``engines.registry``).
        vad: VAD engine name.
        tts: TTS engine name.
    """

    def __init__(
        self,
        need: Collection[str] = ("asr", "vad", "tts"),
        *,
        asr: str = "whisper",
        vad: str = "silero",
        tts: str = "kokoro",
    ) -> None:
        self.need = frozenset(need)
        self.names = {"asr": asr, "vad": vad, "tts": tts}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gateway: Gateway | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/ws/v1``."""
        return self._require().url

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT`` (CreateToken, /voices, /healthz)."""
        return self._require().http_url

    def engines(self) -> Engines:
        """Load (or reuse) the engines this gateway needs (blocking)."""
        picked = {kind: load(kind, self.names[kind]) for kind in self.need}
        return Engines(
            asr=cast("AsrEngine | None", picked.get("asr")),
            vad=cast("VadEngine | None", picked.get("vad")),
            tts=cast("TtsEngine | None", picked.get("tts")),
        )

    def start(self) -> EmbeddedGateway:
        """Load the engines, then bind a free loopback port and serve (returns when ready).

        Raises:
            EngineUnavailableError: an engine could not be loaded.
            OSError: no loopback port could be bound.
        """
        engines = self.engines()
        config = local_config()
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="nls-embedded-gateway", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        gateway = serve(config, engines=engines)
        try:
            asyncio.run_coroutine_threadsafe(_start(gateway), loop).result(_START_TIMEOUT_S)
        except BaseException:
            self._stop_loop()
            raise
        self._gateway = gateway
        return self

    def close(self) -> None:
        """Shut the gateway down and stop its thread. Idempotent."""
        gateway, loop = self._gateway, self._loop
        self._gateway = None
        if gateway is not None and loop is not None:
            future = asyncio.run_coroutine_threadsafe(gateway.shutdown(grace=0), loop)
            try:
                future.result(_STOP_TIMEOUT_S)
            except TimeoutError:
                future.cancel()
        self._stop_loop()

    def __enter__(self) -> EmbeddedGateway:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _require(self) -> Gateway:
        if self._gateway is None:
            raise RuntimeError("embedded gateway not started")
        return self._gateway

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()


async def _start(gateway: Gateway) -> None:
    await gateway.start()
    await gateway.wait_ready()
