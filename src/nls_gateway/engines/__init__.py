"""Pluggable offline engines (ASR, VAD, TTS) behind the interfaces in ``base``.

Concrete adapters import their heavy libraries lazily; pick one with ``registry``.
"""

from __future__ import annotations

from nls_gateway.engines.base import (
    AsrEngine,
    AsrOptions,
    AsrResult,
    Subtitle,
    TtsChunk,
    TtsEngine,
    TtsOptions,
    VadEngine,
    VadStream,
    VoiceInfo,
    Word,
)

__all__ = [
    "AsrEngine",
    "AsrOptions",
    "AsrResult",
    "Subtitle",
    "TtsChunk",
    "TtsEngine",
    "TtsOptions",
    "VadEngine",
    "VadStream",
    "VoiceInfo",
    "Word",
]
