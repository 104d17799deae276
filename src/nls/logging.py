"""Logging switches of the original SDK (original path ``nls.logging``) on stdlib logging.

The SDK logs through the ``nls`` logger (protocol frames through ``nls.protocol``, with
WS-style prefixes ``>`` sent, ``<`` received, ``=`` state change, ``!`` error). Tokens and
secrets are never logged.
"""

from __future__ import annotations

import logging as _logging

__all__ = ["debug", "enableTrace", "error", "getLogger", "info", "isEnabledForDebug", "warning"]

_logger = _logging.getLogger("nls")
_handler: _logging.Handler | None = None


def getLogger() -> _logging.Logger:  # noqa: N802 - original name
    """The SDK's logger."""
    return _logger


def enableTrace(  # noqa: N802 - original name
    traceable: bool, handler: _logging.Handler | None = None
) -> None:
    """Turn SDK debug logging on (DEBUG, with ``handler``, stderr by default) or off."""
    global _handler
    if _handler is not None:
        _logger.removeHandler(_handler)
        _handler = None
    if traceable:
        _handler = handler if handler is not None else _logging.StreamHandler()
        _handler.setFormatter(_logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        _logger.addHandler(_handler)
        _logger.setLevel(_logging.DEBUG)
    else:
        _logger.setLevel(_logging.WARNING)


def isEnabledForDebug() -> bool:  # noqa: N802 - original name
    return _logger.isEnabledFor(_logging.DEBUG)


def debug(msg: str, *args: object) -> None:
    _logger.debug(msg, *args)


def info(msg: str, *args: object) -> None:
    _logger.info(msg, *args)


def warning(msg: str, *args: object) -> None:
    _logger.warning(msg, *args)


def error(msg: str, *args: object) -> None:
    _logger.error(msg, *args)
