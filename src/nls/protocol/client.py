"""ClientProtocol: the SDK side of one NLS connection, as a sans-I/O state machine.

Feed what the socket delivers into ``receive_text`` / ``receive_binary`` /
``receive_close``, then collect typed events from ``events_received()``. App intents
(``start``, ``send_audio``, ``control``, ``stop``, ``send_command``) queue frames; the
front-end sends everything ``data_to_send()`` returns, in order.

Errors: a caller breaking the namespace's rules gets ``LocalProtocolError`` at once and
nothing is queued. A server breaking them (garbage JSON, an event out of order, a wrong
task id) does not raise into the pump: the task fails with a locally made ``TaskFailed``
event (``local=True``) and ``remote_error`` keeps the exception. Transport failures reach
the same place through :meth:`fail`, so every failure ends in exactly one TaskFailed.
No I/O here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from nls.exception import LocalProtocolError, RemoteProtocolError
from nls.protocol.base import Protocol
from nls.protocol.commands import Command, GenericCommand
from nls.protocol.constants import Status, default_context
from nls.protocol.events import AudioData, Event, TaskFailed, event_from_message
from nls.protocol.messages import (
    IdFactory,
    new_id,
    parse_message,
    serialize_command,
    serialize_event,
)
from nls.protocol.states import NamespaceSpec, Step, TaskState, spec_for, transition

__all__ = ["ClientProtocol", "local_task_failed"]

logger = logging.getLogger("nls.protocol")

_UNSET: Any = object()


class ClientProtocol(Protocol):
    """One connection's client side, for one namespace, one task at a time.

    Args:
        namespace: e.g. ``"SpeechTranscriber"``; unknown namespaces get permissive rules.
        appkey: sent in every command header.
        context: the ``context`` object; defaults to the official SDK's ``context.sdk``.
        id_factory: makes task and message ids (uuid4 hex by default).
    """

    def __init__(
        self,
        namespace: str,
        appkey: str,
        *,
        context: Mapping[str, Any] | None = _UNSET,
        id_factory: IdFactory = new_id,
    ) -> None:
        super().__init__()
        self.namespace = namespace
        self.appkey = appkey
        self.spec: NamespaceSpec = spec_for(namespace)
        self._context = default_context() if context is _UNSET else context
        self._new_id = id_factory
        self.remote_error: RemoteProtocolError | None = None
        self._events: list[Event | AudioData] = []

    # ------------------------------------------------------------ app intents

    def start(self, command: Command, *, task_id: str | None = None) -> None:
        """Queue the namespace's start command with a new task id.

        Raises:
            LocalProtocolError: a task is already live on this connection.
        """
        name = self.spec.start or (
            command.command_name if isinstance(command, GenericCommand) else command.name
        )
        self._advance_local(Step.START, name)
        self.task_id = task_id or self._new_id()
        self.remote_error = None
        self._queue_command(name, command.to_payload(), self._context_for(start=True))

    def send_audio(self, data: bytes) -> None:
        """Queue audio, split into frames of at most 64 KiB.

        Raises:
            LocalProtocolError: the task is not started (or is stopping/finished).
        """
        if not data:
            raise LocalProtocolError("audio data is empty", status_hint=Status.CLIENT_ERROR)
        self._advance_local(Step.AUDIO_IN, "audio")
        self._queue_audio(data)

    def control(self, command: Command) -> None:
        """Queue a mid-task command (ControlTranscriber, RunSynthesis, FlushText)."""
        name = command.command_name if isinstance(command, GenericCommand) else command.name
        if self.spec.controls and name not in self.spec.controls:
            raise LocalProtocolError(f"{name} is not a command of {self.namespace}")
        self._advance_local(Step.CONTROL, name)
        self._queue_command(name, command.to_payload(), self._context_for(start=False))

    def stop(self) -> None:
        """Queue the namespace's stop command.

        Raises:
            LocalProtocolError: no started task, or Stop was already sent.
        """
        if self.spec.stop is None:
            raise LocalProtocolError(f"{self.namespace} has no stop command")
        self._advance_local(Step.STOP, self.spec.stop)
        self._queue_command(self.spec.stop, None, self._context_for(start=False, stop=True))

    def send_command(
        self,
        name: str,
        payload: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = _UNSET,
    ) -> None:
        """Queue any command by name (``NlsCommonProto``); the step is inferred from it."""
        spec = self.spec
        if name == spec.start or (spec.start is None and not self._state.live):
            step = Step.START
        elif name == spec.stop:
            step = Step.STOP
        else:
            step = Step.CONTROL
        self._advance_local(step, name)
        if step is Step.START:
            self.task_id = self._new_id()
            self.remote_error = None
        ctx = self._context_for(start=step is Step.START) if context is _UNSET else context
        self._queue_command(name, payload, ctx)

    def fail(self, status: int, status_text: str) -> TaskFailed | None:
        """Fail the live task locally (transport error, timeout): emits one TaskFailed.

        Returns the event, or None when no task is live (nothing to fail).
        """
        if not self._state.live:
            return None
        event = self._local_failure(status, status_text)
        self._events.append(event)
        return event

    # ------------------------------------------------------------ peer input

    def receive_text(self, text: str) -> None:
        """Handle a text frame; then read ``events_received()``."""
        if self._debug:
            logger.debug("< %s", text[:1024])
        try:
            message = parse_message(text)
        except RemoteProtocolError as exc:
            self._remote_breach(exc)
            return
        event = event_from_message(message)
        name = message.header.name
        if name == "TaskFailed":
            step = Step.FAILED
        elif name == self.spec.started:
            step = Step.STARTED
        elif name == self.spec.completed:
            step = Step.COMPLETED
        else:
            step = Step.PROGRESS
        if not self._state.live:
            # Late frames after the task ended (e.g. a close race) are dropped, not errors.
            logger.debug("! %s after task ended, ignored", name)
            return
        if message.header.task_id and self.task_id and message.header.task_id != self.task_id:
            self._remote_breach(
                RemoteProtocolError(f"event {name} for unknown task {message.header.task_id}")
            )
            return
        nxt = transition(self.spec, self._state, step)
        if nxt is None:
            self._remote_breach(
                RemoteProtocolError(f"unexpected {name} in state {self._state.name}")
            )
            return
        self._set_state(nxt)
        self._events.append(event)

    def receive_binary(self, data: bytes) -> None:
        """Handle a binary frame (synthesized audio); then read ``events_received()``."""
        if not self._state.live:
            return
        if not self.spec.sends_audio or transition(self.spec, self._state, Step.PROGRESS) is None:
            self._remote_breach(RemoteProtocolError("unexpected binary frame"))
            return
        self._events.append(AudioData(data))

    def receive_close(self, code: int | None, reason: str = "") -> None:
        """The socket closed: a live task fails with a local TaskFailed."""
        if self._state.live:
            text = f"SDK:CONNECTION_CLOSED:Connection closed before task finished (code {code}"
            text += f", reason {reason!r})." if reason else ")."
            self._events.append(self._local_failure(Status.SERVER_ERROR, text))

    # ----------------------------------------------------------------- output

    def events_received(self) -> list[Event | AudioData]:
        """Events parsed since the last call, in order."""
        events, self._events = self._events, []
        return events

    # ---------------------------------------------------------------- private

    def _context_for(self, *, start: bool, stop: bool = False) -> Mapping[str, Any] | None:
        if not self.spec.sends_context or (stop and not self.spec.stop_has_context):
            return None
        return self._context

    def _advance_local(self, step: Step, what: str) -> None:
        nxt = transition(self.spec, self._state, step)
        if nxt is None:
            raise LocalProtocolError(
                f"cannot send {what} in state {self._state.name}",
                status_hint=Status.TASK_STATE_ERROR,
            )
        self._set_state(nxt)

    def _queue_command(
        self, name: str, payload: Mapping[str, Any] | None, context: Mapping[str, Any] | None
    ) -> None:
        frame = serialize_command(
            namespace=self.namespace,
            name=name,
            task_id=self.task_id,
            message_id=self._new_id(),
            appkey=self.appkey,
            payload=payload,
            context=context,
        )
        if self._debug:
            logger.debug("> %s", frame[:1024])
        self._out.append(frame)

    def _remote_breach(self, exc: RemoteProtocolError) -> None:
        logger.debug("! %s", exc)
        if self._state.live:
            self.remote_error = exc
            self._events.append(
                self._local_failure(Status.SERVER_ERROR, f"SDK:PROTOCOL_ERROR:{exc}")
            )

    def _local_failure(self, status: int, status_text: str) -> TaskFailed:
        self._set_state(TaskState.FAILED)
        return local_task_failed(
            self.namespace, self.task_id, status, status_text, message_id=self._new_id()
        )


def local_task_failed(
    namespace: str, task_id: str, status: int, status_text: str, *, message_id: str | None = None
) -> TaskFailed:
    """A TaskFailed made by the SDK itself (``local=True``), shaped like the server's.

    Used for failures that never reach the server (refused connection, rejected
    handshake, timeouts), so ``on_error`` always receives the same JSON shape.
    """
    raw = serialize_event(
        namespace=namespace,
        name="TaskFailed",
        task_id=task_id,
        message_id=message_id or new_id(),
        status=status,
        status_text=status_text,
    )
    return TaskFailed(header=parse_message(raw).header, payload={}, raw=raw, local=True)
