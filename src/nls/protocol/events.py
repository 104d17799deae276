"""Server → client events (protocol.md §4.3, §5.4, §6.2, §7.2, §9) and binary audio.

Each event keeps its parsed ``header``, its ``payload`` and the ``raw`` JSON text; typed
properties read the documented payload keys (same names as on the wire). An event name
we do not know becomes :class:`UnknownEvent`, never an error (forward compatibility).
No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from nls.protocol.messages import Header, Message

__all__ = [
    "EVENT_TYPES",
    "AudioData",
    "Event",
    "MetaInfo",
    "RecognitionCompleted",
    "RecognitionResultChanged",
    "RecognitionStarted",
    "SentenceBegin",
    "SentenceEnd",
    "SentenceSynthesis",
    "SynthesisCompleted",
    "SynthesisStarted",
    "TaskFailed",
    "TranscriptionCompleted",
    "TranscriptionResultChanged",
    "TranscriptionStarted",
    "UnknownEvent",
    "event_from_message",
]


@dataclass(frozen=True, slots=True)
class AudioData:
    """A binary frame: synthesized audio (TTS) from the server."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """A JSON event from the server."""

    name: ClassVar[str] = ""
    header: Header
    payload: Mapping[str, Any]
    raw: str
    """The event's JSON text as received (what the drop-in callbacks receive)."""
    local: bool = False
    """True for a TaskFailed the SDK made itself for a transport failure."""

    @property
    def task_id(self) -> str:
        return self.header.task_id

    @property
    def status(self) -> int:
        return self.header.status if self.header.status is not None else 0

    @property
    def status_text(self) -> str:
        return self.header.status_text or ""

    def _get(self, key: str, kind: type, default: Any) -> Any:
        value = self.payload.get(key, default)
        return value if isinstance(value, kind) else default


class _Result(Event):
    __slots__ = ()

    @property
    def result(self) -> str:
        """The recognised text (partial or final)."""
        return str(self._get("result", str, ""))


class RecognitionStarted(Event):
    """SpeechRecognizer is ready for audio."""

    __slots__ = ()
    name: ClassVar[str] = "RecognitionStarted"


class RecognitionResultChanged(_Result):
    """An intermediate one-sentence result: ``result``, ``duration`` (ms)."""

    __slots__ = ()
    name: ClassVar[str] = "RecognitionResultChanged"

    @property
    def duration(self) -> int:
        return int(self._get("duration", int, 0))


class RecognitionCompleted(RecognitionResultChanged):
    """The final one-sentence result."""

    __slots__ = ()
    name: ClassVar[str] = "RecognitionCompleted"


class TranscriptionStarted(Event):
    """SpeechTranscriber is ready for audio; may carry ``session_id``."""

    __slots__ = ()
    name: ClassVar[str] = "TranscriptionStarted"

    @property
    def session_id(self) -> str:
        return str(self._get("session_id", str, ""))


class _Sentence(_Result):
    __slots__ = ()

    @property
    def index(self) -> int:
        """Sentence number, from 1."""
        return int(self._get("index", int, 0))

    @property
    def time(self) -> int:
        """ms from the start of the stream."""
        return int(self._get("time", int, 0))

    @property
    def confidence(self) -> float:
        value = self.payload.get("confidence", 0.0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def words(self) -> Sequence[Mapping[str, Any]]:
        """``[{text, startTime, endTime}]`` with ``enable_words``."""
        return tuple(self._get("words", list, []))

    @property
    def subtitles(self) -> Sequence[Mapping[str, Any]]:
        """FlowingSpeechSynthesizer: ``[{text, begin_time, end_time, begin_index, …}]``."""
        return tuple(self._get("subtitles", list, []))


class SentenceBegin(_Sentence):
    """A sentence started (transcriber: ``index``, ``time``; flowing TTS: ``index``)."""

    __slots__ = ()
    name: ClassVar[str] = "SentenceBegin"


class TranscriptionResultChanged(_Sentence):
    """The sentence in progress changed."""

    __slots__ = ()
    name: ClassVar[str] = "TranscriptionResultChanged"


class SentenceEnd(_Sentence):
    """A sentence ended: final ``result`` and ``begin_time`` (transcriber) or the whole
    sentence's ``subtitles`` (flowing TTS)."""

    __slots__ = ()
    name: ClassVar[str] = "SentenceEnd"

    @property
    def begin_time(self) -> int:
        return int(self._get("begin_time", int, 0))


class TranscriptionCompleted(Event):
    """All results have been sent after StopTranscription."""

    __slots__ = ()
    name: ClassVar[str] = "TranscriptionCompleted"


class SynthesisStarted(Event):
    """FlowingSpeechSynthesizer is ready for text."""

    __slots__ = ()
    name: ClassVar[str] = "SynthesisStarted"


class MetaInfo(Event):
    """Subtitles for SpeechSynthesizer / SpeechLongSynthesizer (``enable_subtitle``)."""

    __slots__ = ()
    name: ClassVar[str] = "MetaInfo"

    @property
    def subtitles(self) -> Sequence[Mapping[str, Any]]:
        return tuple(self._get("subtitles", list, []))


class SentenceSynthesis(MetaInfo):
    """Incremental subtitles of the sentence being synthesized (flowing TTS)."""

    __slots__ = ()
    name: ClassVar[str] = "SentenceSynthesis"


class SynthesisCompleted(Event):
    """All audio has been sent."""

    __slots__ = ()
    name: ClassVar[str] = "SynthesisCompleted"


class TaskFailed(Event):
    """The task failed: ``status`` and ``status_text`` say why (§9)."""

    __slots__ = ()
    name: ClassVar[str] = "TaskFailed"


class UnknownEvent(Event):
    """An event name this version does not know; passed through untouched."""

    __slots__ = ()


EVENT_TYPES: dict[str, type[Event]] = {
    cls.name: cls
    for cls in (
        RecognitionStarted,
        RecognitionResultChanged,
        RecognitionCompleted,
        TranscriptionStarted,
        SentenceBegin,
        TranscriptionResultChanged,
        SentenceEnd,
        TranscriptionCompleted,
        SynthesisStarted,
        MetaInfo,
        SentenceSynthesis,
        SynthesisCompleted,
        TaskFailed,
    )
}
"""Every event name the protocol defines; the server never emits any other (§3.2, C++)."""


def event_from_message(message: Message, *, local: bool = False) -> Event:
    """The typed event for a parsed message (``UnknownEvent`` for unknown names)."""
    cls = EVENT_TYPES.get(message.header.name, UnknownEvent)
    return cls(header=message.header, payload=message.payload or {}, raw=message.raw, local=local)
