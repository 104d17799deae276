"""FlowingSpeechSynthesizer (stream-input TTS, protocol.md §7): text in pieces → audio.

This module owns the FlowingSpeechSynthesizer task: ``StartSynthesis`` (voice, format,
rates, ``volume`` or the Python SDK's ``volumn``) is validated and answered with
``SynthesisStarted {session_id}``; ``RunSynthesis`` texts accumulate in a
:class:`~nls_gateway.tasks.text.SentenceAssembler`; each complete sentence (cut at
``。！？；.!?`` or a newline; ``FlushText`` and ``StopSynthesis`` cut what is left) is
synthesized in order by one background worker, which sends ``SentenceBegin {index}``, the
sentence's binary audio, ``SentenceSynthesis {subtitles}`` with each chunk's new
subtitles (``enable_subtitle``) and ``SentenceEnd {subtitles}`` for the whole sentence.
``StopSynthesis`` waits for the rest, then ``SynthesisCompleted``. Total text over
``limits.max_long_tts_chars`` fails with 40010003; the 10 s idle rule is the connection's.

Subtitle times are ms from the start of the task's audio; indexes are character offsets
within the sentence. It must not touch the socket or call an engine other than through
``ctx.runner``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from nls.protocol import Command, FlushText, RunSynthesis, StartSynthesis
from nls.protocol.constants import Status
from nls_gateway.tasks import params
from nls_gateway.tasks.base import TaskContext, TaskError, TaskHandler
from nls_gateway.tasks.synthesizer import ChunkPuller, Voice, open_voice, send_encoded, subtitle
from nls_gateway.tasks.text import SentenceAssembler

__all__ = ["FlowingSynthesizer"]

logger = logging.getLogger(__name__)


class FlowingSynthesizer(TaskHandler):
    """The FlowingSpeechSynthesizer task (§7)."""

    namespaces = ("FlowingSpeechSynthesizer",)

    _voice: Voice

    def __init__(self, ctx: TaskContext, command: Command) -> None:
        super().__init__(ctx, command)
        self._assembler = SentenceAssembler()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._chars = 0
        self._index = 0
        self._failed = False
        self._subtitles = False

    async def on_start(self) -> None:
        """Validate the audio parameters and voice; answer ``SynthesisStarted``."""
        cmd = self.command
        if not isinstance(cmd, StartSynthesis):
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(f"Invalid directive '{cmd.name}'!"),
            )
        self._voice = await open_voice(self.ctx, cmd)
        self._subtitles = bool(cmd.enable_subtitle)
        if cmd.text:
            self._add(cmd.text)  # C++ "single round" mode sends the text up front
        self._worker = asyncio.ensure_future(self._work())
        # §7.2 SynthesisStarted {session_id}: the client's (payload) or a new one
        session_id = cmd.session_id or uuid.uuid4().hex
        await self.ctx.send_event("SynthesisStarted", {"session_id": session_id})

    async def on_command(self, command: Command) -> None:
        """``RunSynthesis {text}`` adds text; ``FlushText`` synthesizes what is pending."""
        if self._failed:
            return
        if isinstance(command, RunSynthesis):
            self._add(command.text)
        elif isinstance(command, FlushText):
            self._push(self._assembler.flush())
        else:
            await super().on_command(command)

    async def on_stop(self) -> None:
        """``StopSynthesis``: synthesize the rest, then ``SynthesisCompleted``."""
        if self._failed or self.done:
            return
        self._push(self._assembler.flush())
        self._queue.put_nowait(None)
        if self._worker is not None:
            await self._worker
        if self._failed:
            return
        await send_encoded(self.ctx, await self.ctx.runner.run(self._voice.encoder.finish))
        await self.ctx.send_event("SynthesisCompleted")
        self.done = True

    async def close(self) -> None:
        """Cancel the background synthesis."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            with contextlib.suppress(BaseException):
                await self._worker

    # ------------------------------------------------------------------ internals

    def _add(self, text: str) -> None:
        self._chars += len(text)
        limit = self.ctx.limits.max_long_tts_chars
        if self._chars > limit:
            # 40010003: over the session's text budget (§2.5: ≤ 100 000 per session)
            raise TaskError(
                Status.DIRECTIVE_INVALID,
                Status.DIRECTIVE_INVALID.text.format(
                    f"Text too long, a session takes at most {limit} characters!"
                ),
            )
        self._push(self._assembler.add(text))

    def _push(self, sentences: list[str]) -> None:
        for sentence in sentences:
            if params.has_speakable_text(sentence):
                self._queue.put_nowait(sentence)

    async def _work(self) -> None:
        try:
            while (sentence := await self._queue.get()) is not None:
                await self._sentence(sentence)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("! flowing synthesis failed")
            self._failed = True
            await self.ctx.fail(
                Status.TTS_SERVER_ERROR, Status.TTS_SERVER_ERROR.text.format(f"{exc}")
            )

    async def _sentence(self, text: str) -> None:
        voice, runner = self._voice, self.ctx.runner
        try:
            chunks = await runner.run(voice.tts.synthesize, text, voice.options)
        except ValueError:
            return  # nothing the engine can speak (e.g. only symbols): no sentence
        self._index += 1
        # §7.2 SentenceBegin {index}: from 1 as in the documentation
        await self.ctx.send_event("SentenceBegin", {"index": self._index})
        whole: list[dict[str, Any]] = []
        puller = ChunkPuller(runner, chunks)
        try:
            await self._send_chunks(puller, whole)
        finally:
            await puller.aclose()
        payload: dict[str, Any] = {}
        if self._subtitles:
            if whole:
                head = subtitle(
                    text,
                    0,
                    len(text),
                    whole[0]["begin_time"],
                    whole[-1]["end_time"],
                    sentence=True,
                )
                whole.insert(0, _entry(head))
            payload["subtitles"] = whole
        await self.ctx.send_event("SentenceEnd", payload)

    async def _send_chunks(self, puller: ChunkPuller, whole: list[dict[str, Any]]) -> None:
        """Send one sentence's audio chunk by chunk, with ``SentenceSynthesis`` subtitles."""
        voice, runner = self._voice, self.ctx.runner
        while (chunk := await puller.next()) is not None:
            base = voice.ms
            await send_encoded(self.ctx, await runner.run(voice.encoder.feed, chunk.audio))
            voice.samples += chunk.audio.size
            if not self._subtitles:
                continue
            new = [
                _entry(
                    subtitle(
                        s.text,
                        s.begin_index,
                        s.end_index,
                        base + s.begin_time,
                        base + s.end_time,
                        sentence=False,
                    )
                )
                for s in chunk.subtitles
            ]
            whole += new
            if new:
                # §7.2 SentenceSynthesis: the subtitles new in this piece of audio
                await self.ctx.send_event("SentenceSynthesis", {"subtitles": new})


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    """§7.2 items carry ``phoneme_list`` rather than MetaInfo's ``phoneme``."""
    item.pop("phoneme", None)
    item["phoneme_list"] = []
    return item
