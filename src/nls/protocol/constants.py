"""Names, status codes and defaults of the NLS WebSocket protocol (protocol.md §1, §3, §9).

Enum members use the exact wire names, so ``grep StartTranscription`` finds both the code
and the protocol document. No I/O here.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_URL",
    "MAX_FRAME_BYTES",
    "Namespace",
    "Status",
    "default_context",
]

DEFAULT_URL = "wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1"
"""The SDK's default gateway (the 2025 doc's spelling, protocol.md §1.1)."""

MAX_FRAME_BYTES = 64 * 1024
"""Largest frame we send: Java's Netty client caps WebSocket frames at 64 KiB (§2.2)."""

DEFAULT_CONTEXT: dict[str, Any] = {
    "sdk": {"name": "nls-python-sdk", "version": "0.0.1", "language": "python"}
}
"""``context`` exactly as the official Python SDK 0.0.2–1.0.2 sends it (§3.1)."""


def default_context() -> dict[str, Any]:
    """A fresh copy of :data:`DEFAULT_CONTEXT` (``nls.util.GetDefaultContext``)."""
    return {"sdk": dict(DEFAULT_CONTEXT["sdk"])}


class Namespace(str, Enum):
    """``header.namespace`` values (§0)."""

    SpeechRecognizer = "SpeechRecognizer"
    SpeechTranscriber = "SpeechTranscriber"
    SpeechSynthesizer = "SpeechSynthesizer"
    SpeechLongSynthesizer = "SpeechLongSynthesizer"
    FlowingSpeechSynthesizer = "FlowingSpeechSynthesizer"
    Default = "Default"
    """Gateway-level failures (idle timeout, too many requests) use this namespace."""

    def __str__(self) -> str:
        return self.value


class Status(IntEnum):
    """``header.status`` codes (§9), named after the code name in ``status_text``.

    ``Status.X.text`` is the default ``status_text``; a few take ``{}`` placeholders.
    """

    SUCCESS = 20000000
    CLIENT_ERROR = 40000000
    ACCESS_DENIED = 40000001
    MESSAGE_INVALID = 40000002
    PARAMETER_INVALID = 40000003
    IDLE_TIMEOUT = 40000004
    TOO_MANY_REQUESTS = 40000005
    INVALID_AUDIO_HEADER = 40000009
    FREE_TRIAL_EXPIRED = 40000010
    NAMESPACE_NOT_FOUND = 40010001
    DIRECTIVE_INVALID = 40010003
    CLIENT_DISCONNECT = 40010004
    TASK_STATE_ERROR = 40010005
    APPKEY_NOT_EXIST = 40020105
    APPKEY_UID_MISMATCH = 40020106
    NO_VALID_AUDIO_ERROR = 40270002
    DECODE_ERROR = 40270003
    APPKEY_KEY_IS_NULL = 41000002
    UNSUPPORTED_FORMAT = 41010100
    UNSUPPORTED_SAMPLE_RATE = 41010101
    TOO_LONG_SPEECH = 41010104
    TTS_CLIENT_ERROR = 41020001
    GET_CLIENT_DATA_TIMEOUT = 41040201
    SERVER_ERROR = 50000000
    GRPC_ERROR = 50000001
    TTS_SERVER_ERROR = 51020001

    @property
    def text(self) -> str:
        """The documented default ``status_text`` for this code."""
        return _TEXTS[self]


_TEXTS: dict[Status, str] = {
    Status.SUCCESS: "Gateway:SUCCESS:Success.",
    Status.CLIENT_ERROR: "Gateway:CLIENT_ERROR:Client error!",
    Status.ACCESS_DENIED: "Meta:ACCESS_DENIED:The token '{}' is invalid!",
    Status.MESSAGE_INVALID: "Gateway:MESSAGE_INVALID:{}",
    Status.PARAMETER_INVALID: "Gateway:PARAMETER_INVALID:{}",
    Status.IDLE_TIMEOUT: (
        "Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time, "
        "the last directive is '{}'!"
    ),
    Status.TOO_MANY_REQUESTS: "Gateway:TOO_MANY_REQUESTS:Too many requests!",
    Status.INVALID_AUDIO_HEADER: "Gateway:INVALID_AUDIO_HEADER:{}",
    Status.FREE_TRIAL_EXPIRED: "Gateway:FREE_TRIAL_EXPIRED:The free trial has expired!",
    Status.NAMESPACE_NOT_FOUND: "Gateway:NAMESPACE_NOT_FOUND:RESTful url path illegal!",
    Status.DIRECTIVE_INVALID: "Gateway:DIRECTIVE_INVALID:{}",
    Status.CLIENT_DISCONNECT: (
        "Gateway:CLIENT_DISCONNECT:Client disconnected before task finished!"
    ),
    Status.TASK_STATE_ERROR: "Gateway:TASK_STATE_ERROR:{}",
    Status.APPKEY_NOT_EXIST: "Meta:APPKEY_NOT_EXIST:Appkey not exist!",
    Status.APPKEY_UID_MISMATCH: "Meta:APPKEY_UID_MISMATCH:Appkey and user mismatch!",
    Status.NO_VALID_AUDIO_ERROR: "Realtime:NO_VALID_AUDIO_ERROR:Silent speech!",
    Status.DECODE_ERROR: "Realtime:DECODE_ERROR:{}",
    Status.APPKEY_KEY_IS_NULL: "Gateway:APPKEY_KEY_IS_NULL:appkey not set",
    Status.UNSUPPORTED_FORMAT: "Realtime:UNSUPPORTED_FORMAT:{}",
    Status.UNSUPPORTED_SAMPLE_RATE: "Realtime:UNSUPPORTED_SAMPLE_RATE:{}",
    Status.TOO_LONG_SPEECH: "Realtime:TOO_LONG_SPEECH:{}",
    Status.TTS_CLIENT_ERROR: "TTS:TtsClientError:{}",
    Status.GET_CLIENT_DATA_TIMEOUT: (
        "Realtime:GET_CLIENT_DATA_TIMEOUT:Client data does not send continuously!"
    ),
    Status.SERVER_ERROR: "Gateway:SERVER_ERROR:{}",
    Status.GRPC_ERROR: "Gateway:GRPC_ERROR:Grpc error!",
    Status.TTS_SERVER_ERROR: "TTS:TtsServerError:{}",
}
