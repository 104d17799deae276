"""Speech recognition for asyncio code: one-sentence and real-time transcription.

::

    async with AsyncSpeechTranscriber(url, appkey=APPKEY, token=TOKEN) as st:
        await st.send_audio(pcm)
        async for event in st.events():        # SentenceBegin, SentenceEnd, …
            ...
    text = await recognize("hello.wav", url=url, appkey=APPKEY, token=TOKEN)

Both classes are :class:`~nls.asyncio.session.AsyncSession` subclasses; ``async with``
starts the task and closes the connection on exit.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, cast

from nls.asyncio.session import AsyncSession, CommandSession
from nls.protocol import (
    DEFAULT_URL,
    ControlTranscriber,
    RecognitionCompleted,
    SentenceEnd,
    StartRecognition,
    StartTranscription,
    TranscriptionCompleted,
)
from nls.util import read_audio

__all__ = ["AsyncSpeechRecognizer", "AsyncSpeechTranscriber", "recognize", "transcribe"]


class AsyncSpeechRecognizer(CommandSession):
    """One-sentence recognition (SpeechRecognizer, ≤ 60 s of audio).

    Keyword arguments after the credentials are ``StartRecognition`` payload fields
    (``format``, ``sample_rate``, ``enable_intermediate_result``, …).
    """

    namespace = "SpeechRecognizer"

    command_type = StartRecognition

    async def finish(self, *, timeout: float | None = 10) -> RecognitionCompleted:
        """Stop and return the final result."""
        return cast(RecognitionCompleted, await self.stop(timeout=timeout))


class AsyncSpeechTranscriber(CommandSession):
    """Real-time transcription (SpeechTranscriber): sentence events while audio streams."""

    namespace = "SpeechTranscriber"

    command_type = StartTranscription

    async def control(self, **params: Any) -> None:
        """Change parameters mid-stream (``ControlTranscriber``, e.g. max_sentence_silence)."""
        await self.send_control(ControlTranscriber(extra=params))

    async def finish(self, *, timeout: float | None = 10) -> TranscriptionCompleted:
        """Stop and wait for the last sentences and ``TranscriptionCompleted``."""
        return cast(TranscriptionCompleted, await self.stop(timeout=timeout))


async def recognize(
    audio: bytes | str | os.PathLike[str],
    *,
    url: str = DEFAULT_URL,
    appkey: str | None = None,
    token: str | None = None,
    akid: str | None = None,
    aksecret: str | None = None,
    chunk_ms: int = 100,
    realtime: bool = False,
    **params: Any,
) -> str:
    """Recognise one sentence and return its text.

    Args:
        audio: PCM/WAV bytes or a path (a ``.wav`` file's format and rate are read from
            its header; other files are sent as they are with ``format``/``sample_rate``).
        chunk_ms: audio per frame.
        realtime: pace frames to real time (the cloud expects it; a local gateway does not).
        **params: ``StartRecognition`` fields (``enable_punctuation_prediction=True``, …).
    """
    pcm, params = _prepare(audio, params)
    async with AsyncSpeechRecognizer(
        url, appkey=appkey, token=token, akid=akid, aksecret=aksecret, **params
    ) as sr:
        await _stream(sr, pcm, params.get("sample_rate", 16000), chunk_ms, realtime)
        return (await sr.finish()).result


async def transcribe(
    audio: bytes | str | os.PathLike[str],
    *,
    url: str = DEFAULT_URL,
    appkey: str | None = None,
    token: str | None = None,
    akid: str | None = None,
    aksecret: str | None = None,
    chunk_ms: int = 100,
    realtime: bool = False,
    **params: Any,
) -> list[SentenceEnd]:
    """Transcribe a recording; return its ``SentenceEnd`` events in order."""
    pcm, params = _prepare(audio, params)
    async with AsyncSpeechTranscriber(
        url, appkey=appkey, token=token, akid=akid, aksecret=aksecret, **params
    ) as st:
        sentences: list[SentenceEnd] = []

        async def collect() -> None:
            async for event in st.events():
                if isinstance(event, SentenceEnd):
                    sentences.append(event)

        collector = asyncio.create_task(collect())
        await _stream(st, pcm, params.get("sample_rate", 16000), chunk_ms, realtime)
        await st.finish()
        await collector
        return sentences


def _prepare(
    audio: bytes | str | os.PathLike[str], params: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    if isinstance(audio, bytes):
        return audio, params
    data, fmt, rate = read_audio(Path(audio))
    params.setdefault("format", fmt)
    if rate is not None:
        params.setdefault("sample_rate", rate)
    return data, params


async def _stream(
    session: AsyncSession, pcm: bytes, sample_rate: int, chunk_ms: int, realtime: bool
) -> None:
    step = max(2, sample_rate * 2 * chunk_ms // 1000)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i, offset in enumerate(range(0, len(pcm), step)):
        if session.completed is not None and session.completed.done():
            break  # server VAD ended the sentence: the rest is not recognised (§4)
        await session.send_audio(pcm[offset : offset + step])
        if realtime:
            await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_ms / 1000 - loop.time()))
