"""Prometheus metrics of one gateway, kept in a per-server ``CollectorRegistry``.

This module owns the metric names, their labels and the few helpers the server, the
connection pump and the engine runner call to record what happened. Each gateway gets its
own registry, so several gateways (tests, embedding) in one process never share counters.

It must not decide anything: it only counts. Label values are drawn from closed sets
(namespaces, outcomes, reasons, engine operations), never from client input.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "OUTCOMES", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""``Content-Type`` of ``GET /metrics``."""

OUTCOMES = (
    "completed",
    "failed",
    "server_error",
    "idle_timeout",
    "rejected",
    "client_disconnect",
    "shutdown",
)
"""How a task ended: ``*Completed``; TaskFailed for bad input; 50000000; 40000004;
40000005 / unknown appkey at Start; the client vanished; the gateway stopped."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class GatewayMetrics:
    """The metrics of one gateway process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions = Counter(
            "nls_sessions",
            "Tasks ended, by namespace and outcome.",
            ["namespace", "outcome"],
            registry=r,
        )
        self.active_tasks = Gauge(
            "nls_active_tasks", "Tasks between Start and Completed/TaskFailed.", registry=r
        )
        self.active_connections = Gauge(
            "nls_active_connections", "Open WebSocket connections.", registry=r
        )
        self.rejected_handshakes = Counter(
            "nls_rejected_handshakes",
            "WebSocket handshakes refused, by reason.",
            ["reason"],
            registry=r,
        )
        self.audio_in_seconds = Counter(
            "nls_audio_in_seconds",
            "Seconds of PCM/WAV audio received for recognition.",
            ["namespace"],
            registry=r,
        )
        self.audio_in_bytes = Counter(
            "nls_audio_in_bytes", "Bytes of audio received.", ["namespace"], registry=r
        )
        self.audio_out_seconds = Counter(
            "nls_audio_out_seconds",
            "Seconds of PCM/WAV audio sent by synthesis.",
            ["namespace"],
            registry=r,
        )
        self.audio_out_bytes = Counter(
            "nls_audio_out_bytes", "Bytes of audio sent.", ["namespace"], registry=r
        )
        self.engine_latency = Histogram(
            "nls_engine_latency_seconds",
            "Wall time of one engine call (batched ASR counts once per batch).",
            ["op"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.asr_batch_size = Histogram(
            "nls_asr_batch_size",
            "Segments decoded per ASR model call.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=r,
        )
        self.decode_queue = Gauge(
            "nls_decode_queue",
            "ASR decodes waiting for the engine, by priority (final before partial).",
            ["priority"],
            registry=r,
        )
        self.decode_wait = Histogram(
            "nls_decode_wait_seconds",
            "Time an ASR decode waited in the scheduler's queue, by kind.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_latency = Histogram(
            "nls_decode_latency_seconds",
            "Wall time of one ASR model call (a batch counts once), by kind.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.decode_rtf = Histogram(
            "nls_decode_rtf",
            "Real-time factor of one ASR model call: wall time / seconds of audio in it.",
            ["kind"],
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0),
            registry=r,
        )
        self.decodes_dropped = Counter(
            "nls_decodes_dropped",
            "ASR decodes not run: superseded or expired partials, finals past the deadline.",
            ["reason"],
            registry=r,
        )
        self.admissions = Counter(
            "nls_admissions",
            "Task starts by namespace and decision (admitted, capacity, max_tasks).",
            ["namespace", "decision"],
            registry=r,
        )
        self.stream_capacity = Gauge(
            "nls_stream_capacity",
            "Engine budget in live recognition streams (a synthesis task costs more).",
            registry=r,
        )
        self.stream_load = Gauge(
            "nls_stream_load", "Engine budget taken by live tasks, in streams.", registry=r
        )
        self.engine_errors = Counter(
            "nls_engine_errors", "Engine calls that failed, by reason.", ["reason"], registry=r
        )
        self.engines_ready = Gauge(
            "nls_engines_ready", "1 once the engines are loaded.", registry=r
        )
        self.http_requests = Counter(
            "nls_http_requests",
            "Plain HTTP requests, by route and status.",
            ["route", "status"],
            registry=r,
        )

    def task_ended(self, namespace: str, outcome: str) -> None:
        """Count one task's end (``outcome`` is one of :data:`OUTCOMES`)."""
        self.sessions.labels(namespace or "Default", outcome).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
