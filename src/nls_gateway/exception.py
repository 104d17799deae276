"""Gateway-side errors (singular name, like ``nls.exception``)."""

from __future__ import annotations

from nls.exception import NlsError

__all__ = ["DecodeAbandoned", "EngineError", "EngineUnavailableError"]


class EngineError(NlsError):
    """An engine failed on one task's input; that task gets TaskFailed 50000000."""

    status = 50000000


class EngineUnavailableError(EngineError):
    """An engine's library or weights are missing; the message says how to install them."""


class DecodeAbandoned(Exception):
    """A partial decode stopped early because its ``AsrOptions.abandon`` said so (a final
    is waiting for the cores); the scheduler drops the partial, nobody sees an error."""
