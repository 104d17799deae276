"""NlsSpeechSynthesizer: text to speech, short and long, the original API (drop-in).

Translation only: arguments → ``StartSynthesis`` in SpeechSynthesizer (or
SpeechLongSynthesizer with ``long_tts=True``); audio → ``on_data(bytes, *args)``;
subtitles → ``on_metainfo(json, *args)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nls.protocol import DEFAULT_URL, StartSynthesis
from nls.sync.compat import check_tts, sync_session

__all__ = ["NlsSpeechSynthesizer"]

Callback = Callable[..., Any] | None


class NlsSpeechSynthesizer:
    """Speech synthesis: ``start(text)`` streams audio to ``on_data``."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        akid: str | None = None,
        aksecret: str | None = None,
        token: str | None = None,
        appkey: str | None = None,
        long_tts: bool = False,
        on_metainfo: Callback = None,
        on_data: Callback = None,
        on_completed: Callback = None,
        on_error: Callback = None,
        on_close: Callback = None,
        callback_args: Sequence[Any] = (),
    ) -> None:
        namespace = "SpeechLongSynthesizer" if long_tts else "SpeechSynthesizer"
        self._sync = sync_session(
            url,
            namespace=namespace,
            token=token,
            akid=akid,
            aksecret=aksecret,
            appkey=appkey,
            callbacks={
                "MetaInfo": on_metainfo,
                "audio": on_data,
                "SynthesisCompleted": on_completed,
                "error": on_error,
                "close": on_close,
            },
            callback_args=callback_args,
        )

    def start(
        self,
        text: str | None = None,
        voice: str = "xiaoyun",
        aformat: str = "pcm",
        sample_rate: int = 16000,
        volume: int = 50,
        speech_rate: int = 0,
        pitch_rate: int = 0,
        wait_complete: bool = True,
        start_timeout: float = 10,
        completed_timeout: float = 60,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
        ex: dict[str, Any] | None = None,
    ) -> bool:
        """Synthesize ``text``.

        With ``wait_complete`` (default) block until ``on_completed`` has run (at most
        ``start_timeout`` to connect plus ``completed_timeout``); otherwise return once
        the request is sent.

        Returns:
            True on success; False on failure (``on_error`` says why).

        Raises:
            InvalidParameter: unsupported format, sample rate or out-of-range values.
        """
        check_tts(aformat, sample_rate, volume, speech_rate, pitch_rate)
        command = StartSynthesis(
            text=text or "",
            voice=voice,
            format=aformat,
            sample_rate=sample_rate,
            volume=volume,
            speech_rate=speech_rate,
            pitch_rate=pitch_rate,
            extra=dict(ex or {}),
        )
        started = self._sync.start(
            command,
            timeout=start_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        if not started or not wait_complete:
            return started
        return self._sync.wait_completed(completed_timeout)

    def shutdown(self) -> None:
        """Close the connection now. Idempotent; safe inside callbacks."""
        self._sync.shutdown()
