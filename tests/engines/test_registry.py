"""Tests for nls_gateway.engines.registry: what a factory is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nls_gateway.engines import registry
from nls_gateway.exception import EngineUnavailableError


def _locate(model: Any) -> Path:
    raise AssertionError("not called")


def test_a_factory_gets_only_the_store_parameters_it_declares(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, dict[str, Any]] = {}

    def both(*, locate: Any, cache_dir: Path, speed: int = 0) -> object:
        seen["both"] = {"locate": locate, "cache_dir": cache_dir, "speed": speed}
        return object()

    def neither(*, speed: int = 0) -> object:
        seen["neither"] = {"speed": speed}
        return object()

    factories = {"both": both, "neither": neither}
    monkeypatch.setattr(registry, "_factory", lambda kind, name: factories[name])
    registry.load_tts("both", locate=_locate, cache_dir=tmp_path, speed=2)
    registry.load_tts("neither", locate=_locate, cache_dir=tmp_path, speed=3)
    assert seen["both"] == {"locate": _locate, "cache_dir": tmp_path, "speed": 2}
    assert seen["neither"] == {"speed": 3}


def test_an_unknown_engine_names_the_available_ones() -> None:
    with pytest.raises(EngineUnavailableError, match="available: kokoro"):
        registry.load_tts("nope")
