"""ServerProtocol: the gateway side of one NLS connection, as a sans-I/O state machine.

Feed client frames into ``receive_text`` / ``receive_binary``; read
:class:`CommandReceived` / :class:`AudioReceived` from ``events_received()``; answer with
``send_event`` / ``send_audio`` / ``fail``; send what ``data_to_send()`` returns.

The cloud's envelope rules are enforced here, once, for every namespace (protocol.md
§3.1, §9, §14): bad JSON, missing header or ids that are not 32 hex → 40000002; unknown
namespace → 40010001; Start without appkey → 40000003; a payload field of the wrong
type → 40010003; a command or audio in the wrong state → 40010005. Each becomes one
TaskFailed, after which ``should_close`` is True (the gateway closes the socket, §2.7).
Whether a value is *supported* (format, rate, voice, appkey) is the gateway's policy.
No I/O here.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from nls.exception import LocalProtocolError, RemoteProtocolError
from nls.protocol.base import Protocol
from nls.protocol.commands import COMMAND_TYPES, Command, GenericCommand
from nls.protocol.constants import Namespace, Status
from nls.protocol.messages import (
    Header,
    IdFactory,
    is_valid_id,
    new_id,
    parse_message,
    serialize_event,
)
from nls.protocol.states import SPECS, NamespaceSpec, Step, TaskState, transition

__all__ = ["AudioReceived", "CommandReceived", "ServerProtocol"]

logger = logging.getLogger("nls.protocol")


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """A valid command for the current task."""

    header: Header
    command: Command
    raw: str

    @property
    def name(self) -> str:
        return self.header.name


@dataclass(frozen=True, slots=True)
class AudioReceived:
    """A binary audio frame for the current task."""

    data: bytes


class ServerProtocol(Protocol):
    """One connection's server side: one task at a time, several tasks in sequence.

    Args:
        namespaces: namespaces this server serves (default: all modelled ones).
        id_factory: makes message ids (uuid4 hex by default).
    """

    def __init__(
        self, *, namespaces: Collection[str] | None = None, id_factory: IdFactory = new_id
    ) -> None:
        super().__init__()
        self._namespaces = frozenset(namespaces if namespaces is not None else SPECS)
        self._new_id = id_factory
        self.namespace = ""
        self.appkey = ""
        self.spec: NamespaceSpec | None = None
        self.last_directive = ""
        """Name of the last command received (for IDLE_TIMEOUT's text, §2.4)."""
        self.should_close = False
        """True once a TaskFailed was sent: close the socket after flushing (§2.7)."""
        self._events: list[CommandReceived | AudioReceived] = []

    # ------------------------------------------------------------ peer input

    def receive_text(self, text: str) -> None:
        """Handle a client text frame; then read ``events_received()`` and ``data_to_send()``."""
        if self.should_close:
            return
        if self._debug:
            logger.debug("< %s", text[:1024])
        try:
            received = self._parse(text)
        except RemoteProtocolError as exc:
            self.fail(exc.status_hint, str(exc))
            return
        if received is not None:
            self._events.append(received)

    def receive_binary(self, data: bytes) -> None:
        """Handle a client binary frame (audio)."""
        if self.should_close:
            return
        state = self._state
        if state in (TaskState.STOPPING, TaskState.COMPLETED) and self.task_id:
            # Audio racing a Stop or a VAD-ended task is not recognised, not an error (§4).
            return
        spec = self.spec
        if spec is None or transition(spec, state, Step.AUDIO_IN) is None:
            self.fail(
                Status.TASK_STATE_ERROR,
                Status.TASK_STATE_ERROR.text.format(
                    "State is not WORKING, empty body data or appkey illegal, "
                    "can not handle last content!"
                ),
            )
            return
        self._events.append(AudioReceived(data))

    # ------------------------------------------------------------ app intents

    def send_event(self, name: str, payload: Mapping[str, Any] | None = None) -> None:
        """Queue an event of the current task.

        Raises:
            LocalProtocolError: the event is not legal now (a bug in the gateway).
        """
        spec = self._require_spec(name)
        if name == spec.started:
            step = Step.STARTED
        elif name == spec.completed:
            step = Step.COMPLETED
        else:
            step = Step.PROGRESS
        nxt = transition(spec, self._state, step)
        if nxt is None:
            raise LocalProtocolError(f"cannot send {name} in state {self._state.name}")
        self._set_state(nxt)
        self._queue(self.namespace, name, Status.SUCCESS, None, payload)

    def send_audio(self, data: bytes) -> None:
        """Queue synthesized audio, split into frames of at most 64 KiB (§2.2, Java)."""
        spec = self._require_spec("audio")
        if not spec.sends_audio or transition(spec, self._state, Step.PROGRESS) is None:
            raise LocalProtocolError(f"cannot send audio in state {self._state.name}")
        self._queue_audio(data)

    def fail(self, status: int, status_text: str | None = None, *, gateway: bool = False) -> None:
        """Queue TaskFailed for the current task (or a connection-level one) and end it.

        Args:
            status: NLS status code (§9).
            status_text: defaults to the code's documented text.
            gateway: use namespace ``Default`` (idle timeout, too many requests, §3.2).
        """
        if self.should_close:
            return
        if status_text is None:
            status_text = _default_text(status)
        namespace = self.namespace if self.namespace and not gateway else Namespace.Default
        self._set_state(TaskState.FAILED)
        self.should_close = True
        self._queue(str(namespace), "TaskFailed", status, status_text, None)

    # ----------------------------------------------------------------- output

    def events_received(self) -> list[CommandReceived | AudioReceived]:
        events, self._events = self._events, []
        return events

    # ---------------------------------------------------------------- private

    def _parse(self, text: str) -> CommandReceived | None:
        message = parse_message(text)
        header = message.header
        if not self.task_id and is_valid_id(header.task_id):
            self.task_id = header.task_id  # so an early TaskFailed names the task
        if not is_valid_id(header.message_id):
            raise _error(Status.MESSAGE_INVALID, f"Invalid message id '{header.message_id}'!")
        if not is_valid_id(header.task_id):
            raise _error(Status.MESSAGE_INVALID, f"Invalid task id '{header.task_id}'!")
        spec = SPECS.get(header.namespace)
        if spec is None or header.namespace not in self._namespaces:
            raise RemoteProtocolError(
                Status.NAMESPACE_NOT_FOUND.text, status_hint=Status.NAMESPACE_NOT_FOUND
            )
        name = header.name
        self.last_directive = name
        if name == spec.start and not self._state.live:
            return self._start(spec, message.header, message.payload, message.raw)
        if not self._state.live:
            raise _error(
                Status.TASK_STATE_ERROR, f"Got {name} directive while task is not started!"
            )
        if header.task_id != self.task_id or header.namespace != self.namespace:
            raise _error(Status.MESSAGE_INVALID, f"Invalid task id '{header.task_id}'!")
        if name == spec.stop:
            step = Step.STOP
        elif name in spec.controls:
            step = Step.CONTROL
        elif name == spec.start:
            raise _error(Status.TASK_STATE_ERROR, "Got start directive while task is running!")
        else:
            raise _error(Status.DIRECTIVE_INVALID, f"Invalid directive '{name}'!")
        nxt = transition(spec, self._state, step)
        if nxt is None:
            what = "stopping" if self._state is TaskState.STOPPING else self._state.name
            raise _error(Status.TASK_STATE_ERROR, f"Got {name} directive while task is {what}!")
        command = _command(name, message.payload, header.namespace)
        self._set_state(nxt)
        return CommandReceived(header, command, message.raw)

    def _start(
        self, spec: NamespaceSpec, header: Header, payload: Mapping[str, Any] | None, raw: str
    ) -> CommandReceived:
        self.task_id = header.task_id
        self.namespace = header.namespace
        self.spec = spec
        if not header.appkey:
            raise RemoteProtocolError(
                Status.PARAMETER_INVALID.text.format("appkey not set"),
                status_hint=Status.PARAMETER_INVALID,
            )
        self.appkey = header.appkey
        command = _command(header.name, payload, header.namespace)
        nxt = transition(spec, self._state, Step.START)
        assert nxt is not None  # START is legal in every non-live state
        self._set_state(nxt)
        return CommandReceived(header, command, raw)

    def _require_spec(self, what: str) -> NamespaceSpec:
        if self.spec is None:
            raise LocalProtocolError(f"cannot send {what}: no task")
        return self.spec

    def _queue(
        self,
        namespace: str,
        name: str,
        status: int,
        status_text: str | None,
        payload: Mapping[str, Any] | None,
    ) -> None:
        frame = serialize_event(
            namespace=namespace,
            name=name,
            task_id=self.task_id,
            message_id=self._new_id(),
            status=status,
            status_text=status_text,
            payload=payload,
        )
        if self._debug:
            logger.debug("> %s", frame[:1024])
        self._out.append(frame)


def _command(name: str, payload: Mapping[str, Any] | None, namespace: str) -> Command:
    cls = COMMAND_TYPES.get(name)
    if cls is None:
        return GenericCommand(extra=dict(payload or {}), command_name=name)
    return cls.from_payload(payload, namespace)


def _error(status: Status, detail: str) -> RemoteProtocolError:
    return RemoteProtocolError(status.text.format(detail), status_hint=status)


def _default_text(status: int) -> str:
    try:
        text = Status(status).text
    except ValueError:
        return f"Gateway:ERROR:{status}"
    return text.format("") if "{}" in text else text
