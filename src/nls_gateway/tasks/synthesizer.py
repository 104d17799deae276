"""SpeechSynthesizer and SpeechLongSynthesizer (protocol.md §6): text → audio frames.

This module owns the two one-shot TTS namespaces: ``StartSynthesis`` carries the whole
text; there is no ``*Started`` event and no stop command. :class:`Synthesizer` validates
the request (text, length, voice, format, rates, volume, SSML), then synthesizes in a
background task: the engine's chunks are pulled through ``ctx.runner`` one chunk ahead
(:class:`ChunkPuller`: the next chunk is made while this one is encoded and sent, and
memory stays bounded for long text), encoded by
:class:`~nls_gateway.audio.output.AudioEncoder` and sent as binary frames of at most 64 KiB;
with ``enable_subtitle`` a ``MetaInfo`` event precedes each chunk's audio.
``SynthesisCompleted`` follows the last frame and the task is done. It also holds the
helpers the FlowingSpeechSynthesizer handler shares (:class:`Voice`, subtitles).

It must not touch the socket or call an engine other than through ``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nls.protocol import Command, StartSynthesis
from nls.protocol.constants import Status
from nls_gateway.audio.output import AudioEncoder, OutputFormat
from nls_gateway.engines.base import TtsChunk, TtsEngine, TtsOptions
from nls_gateway.tasks import params
from nls_gateway.tasks.base import Runner, TaskContext, TaskError, TaskHandler
from nls_gateway.tasks.text import Pause, Speech, parse, split_sentences

__all__ = ["ChunkPuller", "Synthesizer", "Voice", "open_voice", "subtitle"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Voice:
    """A validated synthesis setup: engine, options and the task's output encoder."""

    tts: TtsEngine
    options: TtsOptions
    encoder: AudioEncoder
    samples: int = 0
    """Engine-rate samples sent so far: the clock of subtitle times."""

    @property
    def ms(self) -> int:
        """Milliseconds of audio produced so far."""
        return self.samples * 1000 // self.tts.sample_rate


async def open_voice(ctx: TaskContext, cmd: StartSynthesis) -> Voice:
    """Validate a StartSynthesis' audio parameters and voice; build the encoder.

    Raises:
        TaskError: 40000003 bad format/rate/volume/prosody or unknown voice; 50000000
            when no TTS engine is configured.
    """
    params.check_tts_params(cmd)
    tts = ctx.engines.tts
    if tts is None:
        raise TaskError(
            Status.SERVER_ERROR, Status.SERVER_ERROR.text.format("No TTS engine configured!")
        )
    voice = params.choose_voice(cmd, ctx.project)
    params.check_voice(voice, await ctx.runner.run(tts.voices))
    fmt: OutputFormat = (
        "mp3" if cmd.format.lower() == "mp3" else ("wav" if cmd.format.lower() == "wav" else "pcm")
    )
    try:
        encoder = AudioEncoder(
            format=fmt,
            sample_rate=cmd.sample_rate,
            volume=cmd.volume,
            pitch_rate=cmd.pitch_rate,
            input_rate=tts.sample_rate,
        )
    except ValueError as exc:
        raise TaskError(
            Status.PARAMETER_INVALID, Status.PARAMETER_INVALID.text.format(f"{exc}!")
        ) from exc
    return Voice(tts, params.tts_options(cmd, voice), encoder)


def subtitle(
    text: str, begin_index: int, end_index: int, begin_time: int, end_time: int, *, sentence: bool
) -> dict[str, Any]:
    """One MetaInfo subtitle entry (§6.2: ``phoneme`` is the string ``"null"``)."""
    return {
        "text": text,
        "begin_time": begin_time,
        "end_time": end_time,
        "begin_index": begin_index,
        "end_index": end_index,
        "sentence": sentence,
        "phoneme": "null",
    }


async def send_encoded(ctx: TaskContext, data: bytes) -> None:
    """Send encoded audio, if the encoder gave any (the protocol core cuts it into binary
    frames of at most 64 KiB, Java's limit, §2.2/§6.2)."""
    if data:
        await ctx.send_audio(data)


class ChunkPuller:
    """Pulls an engine's chunks through the runner, making the next while this one is sent.

    The engine generator runs in the runner's threads; asking for chunk N+1 as soon as
    chunk N arrives lets synthesis overlap the encoding and sending of N instead of
    waiting for a round trip through the event loop. It stays one chunk ahead, so memory
    is bounded and a cancelled task leaves at most one chunk unused.
    """

    def __init__(self, runner: Runner, chunks: Iterator[TtsChunk]) -> None:
        self._runner = runner
        self._chunks = chunks
        self._ahead: asyncio.Future[TtsChunk | None] | None = None

    async def next(self) -> TtsChunk | None:
        """The next chunk, or None when the engine has finished."""
        ahead = self._ahead or asyncio.ensure_future(self._pull())
        self._ahead = None
        chunk = await ahead
        if chunk is not None:
            self._ahead = asyncio.ensure_future(self._pull())
        return chunk

    async def _pull(self) -> TtsChunk | None:
        return await self._runner.run(next, self._chunks, None)

    async def aclose(self) -> None:
        """Drop the chunk being made ahead (the task ended or failed)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and not ahead.done():
            ahead.cancel()
        if ahead is not None:
            with contextlib.suppress(BaseException):
                await ahead


class Synthesizer(TaskHandler):
    """SpeechSynthesizer (≤ ``limits.max_tts_chars``) and SpeechLongSynthesizer (§6)."""

    namespaces = ("SpeechSynthesizer", "SpeechLongSynthesizer")

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._task: asyncio.Task[None] | None = None
        self._first: Iterator[TtsChunk] | None = None

    async def on_start(self) -> None:
        """Validate everything that can fail before audio flows, then start synthesis."""
        cmd = self.command
        if not isinstance(cmd, StartSynthesis):
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(f"Invalid directive '{cmd.name}'!"),
            )
        self._cmd = cmd
        long = self.ctx.namespace == "SpeechLongSynthesizer"
        limit = self.ctx.limits.max_long_tts_chars if long else self.ctx.limits.max_tts_chars
        # 40010003 "No text specified!" / 41020001 "SSML text length should be less than 300."
        text = params.check_tts_text(cmd.text, limit=limit)
        self._text = text
        self._plan = parse(text)  # 41020001 Illegal ssml text
        speech = [p for p in self._plan if isinstance(p, Speech)]
        if not params.has_speakable_text("".join(p.text for p in speech)):
            raise TaskError(
                Status.TTS_CLIENT_ERROR,
                Status.TTS_CLIENT_ERROR.text.format("Text has nothing to speak!"),
            )
        self._voice = await open_voice(self.ctx, cmd)
        # Sentences (for MetaInfo) in the plain text that the pieces concatenate to.
        plain = "".join(p.text for p in speech)
        self._sentences = [b for b, _ in split_sentences(plain)]
        # Start the first piece now so engine errors are this task's TaskFailed.
        first = next(p for p in speech if params.has_speakable_text(p.text))
        self._first = await self._open(first)
        self._task = asyncio.ensure_future(self._synthesize())

    async def on_stop(self) -> None:
        """No stop command in these namespaces (§6): wait for the synthesis to end."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Cancel the background synthesis (the client left or the task failed)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    # ------------------------------------------------------------------ internals

    async def _open(self, piece: Speech) -> Iterator[TtsChunk]:
        voice = self._voice
        try:
            return await self.ctx.runner.run(voice.tts.synthesize, piece.text, voice.options)
        except KeyError as exc:
            raise TaskError(
                Status.PARAMETER_INVALID,
                Status.PARAMETER_INVALID.text.format(
                    f"Invalid voice name '{voice.options.voice}'!"
                ),
            ) from exc
        except ValueError as exc:
            raise TaskError(
                Status.TTS_CLIENT_ERROR, Status.TTS_CLIENT_ERROR.text.format(f"{exc}!")
            ) from exc

    async def _synthesize(self) -> None:
        try:
            await self._speak_all()
            await send_encoded(self.ctx, await self.ctx.runner.run(self._voice.encoder.finish))
            # §6.2 SynthesisCompleted: no payload, after all the audio
            await self.ctx.send_event("SynthesisCompleted")
            self.done = True
        except asyncio.CancelledError:
            raise
        except TaskError as exc:
            await self.ctx.fail(exc.status, exc.status_text)
        except Exception as exc:
            logger.exception("! synthesis failed")
            await self.ctx.fail(
                Status.TTS_SERVER_ERROR, Status.TTS_SERVER_ERROR.text.format(f"{exc}")
            )
        finally:
            self._close_first()

    async def _speak_all(self) -> None:
        voice, runner = self._voice, self.ctx.runner
        plain_at = 0  # where the current piece starts in the concatenated plain text
        meta = _Meta(self) if self._cmd.enable_subtitle else None
        for piece in self._plan:
            if isinstance(piece, Pause):
                silence = np.zeros(piece.ms * voice.tts.sample_rate // 1000, dtype=np.float32)
                await send_encoded(self.ctx, await runner.run(voice.encoder.feed, silence))
                voice.samples += silence.size
                continue
            if params.has_speakable_text(piece.text):
                chunks, self._first = self._first or await self._open(piece), None
                puller = ChunkPuller(runner, chunks)
                try:
                    while (chunk := await puller.next()) is not None:
                        if meta is not None:
                            await meta.send(piece, plain_at, chunk)
                        audio = await runner.run(voice.encoder.feed, chunk.audio)
                        await send_encoded(self.ctx, audio)
                        voice.samples += chunk.audio.size
                finally:
                    await puller.aclose()
            plain_at += len(piece.text)

    def _close_first(self) -> None:
        if self._first is not None:
            close = getattr(self._first, "close", None)
            if callable(close):
                close()
            self._first = None


class _Meta:
    """MetaInfo subtitles: cumulative within a sentence, restarting with each sentence."""

    def __init__(self, handler: Synthesizer) -> None:
        self._h = handler
        self._sentence = -1
        self._entries: list[dict[str, Any]] = []

    async def send(self, piece: Speech, plain_at: int, chunk: TtsChunk) -> None:
        starts = self._h._sentences
        base = self._h._voice.ms
        touched = False
        for sub in chunk.subtitles:
            if not 0 <= sub.begin_index < len(piece.index):
                continue
            number = bisect.bisect_right(starts, plain_at + sub.begin_index) - 1
            if number != self._sentence:
                if touched:
                    await self._flush()  # the chunk ran into the next sentence
                self._sentence, self._entries, touched = number, [], False
            begin = piece.index[sub.begin_index]
            end = piece.index[min(sub.end_index, len(piece.index)) - 1] + 1
            self._entries.append(
                subtitle(
                    sub.text, begin, end, base + sub.begin_time, base + sub.end_time, sentence=False
                )
            )
            touched = True
        if touched:
            await self._flush()

    async def _flush(self) -> None:
        chars = self._entries
        if not chars:
            return
        # §6.2: a sentence-level entry (sentence:true, text "") spanning the sentence so far
        head = subtitle(
            "",
            chars[0]["begin_index"],
            chars[-1]["end_index"],
            chars[0]["begin_time"],
            chars[-1]["end_time"],
            sentence=True,
        )
        await self._h.ctx.send_event("MetaInfo", {"subtitles": [head, *chars]})
