"""Every exception the SDK and the gateway raise, in one tree (original path ``nls.exception``).

::

    NlsError                                  root of everything we raise
    ├── InvalidParameter (+ValueError)        bad argument at the API (original name)
    ├── ProtocolError                         .status_hint: the NLS status to report
    │   ├── LocalProtocolError                our caller broke the rules (command out of order)
    │   └── RemoteProtocolError               the peer sent malformed JSON / wrong-state message
    ├── InvalidStateError                     API used in the wrong task state
    │   └── WrongStateException               original stream-input TTS name
    ├── TaskFailedError                       server answered TaskFailed
    ├── NlsConnectionError                    transport problems
    │   ├── ConnectionUnavailable             original name (refused, handshake rejected)
    │   ├── ConnectionTimeout (+TimeoutError) original name
    │   └── ConnectionClosedError             the socket closed before the task finished
    ├── NlsTimeoutError (+TimeoutError)
    │   ├── StartTimeoutException             original names
    │   ├── StopTimeoutException
    │   └── CompleteTimeoutException
    ├── NotStartException                     original name
    └── GetTokenFailed                        original name

The drop-in classes turn these into the original return values and ``on_error`` calls;
the asyncio API raises them. Nothing here does I/O.
"""

from __future__ import annotations

__all__ = [
    "CompleteTimeoutException",
    "ConnectionClosedError",
    "ConnectionTimeout",
    "ConnectionUnavailable",
    "GetTokenFailed",
    "InvalidParameter",
    "InvalidStateError",
    "LocalProtocolError",
    "NlsConnectionError",
    "NlsError",
    "NlsTimeoutError",
    "NotStartException",
    "ProtocolError",
    "RemoteProtocolError",
    "StartTimeoutException",
    "StopTimeoutException",
    "TaskFailedError",
    "WrongStateException",
]

# Generic NLS status used when a more specific one does not apply (Gateway:CLIENT_ERROR).
_CLIENT_ERROR = 40000000
_SERVER_ERROR = 50000000


class NlsError(Exception):
    """Root of every exception raised by ``nls`` and ``nls_gateway``."""

    status: int = _SERVER_ERROR
    """The NLS status code that best describes this error (used in TaskFailed JSON)."""


class InvalidParameter(NlsError, ValueError):
    """A bad argument, caught before any I/O. The message names the argument."""

    status = _CLIENT_ERROR


class ProtocolError(NlsError):
    """A breach of the NLS protocol; ``status_hint`` is the status to report for it."""

    def __init__(self, message: str, *, status_hint: int = 40000002) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.status = status_hint


class LocalProtocolError(ProtocolError):
    """Our own caller broke the protocol rules (e.g. a command out of order)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol rules (malformed JSON, wrong ids, wrong state)."""


class InvalidStateError(NlsError):
    """An API method was used in the wrong task state (e.g. ``send_audio`` before start)."""

    status = 40010005


class WrongStateException(InvalidStateError):
    """Original stream-input TTS name for a call in the wrong state."""


class TaskFailedError(NlsError):
    """The server answered ``TaskFailed``.

    Attributes:
        status: the NLS status code, e.g. 40000004.
        status_text: the server's text, e.g. ``Gateway:IDLE_TIMEOUT:…``.
        task_id: the failed task's id.
        message: the raw TaskFailed JSON text.
    """

    def __init__(self, status: int, status_text: str, task_id: str, message: str = "") -> None:
        super().__init__(f"{status} {status_text}")
        self.status = status
        self.status_text = status_text
        self.task_id = task_id
        self.message = message


class NlsConnectionError(NlsError):
    """The transport failed: refused, rejected handshake, closed early."""

    status = 40000000


class ConnectionUnavailable(NlsConnectionError):
    """Could not connect, or the handshake was rejected (original name).

    ``http_status`` and ``body`` carry the rejected handshake's answer (e.g. 403 and
    ``Meta:ACCESS_DENIED:The token '…' is invalid!``).
    """

    def __init__(self, message: str, *, http_status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.body = body
        if http_status == 403:
            self.status = 40000001


class ConnectionTimeout(NlsConnectionError, TimeoutError):
    """Connecting took longer than allowed (original name)."""


class ConnectionClosedError(NlsConnectionError):
    """The WebSocket closed before the task finished."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class NlsTimeoutError(NlsError, TimeoutError):
    """A blocking call did not finish within its timeout."""

    status = 40000000


class StartTimeoutException(NlsTimeoutError):
    """No ``*Started`` within ``start(timeout=…)`` (original name)."""


class StopTimeoutException(NlsTimeoutError):
    """No ``*Completed`` within ``stop(timeout=…)`` (original name)."""


class CompleteTimeoutException(NlsTimeoutError):
    """Synthesis did not complete within ``completed_timeout`` (original name)."""


class NotStartException(NlsError):
    """A method that needs a started task was called before ``start()`` (original name)."""

    status = 40010005


class GetTokenFailed(NlsError):
    """CreateToken failed; the message says why (original name)."""

    status = 40000001
