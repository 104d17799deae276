"""Start-parameter validation shared by the task handlers, with the cloud's status codes.

This module owns the checks every namespace runs on its ``Start*`` payload before any
audio or text is processed (protocol.md §4.1, §5.1, §6.1, §7.1, §9): recognition input
format and sample rate (41010100 / 41010101), ``max_sentence_silence`` and the other
numeric ranges (40000003), synthesis text presence and length (40010003 / 41020001),
voice, output format and rates (40000003 / 41020001), and the translation of NLS units
into engine options (``speech_rate`` → ``TtsOptions.speed``, the ASR flags →
``AsrOptions``, with the hot words of ``vocabulary_id`` and the project's ASR model).
It must not call an engine or send anything: it raises
:class:`~nls_gateway.tasks.base.TaskError` and returns plain values.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence

from nls.protocol import (
    StartRecognition,
    StartSynthesis,
    StartTranscription,
    check_range as payload_range_check,
)
from nls.protocol.constants import Status
from nls_gateway.audio.decoder import SUPPORTED_FORMATS, AudioFormatError, Decoder
from nls_gateway.audio.input import make_decoder
from nls_gateway.engines.base import AsrOptions, TtsOptions, VoiceInfo
from nls_gateway.tasks.base import Project, TaskError

__all__ = [
    "ASR_SAMPLE_RATES",
    "TTS_FORMATS",
    "asr_decoder",
    "asr_options",
    "audio_error",
    "check_range",
    "check_tts_params",
    "check_tts_text",
    "check_voice",
    "choose_voice",
    "disfluency",
    "has_speakable_text",
    "hotwords",
    "semantic_sentences",
    "speech_rate_to_speed",
    "tts_options",
]

ASR_SAMPLE_RATES = (8000, 16000)
"""§4.1/§5.1: the model's rate; anything else → 41010101 UNSUPPORTED_SAMPLE_RATE."""
TTS_FORMATS = ("pcm", "wav", "mp3")
"""§6.1/§10.3: synthesis output containers."""


def asr_decoder(command: StartRecognition | StartTranscription) -> Decoder:
    """Check ``format``/``sample_rate`` and build the streaming input decoder.

    The decoder turns the client's frames into 16 kHz float32 (8 kHz input is resampled,
    §10.1), the rate every ASR and VAD engine here is fed.

    Raises:
        TaskError: 41010100 UNSUPPORTED_FORMAT or 41010101 UNSUPPORTED_SAMPLE_RATE.
    """
    fmt = command.format
    if fmt.lower() not in SUPPORTED_FORMATS:
        raise TaskError(
            Status.UNSUPPORTED_FORMAT,
            Status.UNSUPPORTED_FORMAT.text.format(f"Invalid format '{fmt}'!"),
        )
    if command.sample_rate not in ASR_SAMPLE_RATES:
        raise TaskError(
            Status.UNSUPPORTED_SAMPLE_RATE,
            Status.UNSUPPORTED_SAMPLE_RATE.text.format(
                f"Invalid sample rate {command.sample_rate}, only 8000 and 16000 are supported!"
            ),
        )
    try:
        return make_decoder(fmt, command.sample_rate, target_rate=16000)
    except AudioFormatError as exc:
        raise audio_error(exc) from exc


def audio_error(exc: AudioFormatError) -> TaskError:
    """The TaskError for bad input audio (40000009 bad header, 40270003 undecodable, …).

    Header errors keep the cloud's bare text (``Invalid wav header!``, §9); texts that start
    with a code name get the ``Realtime:`` module prefix the ASR service uses.
    """
    text = exc.status_text
    head = text.split(":", 1)[0]
    if ":" in text and head.isupper() and "_" in head:
        text = f"Realtime:{text}"
    return TaskError(exc.status, text)


check_range = functools.partial(payload_range_check, error=TaskError)
"""Raise 40000003 PARAMETER_INVALID when ``value`` is set and outside ``low…high``
(the protocol core's range rule, reported as this task's TaskError)."""


def hotwords(command: StartRecognition | StartTranscription, project: Project) -> tuple[str, ...]:
    """The hot words the request's ``vocabulary_id`` names (none without one).

    The cloud keeps vocabularies per account and answers an id it does not know with a
    parameter error; the gateway's vocabularies come from its config, and an id missing
    there fails the task the same way rather than silently decoding without the words.

    Raises:
        TaskError: 40000003 ``Invalid vocabulary_id '<id>'!``.
    """
    vocabulary_id = command.vocabulary_id
    if not vocabulary_id:
        return ()
    words = project.vocabularies.get(vocabulary_id)
    if words is None:
        raise TaskError(
            Status.PARAMETER_INVALID,
            Status.PARAMETER_INVALID.text.format(f"Invalid vocabulary_id '{vocabulary_id}'!"),
        )
    return tuple(words)


def asr_options(
    command: StartRecognition | StartTranscription, project: Project, *, final: bool = True
) -> AsrOptions:
    """The engine options for one decode: the project's language and model, the request's
    flags and the hot words of its ``vocabulary_id``.

    Raises:
        TaskError: 40000003 for an unknown ``vocabulary_id`` (handlers check it at start).
    """
    return AsrOptions(
        language=project.language,
        # The filler and sentence-break rules read the marks (那个，… / 。): the engine
        # punctuates for them and the task strips the marks if the client wants none.
        punctuation=command.enable_punctuation_prediction
        or disfluency(command)
        or semantic_sentences(command),
        inverse_text_normalization=command.enable_inverse_text_normalization,
        final=final,
        hotwords=hotwords(command, project),
        model=project.asr_model,
        # Only SpeechTranscriber results carry word times (§5.4), and only when asked.
        words=bool(getattr(command, "enable_words", False)),
    )


def disfluency(command: StartRecognition | StartTranscription) -> bool:
    """``disfluency`` (§5.1): remove filler words. StartRecognition does not document it;
    a client may still send it (the official SDK's ``ex``), and it works the same there."""
    value = getattr(command, "disfluency", None)
    if value is None:
        value = command.extra.get("disfluency")
    return value is True


def semantic_sentences(command: StartRecognition | StartTranscription) -> bool:
    """``enable_semantic_sentence_detection`` (§5.1, SpeechTranscriber only)."""
    return getattr(command, "enable_semantic_sentence_detection", None) is True


def speech_rate_to_speed(speech_rate: int) -> float:
    """NLS ``speech_rate`` −500…500 → speed factor 0.5…2.0 (§6.1: "0.5×–2×").

    Positive rates scale linearly to 2×, negative ones mirror it (−500 → 1/2×), so equal
    steps either side of 0 change the speed by the same ratio at the ends.
    """
    if speech_rate >= 0:
        return 1.0 + speech_rate / 500.0
    return 1.0 / (1.0 - speech_rate / 500.0)


def check_tts_text(text: str | None, *, limit: int) -> str:
    """Check synthesis text presence and length; returns the text.

    Raises:
        TaskError: 40010003 ``No text specified!`` for missing or blank text (§6.2), and
            41020001 ``SSML text length should be less than N.`` beyond ``limit`` — the
            cloud's own answer to over-long text (§2.5, §9), which we use rather than
            silently truncating.
    """
    if text is None or not text.strip():
        raise TaskError(
            Status.DIRECTIVE_INVALID, Status.DIRECTIVE_INVALID.text.format("No text specified!")
        )
    if len(text) > limit:
        # 41020001: the cloud's `SSML text length should be less than 300.` (§2.5)
        raise TaskError(
            Status.TTS_CLIENT_ERROR,
            Status.TTS_CLIENT_ERROR.text.format(
                f"SSML text length should be less than {limit}. (got {len(text)} characters)"
            ),
        )
    return text


def has_speakable_text(text: str) -> bool:
    """True if ``text`` has a letter, digit or CJK character (not only punctuation)."""
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


def check_tts_params(command: StartSynthesis) -> None:
    """Check format, rates, volume and the prosody ranges of a StartSynthesis.

    Raises:
        TaskError: 40000003 PARAMETER_INVALID for any value out of its range (§6.1).
    """
    if command.format.lower() not in TTS_FORMATS:
        raise TaskError(
            Status.PARAMETER_INVALID,
            Status.PARAMETER_INVALID.text.format(
                f"Invalid format '{command.format}', must be one of pcm, wav, mp3!"
            ),
        )
    check_range("sample_rate", command.sample_rate, 8000, 48000)
    check_range("volume", command.volume, 0, 100)
    check_range("speech_rate", command.speech_rate, -500, 500)
    check_range("pitch_rate", command.pitch_rate, -500, 500)


def check_voice(voice: str, voices: Sequence[VoiceInfo]) -> str:
    """Return ``voice`` if the engine knows it, else 40000003 ``Invalid voice name``."""
    if not any(info.name == voice for info in voices):
        raise TaskError(
            Status.PARAMETER_INVALID,
            Status.PARAMETER_INVALID.text.format(f"Invalid voice name '{voice}'!"),
        )
    return voice


def tts_options(command: StartSynthesis, voice: str) -> TtsOptions:
    """The engine options for a validated StartSynthesis."""
    return TtsOptions(voice=voice, speed=speech_rate_to_speed(command.speech_rate))


_PROTOCOL_VOICE = StartSynthesis().voice


def choose_voice(command: StartSynthesis, project: Project) -> str:
    """The voice to use: the payload's, else the project's default.

    ``StartSynthesis.voice`` defaults to ``xiaoyun`` in the protocol layer, so "no voice
    named" and "xiaoyun named" look the same; the project's voice wins only for a missing
    or empty name or that default (the official SDKs always send a voice anyway).
    """
    voice = (command.voice or "").strip()
    if not voice or voice == _PROTOCOL_VOICE:
        return project.voice or _PROTOCOL_VOICE
    return voice
