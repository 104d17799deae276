"""Client → server command payloads (protocol.md §4.1, §5.1–5.3, §6.1, §7.1).

Field names are the exact JSON keys. Fields with a non-None default are always sent (the
official Python SDK always sends them, §4.1/§6.1); fields defaulting to None are sent only
when set. ``extra`` carries any other key (the official ``ex`` dict) and is merged last,
overriding, exactly like the official ``payload.update(ex)``.

The server parses payloads back with ``from_payload``, which type-checks every known field
and raises :class:`~nls.exception.RemoteProtocolError` (40010003 DIRECTIVE_INVALID) for a
wrong type; whether a value is *supported* (formats, rates, voices) is the gateway's policy,
not the protocol's. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from nls.exception import InvalidParameter, RemoteProtocolError
from nls.protocol.constants import Status

__all__ = [
    "COMMAND_TYPES",
    "AsrStart",
    "Command",
    "ControlTranscriber",
    "FlushText",
    "GenericCommand",
    "RunSynthesis",
    "StartRecognition",
    "StartSynthesis",
    "StartTranscription",
    "StopRecognition",
    "StopSynthesis",
    "StopTranscription",
    "check_range",
]

_C = TypeVar("_C", bound="Command")

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
}


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command payload."""

    name: ClassVar[str] = ""
    aliases: ClassVar[Mapping[str, str]] = {}
    """Accepted input spellings → field name (e.g. the official ``volumn`` typo)."""
    has_payload: ClassVar[bool] = True
    """False for Stop commands: the official client sends no ``payload`` key at all."""

    extra: Mapping[str, Any] = field(default_factory=dict)
    """Keys not modelled as fields (the official ``ex``), merged into the payload last."""

    def to_payload(self) -> dict[str, Any] | None:
        """The ``payload`` object to send, or None for payload-less commands."""
        if not self.has_payload and not self.extra:
            return None
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_payload(cls: type[_C], payload: Mapping[str, Any] | None, namespace: str = "") -> _C:
        """Parse and type-check a received payload (server side).

        Raises:
            RemoteProtocolError: a known field has the wrong JSON type (40010003).
        """
        data = dict(payload or {})
        for alias, target in cls.aliases.items():
            if alias in data:
                value = data.pop(alias)
                data.setdefault(target, value)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra" or f.name not in data:
                continue
            value = data.pop(f.name)
            kind = str(f.type).replace(" | None", "")
            if value is None and "None" in str(f.type):
                continue
            expected = _TYPES.get(kind)
            if expected is not None and (
                not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool))
            ):
                raise RemoteProtocolError(
                    Status.DIRECTIVE_INVALID.text.format(
                        f"Invalid payload for event '{namespace}.{cls.name}': "
                        f"'{f.name}' must be {kind}!"
                    ),
                    status_hint=Status.DIRECTIVE_INVALID,
                )
            kwargs[f.name] = float(value) if kind == "float" else value
        return cls(extra=data, **kwargs)


@dataclass(frozen=True, slots=True)
class AsrStart(Command):
    """The payload fields both recognition start commands have (§4.1, §5.1).

    Not a command itself: :class:`StartRecognition` and :class:`StartTranscription` add
    their own fields after these, so the JSON key order on the wire is the same as
    before (``fields()`` lists a base's fields first).
    """

    format: str = "pcm"
    sample_rate: int = 16000
    enable_intermediate_result: bool = False
    enable_punctuation_prediction: bool = False
    enable_inverse_text_normalization: bool = False
    customization_id: str | None = None
    vocabulary_id: str | None = None


@dataclass(frozen=True, slots=True)
class StartRecognition(AsrStart):
    """SpeechRecognizer ``StartRecognition`` (§4.1)."""

    name: ClassVar[str] = "StartRecognition"
    enable_voice_detection: bool | None = None
    max_start_silence: int | None = None
    max_end_silence: int | None = None


@dataclass(frozen=True, slots=True)
class StartTranscription(AsrStart):
    """SpeechTranscriber ``StartTranscription`` (§5.1)."""

    name: ClassVar[str] = "StartTranscription"
    max_sentence_silence: int | None = None
    enable_words: bool | None = None
    disfluency: bool | None = None
    speech_noise_threshold: float | None = None
    enable_semantic_sentence_detection: bool | None = None
    enable_ignore_sentence_timeout: bool | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class ControlTranscriber(Command):
    """SpeechTranscriber ``ControlTranscriber`` (§5.2): parameters to change mid-stream."""

    name: ClassVar[str] = "ControlTranscriber"
    max_sentence_silence: int | None = None


@dataclass(frozen=True, slots=True)
class StartSynthesis(Command):
    """``StartSynthesis`` for SpeechSynthesizer / SpeechLongSynthesizer (§6.1, with
    ``text``) and FlowingSpeechSynthesizer (§7.1, with ``session_id`` and no text)."""

    name: ClassVar[str] = "StartSynthesis"
    aliases: ClassVar[Mapping[str, str]] = {"volumn": "volume"}
    text: str | None = None
    session_id: str | None = None
    voice: str = "xiaoyun"
    format: str = "pcm"
    sample_rate: int = 16000
    volume: int = 50
    speech_rate: int = 0
    pitch_rate: int = 0
    enable_subtitle: bool | None = None
    method: int | None = None
    enable_ssml: bool | None = None


@dataclass(frozen=True, slots=True)
class RunSynthesis(Command):
    """FlowingSpeechSynthesizer ``RunSynthesis {text}`` (§7.1; C++ repeats start fields)."""

    name: ClassVar[str] = "RunSynthesis"
    text: str = ""


@dataclass(frozen=True, slots=True)
class FlushText(Command):
    """FlowingSpeechSynthesizer ``FlushText`` (C++ only): synthesize buffered text now."""

    name: ClassVar[str] = "FlushText"
    has_payload: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class StopRecognition(Command):
    """SpeechRecognizer ``StopRecognition`` (§4.2): header + context, no payload."""

    name: ClassVar[str] = "StopRecognition"
    has_payload: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class StopTranscription(Command):
    """SpeechTranscriber ``StopTranscription`` (§5.3)."""

    name: ClassVar[str] = "StopTranscription"
    has_payload: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class StopSynthesis(Command):
    """FlowingSpeechSynthesizer ``StopSynthesis`` (§7.1): header only."""

    name: ClassVar[str] = "StopSynthesis"
    has_payload: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class GenericCommand(Command):
    """Any other command (NlsCommonProto, unknown names): the payload is kept as is."""

    command_name: str = ""

    def to_payload(self) -> dict[str, Any] | None:
        return dict(self.extra)


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        StartRecognition,
        StopRecognition,
        StartTranscription,
        StopTranscription,
        ControlTranscriber,
        StartSynthesis,
        RunSynthesis,
        FlushText,
        StopSynthesis,
    )
}
"""Wire name → payload class. Node's ``ControlTranscription`` spelling is mapped too."""
COMMAND_TYPES["ControlTranscription"] = ControlTranscriber


def check_range(
    name: str,
    value: float | None,
    low: float,
    high: float,
    *,
    error: Callable[[int, str], Exception] | None = None,
) -> None:
    """Check a numeric payload value against its documented range (§4.1, §5.1, §6.1).

    The one range rule for both halves: a value that is not sent (None) passes; anything
    else must be a number within ``low…high``, bounds included. The SDK checks its
    arguments with it before any I/O; the gateway checks received payloads with it.

    Args:
        name: the JSON key, named in the message.
        value: the value, or None when the key is not sent.
        low: smallest allowed value.
        high: largest allowed value.
        error: how the caller reports a breach: called with 40000003 PARAMETER_INVALID
            and the cloud's status text (``Gateway:PARAMETER_INVALID:Invalid volume 101,
            must be within [0, 100]!``), it returns the exception to raise (a server
            passes its task-error type). Without it, :class:`~nls.exception.InvalidParameter`
            with the text after the prefix is raised.

    Raises:
        InvalidParameter: the value is out of range (or not a number), without ``error``.
    """
    if value is None:
        return
    if isinstance(value, int | float) and low <= value <= high:
        return
    detail = f"Invalid {name} {value}, must be within [{low:g}, {high:g}]!"
    if error is None:
        raise InvalidParameter(detail)
    raise error(Status.PARAMETER_INVALID, Status.PARAMETER_INVALID.text.format(detail))
