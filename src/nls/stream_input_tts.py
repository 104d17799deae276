"""NlsStreamInputTtsSynthesizer: text streamed in, audio streamed out (drop-in).

The official stream-input TTS API (FlowingSpeechSynthesizer): ``startStreamInputTts``,
``sendStreamInputTts``, ``stopStreamInputTts``, ``shutdown``. It raises like the
original (``StartTimeoutException``, ``WrongStateException``) and also reports every
failure to ``on_error``. Fixed: the payload key is ``volume`` (the original sent the
typo ``volumn``; both are accepted as arguments), and ``stopStreamInputTts`` has a
timeout instead of waiting forever.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nls.exception import StartTimeoutException, WrongStateException
from nls.protocol import DEFAULT_URL, RunSynthesis, StartSynthesis, new_id
from nls.sync.compat import check_tts, sync_session

__all__ = ["NlsStreamInputTtsSynthesizer"]

Callback = Callable[..., Any] | None


class NlsStreamInputTtsSynthesizer:
    """Stream-input speech synthesis (FlowingSpeechSynthesizer)."""

    namespace = "FlowingSpeechSynthesizer"

    def __init__(
        self,
        url: str = DEFAULT_URL,
        akid: str | None = None,
        aksecret: str | None = None,
        token: str | None = None,
        appkey: str | None = None,
        session_id: str | None = None,
        on_data: Callback = None,
        on_sentence_begin: Callback = None,
        on_sentence_synthesis: Callback = None,
        on_sentence_end: Callback = None,
        on_completed: Callback = None,
        on_error: Callback = None,
        on_close: Callback = None,
        callback_args: Sequence[Any] = (),
    ) -> None:
        self._session_id = session_id or new_id()
        self._sync = sync_session(
            url,
            namespace=self.namespace,
            token=token,
            akid=akid,
            aksecret=aksecret,
            appkey=appkey,
            callbacks={
                "SentenceBegin": on_sentence_begin,
                "SentenceSynthesis": on_sentence_synthesis,
                "SentenceEnd": on_sentence_end,
                "audio": on_data,
                "SynthesisCompleted": on_completed,
                "error": on_error,
                "close": on_close,
            },
            callback_args=callback_args,
        )

    def startStreamInputTts(  # noqa: N802 - original name
        self,
        voice: str = "longxiaochun",
        aformat: str = "pcm",
        sample_rate: int = 24000,
        volume: int = 50,
        speech_rate: int = 0,
        pitch_rate: int = 0,
        ex: dict[str, Any] | None = None,
        timeout: float = 10,
        volumn: int | None = None,
    ) -> bool:
        """Connect and start; block until ``SynthesisStarted``.

        Raises:
            InvalidParameter: bad arguments.
            WrongStateException: already started.
            StartTimeoutException: no ``SynthesisStarted`` within ``timeout``, or the
                server refused the task (``on_error`` has the details).
        """
        if volumn is not None:  # the original's spelling
            volume = volumn
        check_tts(aformat, sample_rate, volume, speech_rate, pitch_rate)
        if self._sync.connected:
            raise WrongStateException("startStreamInputTts: already started")
        command = StartSynthesis(
            session_id=self._session_id,
            voice=voice,
            format=aformat,
            sample_rate=sample_rate,
            volume=volume,
            speech_rate=speech_rate,
            pitch_rate=pitch_rate,
            extra=dict(ex or {}),
        )
        if not self._sync.start(command, timeout=timeout):
            raise StartTimeoutException("stream-input synthesis did not start (see on_error)")
        return True

    def sendStreamInputTts(self, text: str, timeout: float = 10) -> bool:  # noqa: N802
        """Send a piece of text.

        Raises:
            WrongStateException: not started (or already stopped/failed).
        """
        if not self._sync.connected:
            raise WrongStateException("sendStreamInputTts: not started")
        command = RunSynthesis(text=text)
        return self._sync.send_control(command, timeout)

    def stopStreamInputTts(self, timeout: float = 60) -> bool:  # noqa: N802 - original name
        """No more text: block until the remaining audio and ``on_completed`` (or timeout).

        Raises:
            WrongStateException: not started.
        """
        if not self._sync.connected:
            raise WrongStateException("stopStreamInputTts: not started")
        ok = self._sync.stop(timeout)
        self._sync.shutdown()
        return ok

    def shutdown(self) -> None:
        """Close the connection now. Idempotent; safe inside callbacks."""
        self._sync.shutdown()
