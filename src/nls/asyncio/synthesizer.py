"""Speech synthesis for asyncio code: whole text, long text, and text streamed in.

::

    wav = await synthesize("你好", url=url, appkey=APPKEY, token=TOKEN, format="wav")

    tts = AsyncSpeechSynthesizer(url, appkey=APPKEY, token=TOKEN)
    async for chunk in tts.stream("一段很长的文字……", voice="xiaoyun"):
        play(chunk)

    async with AsyncStreamInputSynthesizer(url, appkey=APPKEY, token=TOKEN) as tts:
        await tts.send_text("今天天气")
        await tts.send_text("不错。")
        async for chunk in tts.audio():     # until SynthesisCompleted, after finish()
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from nls.asyncio.session import AsyncSession, CommandSession, merge_ex
from nls.protocol import (
    DEFAULT_URL,
    AudioData,
    Event,
    RunSynthesis,
    StartSynthesis,
    new_id,
)

__all__ = ["AsyncSpeechSynthesizer", "AsyncStreamInputSynthesizer", "synthesize"]


class AsyncSpeechSynthesizer(AsyncSession):
    """Text to speech in one request (SpeechSynthesizer, or SpeechLongSynthesizer with
    ``long_tts=True``). Audio arrives while it is synthesized."""

    namespace = "SpeechSynthesizer"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        appkey: str | None = None,
        token: str | None = None,
        akid: str | None = None,
        aksecret: str | None = None,
        long_tts: bool = False,
    ) -> None:
        super().__init__(
            url,
            appkey=appkey,
            token=token,
            akid=akid,
            aksecret=aksecret,
            namespace="SpeechLongSynthesizer" if long_tts else "SpeechSynthesizer",
        )

    async def stream(
        self,
        text: str,
        *,
        ex: Mapping[str, Any] | None = None,
        timeout: float | None = 10,
        **params: Any,
    ) -> AsyncIterator[bytes]:
        """Synthesize ``text``; yield audio chunks as they arrive.

        ``params`` are ``StartSynthesis`` fields: ``voice``, ``format`` (pcm/wav/mp3),
        ``sample_rate``, ``volume``, ``speech_rate``, ``pitch_rate``, ``enable_subtitle``.
        Subtitles (``MetaInfo``) are available through :meth:`events` instead.

        Raises:
            TaskFailedError: the server refused or failed the synthesis.
        """
        await self.start(merge_ex(StartSynthesis(text=text, **params), ex), timeout=timeout)
        async for event in self.events():
            if isinstance(event, AudioData):
                yield event.data
        await self.close()

    async def synthesize(self, text: str, **params: Any) -> bytes:
        """Synthesize ``text`` and return all of its audio."""
        return b"".join([chunk async for chunk in self.stream(text, **params)])


class AsyncStreamInputSynthesizer(CommandSession):
    """Text streamed in, audio streamed out (FlowingSpeechSynthesizer).

    ``params`` are the ``StartSynthesis`` fields (``voice`` default ``longxiaochun``,
    ``format``, ``sample_rate`` default 24000, ``volume``, ``speech_rate``,
    ``pitch_rate``, ``enable_subtitle``).
    """

    namespace = "FlowingSpeechSynthesizer"

    command_type = StartSynthesis

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        session_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("voice", "longxiaochun")
        kwargs.setdefault("sample_rate", 24000)
        super().__init__(url, session_id=session_id or new_id(), **kwargs)

    async def send_text(self, text: str) -> None:
        """Send a piece of text (``RunSynthesis``)."""
        await self.send_control(RunSynthesis(text=text))

    async def finish(self, *, timeout: float | None = 60) -> Event:
        """No more text: wait until the last audio and ``SynthesisCompleted``."""
        return await self.stop(timeout=timeout)

    async def audio(self) -> AsyncIterator[bytes]:
        """Audio chunks as they arrive, until ``SynthesisCompleted``."""
        async for event in self.events():
            if isinstance(event, AudioData):
                yield event.data


async def synthesize(
    text: str,
    *,
    url: str = DEFAULT_URL,
    appkey: str | None = None,
    token: str | None = None,
    akid: str | None = None,
    aksecret: str | None = None,
    long_tts: bool | None = None,
    **params: Any,
) -> bytes:
    """Synthesize ``text`` and return its audio (``format`` pcm by default).

    Text over 300 characters goes to SpeechLongSynthesizer unless ``long_tts`` says
    otherwise.
    """
    if long_tts is None:
        long_tts = len(text) > 300
    tts = AsyncSpeechSynthesizer(
        url, appkey=appkey, token=token, akid=akid, aksecret=aksecret, long_tts=long_tts
    )
    try:
        return await tts.synthesize(text, **params)
    finally:
        await tts.close()
