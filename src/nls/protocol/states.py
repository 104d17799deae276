"""Task states and the per-namespace rules of which message may come when.

Theory of operation
-------------------
A *task* (one ``task_id``) moves through the same states on both sides of the socket,
because both sides see the same messages in the same order::

    IDLE ──Start──▶ STARTING ──*Started──▶ STARTED ──Stop──▶ STOPPING ──*Completed──▶ COMPLETED
                        │                  │   ▲                │
                        │                  └───┘ audio, Control, progress events
                        └─────── TaskFailed (from any live state) ──────────────────▶ FAILED

* Namespaces without a ``*Started`` event (SpeechSynthesizer, SpeechLongSynthesizer, §6)
  go from IDLE straight to STARTED on ``StartSynthesis``.
* SpeechRecognizer may complete without Stop when server VAD ends the sentence (§4), and
  SpeechSynthesizer completes without Stop by design, so ``*Completed`` is legal in STARTED.
* COMPLETED (and FAILED) accept a new Start with a new task id: connections are reusable
  (§2.6, C++/Java long connections).

:data:`SPECS` holds each namespace's message names as data, and :func:`transition` is the
one table every role consults: the client raises ``LocalProtocolError`` when its caller
breaks it and ``RemoteProtocolError`` when the server does; the server answers a breach
with TaskFailed 40010005. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["GENERIC", "SPECS", "NamespaceSpec", "Step", "TaskState", "spec_for", "transition"]


class TaskState(Enum):
    """Where a task is in its life."""

    IDLE = "IDLE"
    STARTING = "STARTING"
    STARTED = "STARTED"
    STOPPING = "STOPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def live(self) -> bool:
        """A task is live between its Start and its Completed/TaskFailed."""
        return self in (TaskState.STARTING, TaskState.STARTED, TaskState.STOPPING)


class Step(Enum):
    """What happened, abstracted from the message names of one namespace."""

    START = "start"
    """Client sent the namespace's start command."""
    STARTED = "started"
    """Server sent the ``*Started`` event."""
    AUDIO_IN = "audio_in"
    """Client sent a binary audio frame."""
    CONTROL = "control"
    """Client sent a mid-task command (ControlTranscriber, RunSynthesis, FlushText)."""
    STOP = "stop"
    """Client sent the namespace's stop command."""
    PROGRESS = "progress"
    """Server sent a progress event (results, sentence events, subtitles, audio)."""
    COMPLETED = "completed"
    """Server sent the ``*Completed`` event."""
    FAILED = "failed"
    """Server sent TaskFailed (or the task failed locally)."""


@dataclass(frozen=True, slots=True)
class NamespaceSpec:
    """The message names of one namespace."""

    namespace: str
    start: str | None
    """Start command; None for generic namespaces (the first command starts)."""
    started: str | None
    """``*Started`` event; None when the namespace has none (SpeechSynthesizer)."""
    stop: str | None
    """Stop command; None when there is none (SpeechSynthesizer)."""
    completed: str | None
    controls: frozenset[str] = frozenset()
    """Commands legal while STARTED."""
    progress: frozenset[str] = frozenset()
    """Events legal while STARTED/STOPPING."""
    accepts_audio: bool = False
    """Client streams binary audio (ASR)."""
    sends_audio: bool = False
    """Server streams binary audio (TTS)."""
    sends_context: bool = True
    """The official client sends ``context`` with Start/Stop (not for flowing TTS, §3.1)."""
    stop_has_context: bool = True


_RECOGNIZER = NamespaceSpec(
    namespace="SpeechRecognizer",
    start="StartRecognition",
    started="RecognitionStarted",
    stop="StopRecognition",
    completed="RecognitionCompleted",
    progress=frozenset({"RecognitionResultChanged"}),
    accepts_audio=True,
)
_TRANSCRIBER = NamespaceSpec(
    namespace="SpeechTranscriber",
    start="StartTranscription",
    started="TranscriptionStarted",
    stop="StopTranscription",
    completed="TranscriptionCompleted",
    controls=frozenset({"ControlTranscriber", "ControlTranscription"}),
    progress=frozenset(
        {"SentenceBegin", "TranscriptionResultChanged", "SentenceEnd", "SentenceSemantics"}
    ),
    accepts_audio=True,
)
_SYNTHESIZER = NamespaceSpec(
    namespace="SpeechSynthesizer",
    start="StartSynthesis",
    started=None,
    stop=None,
    completed="SynthesisCompleted",
    progress=frozenset({"MetaInfo"}),
    sends_audio=True,
)
_FLOWING = NamespaceSpec(
    namespace="FlowingSpeechSynthesizer",
    start="StartSynthesis",
    started="SynthesisStarted",
    stop="StopSynthesis",
    completed="SynthesisCompleted",
    controls=frozenset({"RunSynthesis", "FlushText"}),
    progress=frozenset({"SentenceBegin", "SentenceSynthesis", "SentenceEnd"}),
    sends_audio=True,
    sends_context=False,
    stop_has_context=False,
)

SPECS: dict[str, NamespaceSpec] = {
    spec.namespace: spec
    for spec in (
        _RECOGNIZER,
        _TRANSCRIBER,
        _SYNTHESIZER,
        NamespaceSpec(
            namespace="SpeechLongSynthesizer",
            start="StartSynthesis",
            started=None,
            stop=None,
            completed="SynthesisCompleted",
            progress=frozenset({"MetaInfo"}),
            sends_audio=True,
        ),
        _FLOWING,
    )
}
"""Namespace name → its rules (§4–§7)."""

GENERIC = NamespaceSpec(
    namespace="",
    start=None,
    started=None,
    stop=None,
    completed=None,
    accepts_audio=True,
    sends_audio=True,
)
"""Rules for a namespace we do not model (NlsCommonProto): any command, any event."""


def spec_for(namespace: str) -> NamespaceSpec:
    """The rules of ``namespace``; :data:`GENERIC` for namespaces we do not model."""
    return SPECS.get(namespace, GENERIC)


_LIVE = (TaskState.STARTED, TaskState.STOPPING)

# (state, step) → next state, for modelled namespaces. A missing pair is a breach.
_TABLE: dict[tuple[TaskState, Step], TaskState] = {
    (TaskState.IDLE, Step.START): TaskState.STARTING,
    (TaskState.COMPLETED, Step.START): TaskState.STARTING,
    (TaskState.FAILED, Step.START): TaskState.STARTING,
    (TaskState.STARTING, Step.STARTED): TaskState.STARTED,
    # Audio may be pipelined behind Start before *Started arrives.
    (TaskState.STARTING, Step.AUDIO_IN): TaskState.STARTING,
    (TaskState.STARTED, Step.AUDIO_IN): TaskState.STARTED,
    (TaskState.STARTED, Step.CONTROL): TaskState.STARTED,
    (TaskState.STARTED, Step.STOP): TaskState.STOPPING,
    (TaskState.STARTED, Step.COMPLETED): TaskState.COMPLETED,
    (TaskState.STOPPING, Step.COMPLETED): TaskState.COMPLETED,
    **{(s, Step.PROGRESS): s for s in _LIVE},
    **{(s, Step.FAILED): TaskState.FAILED for s in (TaskState.STARTING, *_LIVE)},
}


def transition(spec: NamespaceSpec, state: TaskState, step: Step) -> TaskState | None:
    """The state after ``step``, or None when ``step`` is not allowed in ``state``."""
    if spec is GENERIC:
        return _generic(state, step)
    if step is Step.START and spec.started is None and state not in _LIVE:
        return TaskState.STARTED
    if step is Step.AUDIO_IN and not spec.accepts_audio:
        return None
    if step is Step.CONTROL and not spec.controls:
        return None
    if step is Step.STOP and spec.stop is None:
        return None
    return _TABLE.get((state, step))


def _generic(state: TaskState, step: Step) -> TaskState | None:
    if step is Step.FAILED:
        return TaskState.FAILED if state.live else None
    if step is Step.COMPLETED:
        return TaskState.COMPLETED if state.live else None
    if step in (Step.START, Step.CONTROL, Step.STOP, Step.AUDIO_IN):
        return state if state.live else TaskState.STARTED
    return state if state.live else None
