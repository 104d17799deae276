"""OpenNLS: a drop-in replacement for the Alibaba Cloud NLS Python SDK (``import nls``).

The original names come first (same classes, arguments, callbacks and module paths);
the asyncio API is in :mod:`nls.asyncio`.
"""

from __future__ import annotations

from nls import exception, token, util
from nls.common_proto import NlsCommonProto
from nls.exception import (
    CompleteTimeoutException,
    ConnectionTimeout,
    ConnectionUnavailable,
    GetTokenFailed,
    InvalidParameter,
    NotStartException,
    StartTimeoutException,
    StopTimeoutException,
    WrongStateException,
)
from nls.logging import enableTrace
from nls.speech_recognizer import NlsSpeechRecognizer
from nls.speech_synthesizer import NlsSpeechSynthesizer
from nls.speech_transcriber import NlsSpeechTranscriber
from nls.stream_input_tts import NlsStreamInputTtsSynthesizer
from nls.token import getToken
from nls.util import GetDefaultContext, wav2pcm
from nls.version import __version__

__all__ = [
    "CompleteTimeoutException",
    "ConnectionTimeout",
    "ConnectionUnavailable",
    "GetDefaultContext",
    "GetTokenFailed",
    "InvalidParameter",
    "NlsCommonProto",
    "NlsSpeechRecognizer",
    "NlsSpeechSynthesizer",
    "NlsSpeechTranscriber",
    "NlsStreamInputTtsSynthesizer",
    "NotStartException",
    "StartTimeoutException",
    "StopTimeoutException",
    "WrongStateException",
    "__version__",
    "enableTrace",
    "exception",
    "getToken",
    "token",
    "util",
    "wav2pcm",
]
