"""NlsSpeechRecognizer: one-sentence recognition, the original callback API (drop-in).

Translation only: arguments → ``StartRecognition``; events → the original callbacks with
the event's JSON text and ``*callback_args``. Everything else lives in ``nls.sync``
(threads) and ``nls.protocol`` (wire format).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nls.protocol import DEFAULT_URL, StartRecognition
from nls.sync.compat import sync_session
from nls.sync.recognition import RecognitionDropIn

__all__ = ["NlsSpeechRecognizer"]

Callback = Callable[..., Any] | None


class NlsSpeechRecognizer(RecognitionDropIn):
    """One-sentence recognition (SpeechRecognizer): audio ≤ 60 s, one final result.

    Callbacks receive the event's JSON string, then ``callback_args`` spread;
    ``on_close`` receives only ``callback_args``. Give ``token``, or ``akid`` and
    ``aksecret`` (tokens are then fetched, cached and refreshed automatically).
    """

    namespace = "SpeechRecognizer"
    start_command = StartRecognition

    def __init__(
        self,
        url: str = DEFAULT_URL,
        akid: str | None = None,
        aksecret: str | None = None,
        token: str | None = None,
        appkey: str | None = None,
        on_start: Callback = None,
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
                "RecognitionStarted": on_start,
                "RecognitionResultChanged": on_result_changed,
                "RecognitionCompleted": on_completed,
                "error": on_error,
                "close": on_close,
            },
            callback_args=callback_args,
        )
