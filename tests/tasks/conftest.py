"""Fixtures for the task-handler tests (fakes in ``tasks.fakes``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nls_gateway.tasks.base import Engines
from nls_gateway.testing import ScriptedVad
from tasks.fakes import FakeContext, ScriptedAsr, ScriptedTts, ThreadRunner


@pytest.fixture
def runner() -> Iterator[ThreadRunner]:
    r = ThreadRunner()
    yield r
    r.shutdown()


@pytest.fixture
def asr() -> ScriptedAsr:
    return ScriptedAsr()


@pytest.fixture
def tts() -> ScriptedTts:
    return ScriptedTts()


@pytest.fixture
def make_ctx(
    runner: ThreadRunner, asr: ScriptedAsr, tts: ScriptedTts
) -> Callable[..., FakeContext]:
    def make(namespace: str = "SpeechRecognizer", **kw: Any) -> FakeContext:
        engines = kw.pop("engines", Engines(asr=asr, vad=ScriptedVad(), tts=tts))
        return FakeContext(engines=engines, runner=runner, namespace=namespace, **kw)

    return make
