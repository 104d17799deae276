"""Engine registry: engine names → factories, imported only when an engine is loaded.

Built-in names are listed below; third-party packages add engines through the
``nls_gateway.engines`` entry-point group (entry name ``asr:NAME``, ``vad:NAME`` or
``tts:NAME``, value ``module:factory``). Only ``cli.py``/``config.py`` choose engines (R7).
A factory that declares a ``locate`` parameter (the built-in ones do) gets the model
store's ``locate`` from the caller, and one that declares ``cache_dir`` a directory for what
it derives from its weights (Kokoro's calibrations); others never see them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, cast

from nls_gateway.engines.base import AsrEngine, TtsEngine, VadEngine
from nls_gateway.exception import EngineUnavailableError

__all__ = ["BUILTIN", "available", "load_asr", "load_tts", "load_vad"]

BUILTIN: dict[str, dict[str, str]] = {
    "asr": {"whisper": "nls_gateway.engines.whisper:create"},
    "vad": {"silero": "nls_gateway.engines.silero_vad:create"},
    "tts": {"kokoro": "nls_gateway.engines.kokoro:create"},
}
"""kind → name → ``module:factory``; each factory takes keyword options only."""

ENTRY_POINT_GROUP = "nls_gateway.engines"


def available(kind: str) -> list[str]:
    """Names of the engines of ``kind`` (``asr``, ``vad`` or ``tts``)."""
    names = set(BUILTIN[kind])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        prefix, _, name = ep.name.partition(":")
        if prefix == kind:
            names.add(name)
    return sorted(names)


def load_asr(name: str = "whisper", **options: Any) -> AsrEngine:
    """Load an ASR engine by name."""
    return cast(AsrEngine, _build("asr", name, options))


def load_vad(name: str = "silero", **options: Any) -> VadEngine:
    """Load a VAD engine by name."""
    return cast(VadEngine, _build("vad", name, options))


def load_tts(name: str = "kokoro", **options: Any) -> TtsEngine:
    """Load a TTS engine by name."""
    return cast(TtsEngine, _build("tts", name, options))


_STORE = ("locate", "cache_dir")
"""What the caller's model store offers (``locate: Locate``, ``cache_dir: Path``): given to
a factory only where it declares the parameter."""


def _build(kind: str, name: str, options: dict[str, Any]) -> object:
    factory = _factory(kind, name)
    declared = inspect.signature(factory).parameters
    kept = {
        k: v for k, v in options.items() if k not in _STORE or (v is not None and k in declared)
    }
    return factory(**kept)


def _factory(kind: str, name: str) -> Callable[..., object]:
    target = BUILTIN[kind].get(name)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == f"{kind}:{name}":
                target = ep.value
                break
    if target is None:
        raise EngineUnavailableError(
            f"unknown {kind} engine {name!r}; available: {', '.join(available(kind))}"
        )
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return cast(Callable[..., object], getattr(module, attr))
