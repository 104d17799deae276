"""OpenNLS gateway: a local server speaking the NLS WebSocket protocol with offline engines."""

from __future__ import annotations

__all__: list[str] = []
