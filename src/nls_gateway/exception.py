"""Gateway-side errors (singular name, like ``nls.exception``)."""

from __future__ import annotations

from nls.exception import NlsError

__all__ = ["EngineError", "EngineUnavailableError"]


class EngineError(NlsError):
    """An engine failed on one task's input; that task gets TaskFailed 50000000."""

    status = 50000000


class EngineUnavailableError(EngineError):
    """An engine's library or weights are missing; the message says how to install them."""
