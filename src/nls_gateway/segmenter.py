"""Streaming sentence segmentation over a VAD: where each sentence begins and ends.

This module owns the endpointing rules the SpeechRecognizer and SpeechTranscriber task
handlers share: NLS ``max_sentence_silence`` (pause that ends a sentence),
``speech_noise_threshold`` (how readily audio counts as speech), a forced split of
over-long sentences at a short pause, a minimum speech duration so clicks do not open a
sentence, pre-roll so word onsets are not cut, and the SpeechRecognizer's
``max_start_silence`` / ``max_end_silence`` timeouts. It keeps the audio of the sentence
in progress (one append-only :class:`SampleBuffer`; events and partials get views of it,
never copies) so a handler can run partial decodes on it.

Theory of operation: every VAD frame (32 ms for Silero) moves a three-state machine.
``idle`` → a speech frame opens a *candidate*; the candidate becomes a sentence
(``SpeechStarted``) once it holds ``min_speech_ms`` of speech, or is dropped after a pause.
In a *sentence*, frames above ``threshold - 0.15`` keep it alive (hysteresis, as Silero's
own endpointer does); ``max_sentence_silence_ms`` of silence ends it (``SpeechEnded``);
reaching ``max_sentence_ms`` splits it at the longest pause of its second half.
With ``pause_ms`` set, a pause of that length inside a sentence reports ``PauseStarted``
(with the audio up to the speech end plus post-roll, so a handler can start the final
decode early) and speech after it reports ``PauseEnded``; ``speech_end_ms`` on both
``PauseStarted`` and ``SpeechEnded`` lets a handler match the two.

Pure logic: no asyncio, no threads, no I/O; the caller feeds audio and reads events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nls_gateway.engines.base import Float32Array, VadStream

__all__ = [
    "EndSilenceTimeout",
    "PauseEnded",
    "PauseStarted",
    "SampleBuffer",
    "Segmenter",
    "SegmenterConfig",
    "SegmenterEvent",
    "SpeechEnded",
    "SpeechStarted",
    "StartSilenceTimeout",
    "threshold_for",
]

_HYSTERESIS = 0.15
_MIN_PAUSE_MS = 90
"""A pause shorter than this is not a split point for over-long sentences."""


class SampleBuffer:
    """Append-only float32 audio addressed by stream sample index; hands out views.

    Appends write past the end and never move or overwrite samples already written, so a
    view stays valid however the buffer grows (a decode in another thread may hold one).
    :meth:`trim` forgets the head; its memory is reclaimed at the next growth, which copies
    only the kept samples into a new array twice their size (amortised O(1) per sample,
    instead of a copy of the open sentence per frame).
    """

    def __init__(self, capacity: int = 16000) -> None:
        self._data: Float32Array = np.empty(capacity, dtype=np.float32)
        self._offset = 0  # stream index of self._data[0]
        self.start = 0
        """First stream sample still kept."""
        self.end = 0
        """Samples appended so far (the stream index after the last one)."""

    def append(self, samples: Float32Array) -> None:
        """Append ``samples`` at ``end``."""
        n = samples.size
        if self.end + n - self._offset > self._data.size:
            kept = self.end - self.start
            grown = np.empty(max(2 * (kept + n), 16000), dtype=np.float32)
            grown[:kept] = self._data[self.start - self._offset : self.end - self._offset]
            self._data, self._offset = grown, self.start
        at = self.end - self._offset
        self._data[at : at + n] = samples
        self.end += n

    def trim(self, keep_from: int) -> None:
        """Forget the samples before stream index ``keep_from``."""
        self.start = max(self.start, min(keep_from, self.end))

    def view(self, begin: int, end: int) -> Float32Array:
        """Samples ``begin…end`` (clipped to what is kept), without a copy."""
        begin, end = max(begin, self.start), min(end, self.end)
        return self._data[begin - self._offset : max(begin, end) - self._offset]


def threshold_for(speech_noise_threshold: float) -> float:
    """Map NLS ``speech_noise_threshold`` (-1…1) onto a VAD probability threshold.

    -1 makes almost anything speech (0.1), 0 is Silero's usual 0.5, +1 demands clear
    speech (0.9).
    """
    value = max(-1.0, min(1.0, float(speech_noise_threshold)))
    return 0.5 + 0.4 * value


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    """Endpointing parameters, in NLS units (ms) where NLS has them."""

    max_sentence_silence_ms: int = 800
    """Silence that ends a sentence (NLS range 200–6000)."""
    speech_noise_threshold: float = 0.0
    """NLS -1…1; see ``threshold_for``."""
    max_sentence_ms: int = 60000
    """A sentence is split once it is this long."""
    min_speech_ms: int = 200
    """Speech needed before a sentence is reported (filters clicks and coughs)."""
    pre_roll_ms: int = 300
    """Audio kept before the first speech frame, so onsets are not cut."""
    post_roll_ms: int = 300
    """Audio kept after the last speech frame: a final syllable's decay, and a sentence end
    (``SentenceEnd.time``) near where a listener hears it end: with 200 ms the ends on
    zh_dev_long_01 came up to 332 ms before its segments' ends, with 300 ms within 232 ms;
    the same CER (benchmarks/asr_accuracy.py), 400 ms was worse."""
    max_start_silence_ms: int | None = None
    """Report ``StartSilenceTimeout`` when no speech starts within this time."""
    max_end_silence_ms: int | None = None
    """Report ``EndSilenceTimeout`` after this much silence following speech."""
    pause_ms: int | None = None
    """Report ``PauseStarted`` once a pause inside a sentence is this long (None: never)."""

    def __post_init__(self) -> None:
        if not 200 <= self.max_sentence_silence_ms <= 6000:
            raise ValueError("max_sentence_silence_ms must be within 200..6000")
        if self.max_sentence_ms < 1000:
            raise ValueError("max_sentence_ms must be at least 1000")
        if min(self.min_speech_ms, self.pre_roll_ms, self.post_roll_ms) < 0:
            raise ValueError("durations must not be negative")


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A sentence began ``begin_ms`` after the start of the stream."""

    begin_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """A sentence ended; ``audio`` covers ``begin_ms``…``end_ms`` of the stream."""

    begin_ms: int
    end_ms: int
    audio: Float32Array
    forced: bool = False
    """True when the sentence was split for length, not ended by a pause."""
    speech_end_ms: int | None = None
    """End of the last speech frame (``end_ms`` adds post-roll); None for a forced split."""


@dataclass(frozen=True, slots=True)
class PauseStarted:
    """The open sentence paused for ``pause_ms``: its speech so far ended at ``speech_end_ms``.

    ``audio`` covers ``begin_ms``…``end_ms`` (speech end plus up to ``post_roll_ms``); when
    the sentence ends without more speech its ``SpeechEnded`` has the same
    ``speech_end_ms`` (and, once the pause reached the post-roll, the same audio).
    """

    begin_ms: int
    speech_end_ms: int
    end_ms: int
    audio: Float32Array


@dataclass(frozen=True, slots=True)
class PauseEnded:
    """Speech resumed at ``speech_ms`` after a reported ``PauseStarted``."""

    speech_ms: int


@dataclass(frozen=True, slots=True)
class StartSilenceTimeout:
    """No speech within ``max_start_silence_ms`` of the stream start."""

    elapsed_ms: int


@dataclass(frozen=True, slots=True)
class EndSilenceTimeout:
    """``max_end_silence_ms`` of silence followed the last speech."""

    last_speech_ms: int


SegmenterEvent = (
    SpeechStarted
    | SpeechEnded
    | PauseStarted
    | PauseEnded
    | StartSilenceTimeout
    | EndSilenceTimeout
)


class Segmenter:
    """One task's segmenter: feed audio with ``accept_waveform``, read the events back."""

    def __init__(
        self,
        vad: VadStream,
        *,
        config: SegmenterConfig | None = None,
        sample_rate: int = 16000,
        frame_samples: int = 512,
        retain: bool = False,
    ) -> None:
        """``retain`` keeps all audio from the first sentence on (the SpeechRecognizer's
        result spans every sentence); otherwise only the open sentence and the pre-roll."""
        self._vad = vad
        self.config = config or SegmenterConfig()
        self._sr = sample_rate
        self._frame = frame_samples
        self._threshold = threshold_for(self.config.speech_noise_threshold)
        self.audio = SampleBuffer()
        """The stream's audio (``audio.end`` = samples fed so far)."""
        self._retain = retain
        self._retained = False  # retain: a sentence began, trimming stopped
        self._frames = 0  # VAD frames decided so far
        self._state = "idle"
        self._begin = 0  # sample index where the candidate / sentence begins
        self._floor = 0  # a new sentence never begins before the previous one ended
        self._speech_samples = 0
        self._last_speech_end: int | None = None
        self._pause_start: int | None = None
        self._pauses: list[tuple[int, int]] = []
        self._start_reported = False
        self._end_reported = False
        self._pause_reported = False

    # ------------------------------------------------------------------------ public

    @property
    def in_speech(self) -> bool:
        """True while a reported sentence is open."""
        return self._state == "speech"

    @property
    def position_ms(self) -> int:
        """How much audio has been fed, in ms."""
        return self._ms(self.audio.end)

    @property
    def speech_end(self) -> int | None:
        """Stream sample where the last speech frame ended (None before any speech)."""
        return self._last_speech_end

    @property
    def sentence_begin_ms(self) -> int | None:
        """Begin of the open sentence, or None."""
        return self._ms(self._begin) if self.in_speech else None

    def current_audio(self) -> Float32Array:
        """Audio of the sentence in progress (empty when none), a view for partial decodes."""
        if not self.in_speech:
            return self.audio.view(0, 0)
        return self.audio.view(self._begin, self.audio.end)

    def accept_waveform(self, samples: Float32Array) -> list[SegmenterEvent]:
        """Feed float32 samples at the configured rate; return the events they caused."""
        data = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.audio.append(data)
        events: list[SegmenterEvent] = []
        # One VAD frame at a time: a sentence end resets the VAD's state (see _end), and
        # that must apply from the very next frame, however the client sized its chunks.
        for offset in range(0, data.size, self._frame):
            for prob in self._vad.accept_waveform(data[offset : offset + self._frame]):
                events += self._on_frame(float(prob))
        self._trim()
        return events

    def flush(self) -> list[SegmenterEvent]:
        """End of input: close the open sentence (a candidate that was too short is dropped)."""
        events: list[SegmenterEvent] = []
        if self._state == "speech":
            last = self._last_speech_end or self.audio.end
            end = min(last + self._samples(self.config.post_roll_ms), self.audio.end)
            events.append(self._end(end, speech_end=last))
        self._state = "idle"
        return events

    # ------------------------------------------------------------------------ frames

    def _on_frame(self, prob: float) -> list[SegmenterEvent]:
        start = self._frames * self._frame
        end = start + self._frame
        self._frames += 1
        cfg = self.config
        events: list[SegmenterEvent] = []
        keep = self._threshold - _HYSTERESIS if self._state == "speech" else self._threshold
        speech = prob >= keep
        if speech:
            if self._pause_reported and self._state == "speech":
                events.append(PauseEnded(self._ms(start)))
            self._pause_reported = False
            self._last_speech_end = end
            self._end_reported = False
            if self._pause_start is not None and end - self._pause_start >= self._samples(
                _MIN_PAUSE_MS
            ):
                self._pauses.append((self._pause_start, start))
            self._pause_start = None
        elif self._pause_start is None:
            self._pause_start = start

        if self._state == "idle":
            if speech:
                self._state, self._begin, self._speech_samples = "candidate", start, self._frame
            elif (
                cfg.max_start_silence_ms is not None
                and not self._start_reported
                and self._last_speech_end is None
                and end >= self._samples(cfg.max_start_silence_ms)
            ):
                self._start_reported = True
                events.append(StartSilenceTimeout(self._ms(end)))
        elif self._state == "candidate":
            if speech:
                self._speech_samples += self._frame
                if self._speech_samples >= self._samples(cfg.min_speech_ms):
                    pre = self._samples(cfg.pre_roll_ms)
                    self._begin = max(self._floor, self._begin - pre, self.audio.start)
                    self._state, self._pauses = "speech", []
                    events.append(SpeechStarted(self._ms(self._begin)))
            elif end - (self._last_speech_end or 0) >= self._samples(
                min(cfg.max_sentence_silence_ms, 300)
            ):
                self._state = "idle"  # a blip, not speech
        else:
            silence = end - (self._last_speech_end or end)
            if silence >= self._samples(cfg.max_sentence_silence_ms):
                last = self._last_speech_end or end
                pad_end = min(last + self._samples(cfg.post_roll_ms), end)
                events.append(self._end(pad_end, speech_end=last))
            elif end - self._begin >= self._samples(cfg.max_sentence_ms):
                split = self._split_point(end)
                events.append(self._end(split, forced=True))
                self._state, self._begin, self._pauses = "speech", split, []
                self._pause_reported = False
                events.append(SpeechStarted(self._ms(split)))
            elif (
                cfg.pause_ms is not None
                and not speech
                and not self._pause_reported
                and self._last_speech_end is not None
                and silence >= self._samples(cfg.pause_ms)
            ):
                self._pause_reported = True
                last = self._last_speech_end
                pad_end = min(last + self._samples(cfg.post_roll_ms), end)
                audio = self.audio.view(self._begin, pad_end)
                events.append(
                    PauseStarted(self._ms(self._begin), self._ms(last), self._ms(pad_end), audio)
                )
        if (
            cfg.max_end_silence_ms is not None
            and not self._end_reported
            and self._last_speech_end is not None
            and self._state != "candidate"
            and end - self._last_speech_end >= self._samples(cfg.max_end_silence_ms)
        ):
            self._end_reported = True
            events.append(EndSilenceTimeout(self._ms(self._last_speech_end)))
        return events

    def _split_point(self, end: int) -> int:
        """Middle of the longest pause in the sentence's second half, else ``end``."""
        half = self._begin + (end - self._begin) // 2
        pauses = [(b - a, (a + b) // 2) for a, b in self._pauses if (a + b) // 2 >= half]
        if self._pause_start is not None and self._pause_start >= half:
            pauses.append((end - self._pause_start, (self._pause_start + end) // 2))
        return max(pauses)[1] if pauses else end

    def _end(self, end: int, *, forced: bool = False, speech_end: int | None = None) -> SpeechEnded:
        audio = self.audio.view(self._begin, end)
        speech_end_ms = None if speech_end is None else self._ms(speech_end)
        event = SpeechEnded(self._ms(self._begin), self._ms(end), audio, forced, speech_end_ms)
        self._state, self._floor, self._pause_reported = "idle", end, False
        if not forced:
            # A fresh VAD state for the next sentence: Silero's recurrent state can stay
            # low after one speaker and miss the next (see SileroVadStream.reset).
            reset = getattr(self._vad, "reset", None)
            if callable(reset):
                reset()
        return event

    def _trim(self) -> None:
        # Outside a sentence only the pre-roll is needed; drop the rest.
        if self._retain and (self._retained or self._state == "speech"):
            self._retained = True
            return
        if self._state == "idle":
            keep_from = self._frames * self._frame - self._samples(self.config.pre_roll_ms)
        else:
            keep_from = self._begin - self._samples(self.config.pre_roll_ms)
        self.audio.trim(keep_from)

    def _samples(self, ms: int) -> int:
        return ms * self._sr // 1000

    def _ms(self, samples: int) -> int:
        return samples * 1000 // self._sr
