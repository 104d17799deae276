"""NlsSpeechRecognizer: one-sentence recognition, the original callback API (drop-in).

Translation only: arguments → ``StartRecognition``; events → the original callbacks
with the event's JSON text and ``*callback_args``. Everything else lives in
``nls.sync`` (threads) and ``nls.protocol`` (wire format).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nls.asyncio.session import AsyncSession
from nls.protocol import DEFAULT_URL, StartRecognition
from nls.sync.compat import check_asr, check_credentials, session_factory
from nls.sync.session import SyncSession

__all__ = ["NlsSpeechRecognizer"]

Callback = Callable[..., Any] | None


class NlsSpeechRecognizer:
    """One-sentence recognition (SpeechRecognizer): audio ≤ 60 s, one final result.

    Callbacks receive the event's JSON string, then ``callback_args`` spread;
    ``on_close`` receives only ``callback_args``. Give ``token``, or ``akid`` and
    ``aksecret`` (tokens are then fetched, cached and refreshed automatically).
    """

    namespace = "SpeechRecognizer"

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
        check_credentials(token, akid, aksecret, appkey)
        self._sync = SyncSession(
            session_factory(
                AsyncSession,
                url,
                token=token,
                akid=akid,
                aksecret=aksecret,
                appkey=appkey,
                namespace=self.namespace,
            ),
            {
                "RecognitionStarted": on_start,
                "RecognitionResultChanged": on_result_changed,
                "RecognitionCompleted": on_completed,
                "error": on_error,
                "close": on_close,
            },
            callback_args,
        )

    def start(
        self,
        aformat: str = "pcm",
        sample_rate: int = 16000,
        ch: int = 1,
        enable_intermediate_result: bool = False,
        enable_punctuation_prediction: bool = False,
        enable_inverse_text_normalization: bool = False,
        timeout: float = 10,
        ping_interval: float | None = 8,
        ping_timeout: float | None = None,
        ex: dict[str, Any] | None = None,
        enable_punctutation_prediction: bool | None = None,
    ) -> bool:
        """Start recognition; block until ready (``on_start``) or ``timeout``.

        Returns:
            True when the task started; False otherwise (``on_error`` says why).

        Raises:
            InvalidParameter: unsupported ``aformat``, ``sample_rate`` or ``ch``.
        """
        check_asr(aformat, sample_rate, ch)
        if enable_punctutation_prediction is not None:  # the 0.0.1 spelling
            enable_punctuation_prediction = enable_punctutation_prediction
        command = StartRecognition(
            format=aformat,
            sample_rate=sample_rate,
            enable_intermediate_result=enable_intermediate_result,
            enable_punctuation_prediction=enable_punctuation_prediction,
            enable_inverse_text_normalization=enable_inverse_text_normalization,
            extra=dict(ex or {}),
        )
        return self._sync.start(
            command, timeout=timeout, ping_interval=ping_interval, ping_timeout=ping_timeout
        )

    def stop(self, timeout: float = 10) -> bool:
        """Stop; block until ``on_completed`` has run or ``timeout``. True on success."""
        return self._sync.stop(timeout)

    def shutdown(self) -> None:
        """Close the connection now. Idempotent; safe inside callbacks."""
        self._sync.shutdown()

    def send_audio(self, pcm_data: bytes) -> bool:
        """Send audio in the ``aformat`` given to ``start`` (does not block).

        Returns:
            False, with one warning, before ``start`` succeeded or after the task ended.
        """
        return self._sync.send_audio(pcm_data)
