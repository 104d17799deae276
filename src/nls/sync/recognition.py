"""The methods NlsSpeechRecognizer and NlsSpeechTranscriber share (original semantics).

``start`` / ``stop`` / ``send_audio`` / ``shutdown`` with the documented signatures and
return values; the subclasses only say which start command and callbacks they use.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nls.protocol import StartRecognition, StartTranscription
from nls.sync.compat import check_asr
from nls.sync.session import SyncSession

__all__ = ["RecognitionDropIn"]


class RecognitionDropIn:
    """Base of the two recognition drop-in classes."""

    start_command: ClassVar[type[StartRecognition] | type[StartTranscription]]
    _sync: SyncSession

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
        """Start; block until ready (``on_start`` has run) or ``timeout``.

        Returns:
            True when the task started; False otherwise (``on_error`` says why).

        Raises:
            InvalidParameter: unsupported ``aformat``, ``sample_rate`` or ``ch``.
        """
        check_asr(aformat, sample_rate, ch)
        if enable_punctutation_prediction is not None:  # the 0.0.1 spelling
            enable_punctuation_prediction = enable_punctutation_prediction
        command = self.start_command(
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
