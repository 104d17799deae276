"""Audio file helpers and the default context (original path ``nls.util``).

``wav2pcm`` and ``GetDefaultContext`` keep their original names and behaviour, except
that ``wav2pcm`` reads real WAV files (extra ``LIST``/``fact`` chunks, any header size)
instead of assuming a 44-byte header. Stdlib only: no numpy.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from nls.exception import InvalidParameter
from nls.protocol.constants import default_context

__all__ = ["GetDefaultContext", "read_audio", "wav2pcm"]


def GetDefaultContext() -> dict[str, Any]:  # noqa: N802 - original name
    """The ``context`` object the official SDK sends: ``{"sdk": {name, version, language}}``."""
    return default_context()


def wav2pcm(wavfile: str | Path, pcmfile: str | Path) -> None:
    """Write the PCM samples of ``wavfile`` to ``pcmfile``.

    Raises:
        ValueError: ``wavfile`` is not a PCM WAV file (original behaviour).
    """
    try:
        with wave.open(str(wavfile), "rb") as w:
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError("not a wav!") from exc
    Path(pcmfile).write_bytes(frames)


def read_audio(path: Path) -> tuple[bytes, str, int | None]:
    """Read an audio file for sending: ``(data, format, sample_rate)``.

    A PCM ``.wav`` file gives its samples as ``pcm`` with the header's rate (it must be
    mono 16-bit); any other file is returned as is, its format guessed from the suffix
    (``.pcm`` → pcm, ``.opus``/``.ogg`` → opus, ``.opu``, ``.mp3``…) and no rate.

    Raises:
        InvalidParameter: a WAV file that is not mono 16-bit PCM.
    """
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "wav":
        try:
            with wave.open(str(path), "rb") as w:
                if w.getnchannels() != 1 or w.getsampwidth() != 2:
                    raise InvalidParameter(f"{path}: only mono 16-bit PCM WAV can be sent as is")
                return w.readframes(w.getnframes()), "pcm", w.getframerate()
        except wave.Error:
            return path.read_bytes(), "wav", None
    fmt = {"ogg": "opus", "raw": "pcm", "": "pcm"}.get(suffix, suffix)
    return path.read_bytes(), fmt, None
