"""Admission: the gateway's whole overload policy, in one place.

A gateway that admits more live streams than its engines serve in real time makes every
caller late; the cloud instead refuses the one too many with ``40000005
Gateway:TOO_MANY_REQUESTS:Too many requests!`` (protocol.md §2.5, §9). This module owns
every such decision and the server, the connection pump and the engine runner only ask:

* **handshake** (``server.py``): HTTP 503 while the engines load, while draining, or over
  ``max_connections`` open WebSockets;
* **task start** (``connection.py``): ``TaskFailed 40000005`` at once when the task's
  engine cost does not fit. Live recognition streams (SpeechRecognizer,
  SpeechTranscriber) cost one *stream* each; a synthesis task costs what its engine says
  (``tts_cost``, default ``TTS_STREAM_COST``), since TTS and ASR share the same cores.
  The budget is ``max_live_streams``; ``0`` derives it from this machine:
  ``STREAMS_PER_CORE`` × CPU cores, the figure ``benchmarks/capacity.py`` measured
  (docs/deploy.md). ``max_concurrent_tasks`` caps all tasks whatever their cost;
* **engine queue** (``runtime.py``): a generic engine call (ingest, TTS, VAD set-up) that
  finds ``max_waiting_engine_calls`` already waiting fails with 50000000 "Instance pool
  exhausted!" instead of joining an unbounded backlog. ASR decodes queue in the
  ``DecodeScheduler``, whose final deadline (``final_deadline_s``) fails a task whose
  engine work falls too far behind with the same code.

It counts; it never sleeps, and it knows nothing of sockets or NLS messages beyond the
namespace of a task.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from nls_gateway.metrics import GatewayMetrics

__all__ = [
    "ASR_NAMESPACES",
    "STREAMS_PER_CORE",
    "TTS_STREAM_COST",
    "Admission",
    "AdmissionPolicy",
    "HandshakeRefusal",
    "derive_live_streams",
]

STREAMS_PER_CORE = 1
"""Live 1×-paced zh streams (partials on) one core serves, as ``benchmarks/capacity.py``
measured on the 2-core reference box (BENCHMARKS.md, Whisper base): at 2 streams per box
their finals come ~1.3 s after Stop, at 4 ~2 s (bounded, but twice the 1 s target), so
the default keeps latency and an operator who prefers throughput raises the budget."""
TTS_STREAM_COST = 2
"""What a synthesis task costs when its engine does not say (``TtsEngine.stream_cost``): it
runs flat out on both cores, about what two live recognition streams take from them.
Kokoro says 2 on a CPU without exact u8 × s8 products (RTF ≈ 0.33 with 2 threads: a second
synthesis beside it would double both first audios, ~210 → ~350–420 ms) and 1 where it has
them (RTF ≈ 0.18: two at once 165/207 ms p50/p95, and one beside a live stream leaves the
stream's final as fast as alone; BENCHMARKS.md, issue 15)."""
ASR_NAMESPACES = frozenset({"SpeechRecognizer", "SpeechTranscriber"})


def derive_live_streams(cores: int | None = None) -> int:
    """The default stream budget of this machine: ``STREAMS_PER_CORE`` per CPU core."""
    return max(1, STREAMS_PER_CORE * (cores or os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """The limits, from ``ServerConfig``."""

    max_live_streams: int = 0
    """Engine budget in live recognition streams; 0 = :func:`derive_live_streams`."""
    max_concurrent_tasks: int = 64
    """All live tasks, whatever they cost."""
    max_connections: int = 4096
    """Open WebSockets."""
    max_waiting_engine_calls: int = 4096
    """Generic engine calls waiting for an executor slot."""

    @property
    def live_streams(self) -> int:
        """The effective stream budget."""
        return self.max_live_streams or derive_live_streams()


@dataclass(frozen=True, slots=True)
class HandshakeRefusal:
    """Why a WebSocket handshake is refused: HTTP status, body, metric reason."""

    status: int
    body: str
    reason: str


class Admission:
    """Decides, at each door, whether one more unit of work fits."""

    def __init__(self, policy: AdmissionPolicy, metrics: GatewayMetrics) -> None:
        self.policy = policy
        self.capacity = policy.live_streams
        self.active = 0
        """Live tasks (all namespaces)."""
        self.load = 0
        """Their cost in streams."""
        self.tts_cost = TTS_STREAM_COST
        """Streams one synthesis task costs; set once, before any task, from the engine."""
        self.draining = False
        """Shutting down: new connections and tasks are refused."""
        self.idle = asyncio.Event()
        """Set while no task is live (the drain waits for it)."""
        self.idle.set()
        self._metrics = metrics
        metrics.stream_capacity.set(self.capacity)

    # ------------------------------------------------------------------ handshake

    def refuse_handshake(self, *, ready: bool, connections: int) -> HandshakeRefusal | None:
        """None to accept a WebSocket upgrade, else the 503 to answer."""
        if not ready:
            return HandshakeRefusal(503, "Engines are loading.\n", "not_ready")
        if self.draining:
            return HandshakeRefusal(503, "Server is shutting down.\n", "shutting_down")
        if connections >= self.policy.max_connections:
            return HandshakeRefusal(503, "Too many connections.\n", "too_many")
        return None

    # ------------------------------------------------------------------ tasks

    def cost(self, namespace: str) -> int:
        """Streams one task of ``namespace`` takes from the engine budget."""
        return 1 if namespace in ASR_NAMESPACES else self.tts_cost

    def try_admit(self, namespace: str) -> bool:
        """Take a place for a task of ``namespace``; False → answer 40000005 now."""
        cost = self.cost(namespace)
        if self.active >= self.policy.max_concurrent_tasks:
            return self._refuse(namespace, "max_tasks")
        # A task that costs more than the whole budget still runs on an idle gateway.
        if self.load + cost > self.capacity and self.load > 0:
            return self._refuse(namespace, "capacity")
        self.active += 1
        self.load += cost
        self.idle.clear()
        self._metrics.admissions.labels(namespace, "admitted").inc()
        self._observe()
        return True

    def release(self, namespace: str) -> None:
        """A task admitted by :meth:`try_admit` ended."""
        self.active -= 1
        self.load -= self.cost(namespace)
        self._observe()
        if self.active == 0:
            self.idle.set()

    # ------------------------------------------------------------------ engine calls

    def engine_call_refused(self, waiting: int) -> bool:
        """True when one more generic engine call must fail instead of waiting."""
        return waiting >= self.policy.max_waiting_engine_calls

    # ------------------------------------------------------------------ private

    def _refuse(self, namespace: str, reason: str) -> bool:
        self._metrics.admissions.labels(namespace, reason).inc()
        return False

    def _observe(self) -> None:
        self._metrics.active_tasks.set(self.active)
        self._metrics.stream_load.set(self.load)
