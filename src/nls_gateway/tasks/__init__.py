"""Per-namespace task handlers: engine results ↔ NLS events.

:data:`HANDLERS` maps each NLS namespace to the :class:`~nls_gateway.tasks.base.TaskHandler`
class the connection builds for a task of that namespace. This package must not touch the
socket or import concrete engine adapters (rule R7).
"""

from __future__ import annotations

from nls_gateway.tasks.base import (
    Engines,
    Limits,
    Project,
    Runner,
    TaskContext,
    TaskError,
    TaskHandler,
)
from nls_gateway.tasks.flowing import FlowingSynthesizer
from nls_gateway.tasks.recognizer import Recognizer
from nls_gateway.tasks.synthesizer import Synthesizer
from nls_gateway.tasks.transcriber import Transcriber

__all__ = [
    "HANDLERS",
    "Engines",
    "FlowingSynthesizer",
    "Limits",
    "Project",
    "Recognizer",
    "Runner",
    "Synthesizer",
    "TaskContext",
    "TaskError",
    "TaskHandler",
    "Transcriber",
]

HANDLERS: dict[str, type[TaskHandler]] = {
    namespace: cls
    for cls in (Recognizer, Transcriber, Synthesizer, FlowingSynthesizer)
    for namespace in cls.namespaces
}
"""NLS namespace → handler class (SpeechRecognizer, SpeechTranscriber, SpeechSynthesizer,
SpeechLongSynthesizer, FlowingSpeechSynthesizer)."""
