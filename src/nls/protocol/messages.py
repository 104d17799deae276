"""The NLS JSON envelope: ``{"header": …, "payload": …, "context": …}`` (protocol.md §3).

``parse_message`` turns a text frame into a :class:`Message` for either role and raises
:class:`~nls.exception.RemoteProtocolError` (status 40000002) for anything that is not an
envelope. ``serialize_command`` / ``serialize_event`` write frames in the key order the
official clients and the cloud use. Ids come from an injectable factory (uuid4 hex by
default). No I/O here.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nls.exception import RemoteProtocolError
from nls.protocol.constants import Status

__all__ = [
    "Header",
    "IdFactory",
    "Message",
    "is_valid_id",
    "new_id",
    "parse_message",
    "serialize_command",
    "serialize_event",
]

IdFactory = Callable[[], str]
"""Returns a fresh 32-lowercase-hex id."""

_ID = re.compile(r"[0-9a-f]{32}\Z")
_CLIENT_HEADER_KEYS = ("message_id", "task_id", "namespace", "name", "appkey")
_SERVER_HEADER_KEYS = ("namespace", "name", "status", "message_id", "task_id", "status_text")


def new_id() -> str:
    """A fresh message/task id: uuid4 as 32 lowercase hex digits, like every official SDK."""
    return uuid.uuid4().hex


def is_valid_id(value: object) -> bool:
    """True for a 32-lowercase-hex string (the cloud's rule for message_id and task_id)."""
    return isinstance(value, str) and _ID.match(value) is not None


@dataclass(frozen=True, slots=True)
class Header:
    """``header`` of a command or an event. Unknown keys are kept in ``extra``."""

    namespace: str
    name: str
    task_id: str = ""
    message_id: str = ""
    appkey: str | None = None
    """Commands only."""
    status: int | None = None
    """Events only: 20000000 on success."""
    status_text: str | None = None
    """Events only."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other header keys (e.g. ``session_id`` from Java, ``status_message`` from newer docs)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One parsed text frame."""

    header: Header
    payload: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None
    raw: str = ""
    """The frame exactly as received (the drop-in callbacks pass this text on)."""


def parse_message(text: str | bytes) -> Message:
    """Parse one text frame.

    Raises:
        RemoteProtocolError: not JSON, not an object, or no usable ``header``
            (``status_hint`` 40000002 MESSAGE_INVALID).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the interpreter's stack (e.g. 100k '[').
        raise _invalid("Invalid message format, not a json!") from exc
    if not isinstance(obj, dict):
        raise _invalid("Invalid message format, not a json object!")
    header = obj.get("header")
    if not isinstance(header, dict):
        raise _invalid("Missing message header!")
    namespace, name = header.get("namespace"), header.get("name")
    if not isinstance(name, str) or not name:
        raise _invalid("Missing message name!")
    if not isinstance(namespace, str):
        namespace = ""
    payload, context = obj.get("payload"), obj.get("context")
    if payload is not None and not isinstance(payload, dict):
        raise _invalid(f"Invalid payload for event '{namespace}.{name}'!")
    status = header.get("status")
    known = {*_CLIENT_HEADER_KEYS, *_SERVER_HEADER_KEYS}
    return Message(
        header=Header(
            namespace=namespace,
            name=name,
            task_id=_str(header.get("task_id")),
            message_id=_str(header.get("message_id")),
            appkey=header.get("appkey") if isinstance(header.get("appkey"), str) else None,
            status=status if isinstance(status, int) and not isinstance(status, bool) else None,
            status_text=_str(header.get("status_text") or header.get("status_message")) or None,
            extra={k: v for k, v in header.items() if k not in known},
        ),
        payload=payload,
        context=context if isinstance(context, dict) else None,
        raw=text,
    )


def serialize_command(
    *,
    namespace: str,
    name: str,
    task_id: str,
    message_id: str,
    appkey: str,
    payload: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """Write a client command the way the official Python SDK does.

    Key order is ``header{message_id, task_id, namespace, name, appkey}``, ``payload``,
    ``context``; ``payload``/``context`` are omitted when None. ``json.dumps`` defaults
    (ASCII escapes, ``", "`` separators) match the official client byte for byte.
    """
    msg: dict[str, Any] = {
        "header": {
            "message_id": message_id,
            "task_id": task_id,
            "namespace": namespace,
            "name": name,
            "appkey": appkey,
        }
    }
    if payload is not None:
        msg["payload"] = dict(payload)
    if context is not None:
        msg["context"] = dict(context)
    return json.dumps(msg)


def serialize_event(
    *,
    namespace: str,
    name: str,
    task_id: str,
    message_id: str,
    status: int = Status.SUCCESS,
    status_text: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> str:
    """Write a server event like the cloud gateway (§3.2).

    ``status`` is always an integer (C++ rejects anything else) and ``status_text`` is
    always present; ``payload`` is omitted when None (e.g. ``TranscriptionCompleted``).
    """
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "status": int(status),
        "message_id": message_id,
        "task_id": task_id,
        "status_text": status_text if status_text is not None else Status.SUCCESS.text,
    }
    msg: dict[str, Any] = {"header": header}
    if payload is not None:
        msg["payload"] = dict(payload)
    return json.dumps(msg, ensure_ascii=False, separators=(",", ":"))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _invalid(text: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        Status.MESSAGE_INVALID.text.format(text), status_hint=Status.MESSAGE_INVALID
    )
