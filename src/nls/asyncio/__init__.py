"""The asyncio API: ``async with`` sessions, typed events, and one-call helpers.

::

    import nls.asyncio as nlsa

    text = await nlsa.recognize("hello.wav", url=URL, appkey=APPKEY, token=TOKEN)
    audio = await nlsa.synthesize("你好", url=URL, appkey=APPKEY, token=TOKEN, format="wav")
"""

from __future__ import annotations

from nls.asyncio.connection import AsyncConnection
from nls.asyncio.recognizer import (
    AsyncSpeechRecognizer,
    AsyncSpeechTranscriber,
    recognize,
    transcribe,
)
from nls.asyncio.session import AsyncSession
from nls.asyncio.synthesizer import (
    AsyncSpeechSynthesizer,
    AsyncStreamInputSynthesizer,
    synthesize,
)

__all__ = [
    "AsyncConnection",
    "AsyncSession",
    "AsyncSpeechRecognizer",
    "AsyncSpeechSynthesizer",
    "AsyncSpeechTranscriber",
    "AsyncStreamInputSynthesizer",
    "recognize",
    "synthesize",
    "transcribe",
]
