"""Admission: the overload policy (stream budget, task cap, handshakes, engine waiting)."""

from __future__ import annotations

from conftest import GatewayFactory
from nls_gateway.admission import (
    STREAMS_PER_CORE,
    TTS_STREAM_COST,
    Admission,
    AdmissionPolicy,
    derive_live_streams,
)
from nls_gateway.metrics import GatewayMetrics
from nls_gateway.tasks.base import Engines
from nls_gateway.testing import ScriptedTts, ScriptedVad


def _admission(**policy: int) -> tuple[Admission, GatewayMetrics]:
    metrics = GatewayMetrics()
    return Admission(AdmissionPolicy(**policy), metrics), metrics


def _count(metrics: GatewayMetrics, namespace: str, decision: str) -> float:
    labels = {"namespace": namespace, "decision": decision}
    return metrics.registry.get_sample_value("nls_admissions_total", labels) or 0.0


def test_the_budget_is_derived_from_the_cores() -> None:
    assert derive_live_streams(2) == 2 * STREAMS_PER_CORE
    assert AdmissionPolicy().live_streams == derive_live_streams()
    assert AdmissionPolicy(max_live_streams=7).live_streams == 7


def test_streams_beyond_the_budget_are_refused_until_one_ends() -> None:
    admission, metrics = _admission(max_live_streams=2)
    assert admission.try_admit("SpeechTranscriber")
    assert admission.try_admit("SpeechRecognizer")
    assert not admission.try_admit("SpeechTranscriber")
    assert metrics.registry.get_sample_value("nls_stream_load") == 2
    assert metrics.registry.get_sample_value("nls_stream_capacity") == 2
    admission.release("SpeechRecognizer")
    assert admission.try_admit("SpeechTranscriber")
    assert _count(metrics, "SpeechTranscriber", "admitted") == 2
    assert _count(metrics, "SpeechTranscriber", "capacity") == 1


def test_synthesis_costs_more_and_still_runs_on_an_idle_gateway() -> None:
    admission, _ = _admission(max_live_streams=TTS_STREAM_COST + 1)
    assert admission.try_admit("SpeechSynthesizer")
    assert admission.load == TTS_STREAM_COST
    assert not admission.try_admit("FlowingSpeechSynthesizer")  # does not fit
    assert admission.try_admit("SpeechTranscriber")  # one stream still does
    admission.release("SpeechSynthesizer")
    admission.release("SpeechTranscriber")
    assert admission.idle.is_set() and admission.load == 0
    small, _ = _admission(max_live_streams=1)
    assert small.try_admit("SpeechSynthesizer")  # bigger than the budget, but alone


def test_a_synthesis_costs_what_its_engine_says() -> None:
    admission, _ = _admission(max_live_streams=2)
    admission.tts_cost = 1  # Kokoro where the CPU multiplies u8 × s8 exactly
    assert admission.try_admit("SpeechSynthesizer")
    assert admission.try_admit("FlowingSpeechSynthesizer")
    assert not admission.try_admit("SpeechTranscriber")
    admission.release("SpeechSynthesizer")
    assert admission.load == 1 and admission.try_admit("SpeechTranscriber")


async def test_the_gateway_takes_the_synthesis_cost_from_its_tts_engine(
    gateway: GatewayFactory,
) -> None:
    light = ScriptedTts()
    light.stream_cost = 1  # type: ignore[attr-defined]
    with_cost = await gateway(engines=Engines(vad=ScriptedVad(), tts=light))
    assert with_cost.admission.tts_cost == 1
    without = await gateway(engines=Engines(vad=ScriptedVad(), tts=ScriptedTts()))
    assert without.admission.tts_cost == TTS_STREAM_COST


def test_the_task_cap_applies_whatever_the_cost() -> None:
    admission, metrics = _admission(max_live_streams=10, max_concurrent_tasks=1)
    assert admission.try_admit("SpeechRecognizer")
    assert not admission.try_admit("SpeechRecognizer")
    assert _count(metrics, "SpeechRecognizer", "max_tasks") == 1


def test_handshakes_and_engine_calls() -> None:
    admission, _ = _admission(max_connections=2, max_waiting_engine_calls=3)
    refusal = admission.refuse_handshake(ready=False, connections=0)
    assert refusal is not None and (refusal.status, refusal.reason) == (503, "not_ready")
    assert admission.refuse_handshake(ready=True, connections=1) is None
    refusal = admission.refuse_handshake(ready=True, connections=2)
    assert refusal is not None and refusal.reason == "too_many"
    admission.draining = True
    refusal = admission.refuse_handshake(ready=True, connections=0)
    assert refusal is not None and refusal.reason == "shutting_down"
    assert not admission.engine_call_refused(2) and admission.engine_call_refused(3)
