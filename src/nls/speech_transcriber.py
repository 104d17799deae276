"""NlsSpeechTranscriber: real-time transcription, the original callback API (drop-in).

Translation only (see ``speech_recognizer``). ``ctrl`` accepts both documented forms:
``ctrl(ex={...})`` (0.0.1 doc) and ``ctrl(**params)`` (1.0.x code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nls.exception import InvalidParameter
from nls.protocol import DEFAULT_URL, ControlTranscriber, StartTranscription
from nls.sync.compat import sync_session
from nls.sync.recognition import RecognitionDropIn

__all__ = ["NlsSpeechTranscriber"]

Callback = Callable[..., Any] | None


class NlsSpeechTranscriber(RecognitionDropIn):
    """Real-time transcription (SpeechTranscriber): sentence events while audio streams."""

    namespace = "SpeechTranscriber"
    start_command = StartTranscription

    def __init__(
        self,
        url: str = DEFAULT_URL,
        akid: str | None = None,
        aksecret: str | None = None,
        token: str | None = None,
        appkey: str | None = None,
        on_start: Callback = None,
        on_sentence_begin: Callback = None,
        on_sentence_end: Callback = None,
        on_result_changed: Callback = None,
        on_completed: Callback = None,
        on_error: Callback = None,
        on_close: Callback = None,
        callback_args: Sequence[Any] = (),
    ) -> None:
        self._sync = sync_session(
            url,
            namespace=self.namespace,
            token=token,
            akid=akid,
            aksecret=aksecret,
            appkey=appkey,
            callbacks={
                "TranscriptionStarted": on_start,
                "SentenceBegin": on_sentence_begin,
                "TranscriptionResultChanged": on_result_changed,
                "SentenceEnd": on_sentence_end,
                "TranscriptionCompleted": on_completed,
                "error": on_error,
                "close": on_close,
            },
            callback_args=callback_args,
        )

    def ctrl(self, ex: dict[str, Any] | None = None, timeout: float = 10, **kwargs: Any) -> bool:
        """Send ``ControlTranscriber`` with ``ex`` and/or keyword parameters in its payload.

        Raises:
            InvalidParameter: nothing to send.
        """
        params = {**(ex or {}), **kwargs}
        if not params:
            raise InvalidParameter("ctrl: give parameters, e.g. ctrl(ex={...}) or ctrl(key=value)")
        command = ControlTranscriber(extra=params)
        return self._sync.send_control(command, timeout)
