"""What the drop-in classes share: argument checks and session factories.

The checks reproduce the official SDK's client-side validation (protocol.md §12.2),
raising :class:`~nls.exception.InvalidParameter` naming the argument, before any I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nls.asyncio.session import AsyncSession
from nls.exception import InvalidParameter
from nls.protocol import check_range
from nls.sync.session import Callbacks, SyncSession

__all__ = [
    "ASR_FORMATS",
    "ASR_SAMPLE_RATES",
    "TTS_FORMATS",
    "TTS_SAMPLE_RATES",
    "check_asr",
    "check_credentials",
    "check_tts",
    "sync_session",
]

ASR_FORMATS = ("pcm", "opus", "opu", "wav", "mp3", "speex", "aac", "amr")
"""The official 1.0.2 client's allow-list for recognition input."""
ASR_SAMPLE_RATES = (8000, 16000)
TTS_FORMATS = ("pcm", "wav", "mp3")
TTS_SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


def check_credentials(
    token: str | None, akid: str | None, aksecret: str | None, appkey: str | None
) -> None:
    """A token or a complete AccessKey pair, and an appkey, are required."""
    if not appkey:
        raise InvalidParameter("appkey: an appkey is required")
    if not token and not (akid and aksecret):
        raise InvalidParameter("token: provide token, or both akid and aksecret")


def check_asr(aformat: str, sample_rate: int, ch: int) -> None:
    """Recognition ``start()`` arguments."""
    if aformat not in ASR_FORMATS:
        raise InvalidParameter(
            f"aformat: format {aformat!r} not supported; use one of {ASR_FORMATS}"
        )
    if sample_rate not in ASR_SAMPLE_RATES:
        raise InvalidParameter(f"sample_rate: {sample_rate} not supported; use 8000 or 16000")
    if ch != 1:
        raise InvalidParameter(f"ch: only mono audio is supported, got {ch} channels")


def check_tts(
    aformat: str, sample_rate: int, volume: int, speech_rate: int, pitch_rate: int
) -> None:
    """Synthesis ``start()`` arguments."""
    if aformat not in TTS_FORMATS:
        raise InvalidParameter(
            f"aformat: format {aformat!r} not supported; use one of {TTS_FORMATS}"
        )
    if sample_rate not in TTS_SAMPLE_RATES:
        raise InvalidParameter(
            f"sample_rate: {sample_rate} not supported; use one of {TTS_SAMPLE_RATES}"
        )
    for name, value, low, high in (
        ("volume", volume, 0, 100),
        ("speech_rate", speech_rate, -500, 500),
        ("pitch_rate", pitch_rate, -500, 500),
    ):
        if not isinstance(value, int):  # the payload fields are JSON integers
            raise InvalidParameter(f"{name}: {value!r} is not an integer")
        check_range(name, value, low, high)


def sync_session(
    url: str,
    *,
    namespace: str,
    token: str | None,
    akid: str | None,
    aksecret: str | None,
    appkey: str | None,
    callbacks: Callbacks,
    callback_args: Sequence[Any],
    overlap: bool = False,
) -> SyncSession:
    """Check the credentials and build the thread bridge of one drop-in object.

    Each ``start()`` gets a fresh session (a new connection, like the official SDK).

    Raises:
        InvalidParameter: missing appkey, or neither a token nor an AccessKey pair.
    """
    check_credentials(token, akid, aksecret, appkey)

    def make(**kwargs: Any) -> AsyncSession:
        return AsyncSession(
            url,
            token=token,
            akid=akid,
            aksecret=aksecret,
            appkey=appkey,
            namespace=namespace,
            buffer_events=False,
            **kwargs,
        )

    return SyncSession(make, callbacks, callback_args, overlap=overlap)
