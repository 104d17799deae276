"""The contract between the connection pump and the per-namespace task handlers.

The connection (``nls_gateway.connection``) owns the WebSocket and the
``ServerProtocol``; for each task it builds the namespace's :class:`TaskHandler` with a
:class:`TaskContext` and forwards the task's commands and audio to it. Handlers turn
engine results into NLS events through the context; they never touch the socket, and
they reach engines only through :class:`Runner` (never on the event loop, rule R10).

A handler reports bad input by raising :class:`TaskError` (its status becomes one
TaskFailed for this task only); any other exception becomes 50000000.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from nls.exception import InvalidParameter, NlsError
from nls.protocol import Command, Status
from nls_gateway.engines.base import (
    AsrEngine,
    AsrOptions,
    AsrResult,
    Float32Array,
    TtsEngine,
    VadEngine,
)
from nls_gateway.exception import EngineError

__all__ = [
    "Engines",
    "Limits",
    "Project",
    "Runner",
    "TaskContext",
    "TaskError",
    "TaskHandler",
    "server_error_text",
]

_T = TypeVar("_T")


class TaskError(NlsError):
    """Bad input for this task: answered with TaskFailed ``status`` / ``status_text``."""

    def __init__(self, status: int, status_text: str) -> None:
        super().__init__(status_text)
        self.status = status
        self.status_text = status_text


def server_error_text(exc: BaseException) -> str:
    """The 50000000 status text for ``exc``: an ``EngineError`` keeps its message (e.g. the
    cloud's ``Instance pool exhausted!``, §9); anything else is ``Server error!``."""
    message = str(exc) if isinstance(exc, EngineError) else ""
    return Status.SERVER_ERROR.text.format(message or "Server error!")


Language = Literal["zh", "en", "auto"]


@dataclass(frozen=True, slots=True)
class Project:
    """What an appkey stands for, like a project in the NLS console.

    The credentials map each appkey to one (``[credentials.appkeys]``); the connection
    fills in ``appkey`` and the gateway's vocabularies when a task starts.
    """

    language: Language = "auto"
    """ASR language: ``zh``, ``en`` or ``auto`` (detect)."""
    asr_model: str | None = None
    """Engine-specific model override (e.g. a CTranslate2 Whisper directory); None = the
    gateway default."""
    voice: str | None = None
    """Default TTS voice when the request names none; None = the protocol's (xiaoyun)."""
    appkey: str = ""
    vocabularies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Hot-word lists a request may name by ``vocabulary_id`` (the gateway's
    ``[vocabularies]``; in the cloud they belong to the account, as here to every appkey)."""

    def __post_init__(self) -> None:
        if self.language not in ("zh", "en", "auto"):
            raise InvalidParameter(f"project language must be zh, en or auto: {self.language!r}")


@dataclass(frozen=True, slots=True)
class Limits:
    """The cloud's limits (§2.5), each configurable."""

    max_recognition_ms: int = 60_000
    """One-sentence audio longer than this → 41010104 TOO_LONG_SPEECH."""
    max_sentence_ms: int = 60_000
    """Transcriber: speech longer than this is split into sentences."""
    max_tts_chars: int = 300
    """SpeechSynthesizer text limit (40010003 beyond)."""
    max_long_tts_chars: int = 100_000
    """SpeechLongSynthesizer / FlowingSpeechSynthesizer session text limit."""
    idle_timeout_s: float = 10.0
    """No client data for this long → 40000004 (enforced by the connection)."""
    first_partial_ms: int = 500
    """Speech before a recognition stream's first partial (the gateway's cadence)."""
    partial_interval_ms: int = 600
    """New audio before the next partial; the ASR task base spaces partials further out
    while the engine is behind (``Runner.partial_backlog``)."""


@dataclass(frozen=True, slots=True)
class Engines:
    """The engines loaded once per gateway process and shared by every task."""

    asr: AsrEngine | None = None
    vad: VadEngine | None = None
    tts: TtsEngine | None = None


class Runner(Protocol):
    """Runs blocking engine work off the event loop (``nls_gateway.runtime``)."""

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` in the engine executor and await its result."""
        ...

    async def decode(
        self, asr: AsrEngine, audio: Float32Array, options: AsrOptions, *, stream: Hashable
    ) -> AsrResult | None:
        """Decode one segment of ``stream`` (``nls_gateway.scheduler``): finals before
        partials, concurrent calls batched; None when a partial was superseded by newer
        audio or the stream's final."""
        ...

    @property
    def partial_backlog(self) -> float:
        """Queued partials per batch (0: partials go at once)."""
        ...


class TaskContext(Protocol):
    """What a handler may use: its task's identity, the engines, and the way out."""

    task_id: str
    namespace: str
    project: Project
    engines: Engines
    runner: Runner
    limits: Limits

    async def send_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Send an event of this task (waits while the socket's buffer is full)."""
        ...

    async def send_audio(self, data: bytes) -> None:
        """Send binary audio (split into ≤ 64 KiB frames)."""
        ...

    async def fail(self, status: int, status_text: str) -> None:
        """Fail the task from background work (TaskFailed, then the socket closes)."""
        ...


class TaskHandler(abc.ABC):
    """One task of one namespace. Methods are called in order, never concurrently.

    Lifecycle: ``on_start`` (validate, send ``*Started``) → any number of ``on_audio`` /
    ``on_command`` → ``on_stop`` (flush, send ``*Completed``). ``close`` is always called
    last, also when the client vanished or the task failed, and must cancel any
    background work. A handler may finish by itself (VAD end, synthesis done): it then
    sends ``*Completed`` and sets ``done``.
    """

    namespaces: Sequence[str] = ()

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        self.ctx = ctx
        self.command = command
        self.done = False

    @abc.abstractmethod
    async def on_start(self) -> None:
        """Validate the start command and answer ``*Started`` (or raise TaskError)."""

    async def on_audio(self, data: bytes) -> None:
        """A binary frame of the task's audio."""
        raise TaskError(40010005, "Gateway:TASK_STATE_ERROR:This task takes no audio!")

    async def on_command(self, command: Command) -> None:
        """A mid-task command (ControlTranscriber, RunSynthesis, FlushText)."""
        raise TaskError(40010003, f"Gateway:DIRECTIVE_INVALID:Invalid directive '{command.name}'!")

    @abc.abstractmethod
    async def on_stop(self) -> None:
        """The client's Stop: send remaining results, then ``*Completed``."""

    async def close(self) -> None:
        """Release everything; cancel background work. Idempotent."""
        return None
