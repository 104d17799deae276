"""OpenNLS gateway: a local server speaking the NLS WebSocket protocol with offline engines.

``serve(ServerConfig(...))`` starts one in-process; ``nls serve`` (``python -m
nls_gateway``) starts one from the command line. The server modules are imported on
first use, so ``import nls_gateway.engines`` stays free of websockets and prometheus.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nls_gateway.config import ServerConfig
    from nls_gateway.server import Gateway, serve

__all__ = ["Gateway", "ServerConfig", "serve"]

_LAZY = {
    "Gateway": "nls_gateway.server",
    "serve": "nls_gateway.server",
    "ServerConfig": "nls_gateway.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nls_gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
