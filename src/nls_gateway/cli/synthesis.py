"""``nls synthesize``: text to speech into a file or the speakers.

The text comes from the argument, ``-f FILE`` or stdin; one SDK session per command
through ``nls.asyncio`` (SpeechSynthesizer; SpeechLongSynthesizer over ``LONG_TTS_CHARS``;
FlowingSpeechSynthesizer with ``--stream``, each line of stdin sent as it arrives), and
the audio is written as it comes back (``.wav``, ``.mp3`` or ``.pcm`` by the ``-o`` suffix)
or played when done.

It must not contain protocol logic: every message goes through the SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from nls.asyncio import AsyncSpeechSynthesizer, AsyncStreamInputSynthesizer
from nls.exception import NlsError
from nls_gateway.cli.errors import UsageError, raise_consumer_error
from nls_gateway.cli.target import Target, add_target_args, open_target

__all__ = ["LONG_TTS_CHARS", "register"]

LONG_TTS_CHARS = 300
"""Longer text goes to SpeechLongSynthesizer, as the SDK's ``synthesize`` helper does."""
_PLAYERS: tuple[tuple[str, ...], ...] = (
    ("ffplay", "-nodisp", "-autoexit", "-loglevel", "error"),
    ("paplay",),
    ("pw-play",),
    ("aplay", "-q"),
    ("afplay",),
)
_AUDIO_SUFFIXES = {".wav": "wav", ".mp3": "mp3", ".pcm": "pcm"}

_SYNTHESIZE_EXAMPLES = """examples:
  nls synthesize "今天天气不错。" -o hello.wav
  nls synthesize -f story.txt -o story.mp3 --voice aixia --speech-rate 100
  nls synthesize "Hello there." --voice abby --sample-rate 24000 -o hello.pcm
  nls synthesize "你好" --play                  # needs an audio player and device
  some-llm | nls synthesize --stream -o reply.wav   # text read from stdin as it arrives
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``synthesize`` to the ``nls`` parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    syn = sub.add_parser(
        "synthesize",
        help="text to speech into a .wav/.mp3/.pcm file",
        description="Synthesize speech (SpeechSynthesizer; SpeechLongSynthesizer over "
        f"{LONG_TTS_CHARS} characters; FlowingSpeechSynthesizer with --stream). The output "
        "format follows the -o suffix.",
        epilog=_SYNTHESIZE_EXAMPLES,
        formatter_class=fmt,
    )
    syn.add_argument("text", nargs="?", metavar="TEXT", help="text to speak (or -f / stdin)")
    syn.add_argument("-f", "--file", metavar="FILE", help="read the text from FILE (- = stdin)")
    syn.add_argument("-o", "--out", metavar="OUT", help="output file: .wav, .mp3 or .pcm")
    syn.add_argument("--voice", help="voice name (see `nls voices`)")
    syn.add_argument("--sample-rate", type=int, metavar="HZ", help="8000, 16000, 24000…")
    syn.add_argument("--speech-rate", type=int, metavar="N", help="-500..500 (0 = normal)")
    syn.add_argument("--volume", type=int, metavar="N", help="0..100 (default 50)")
    syn.add_argument("--pitch-rate", type=int, metavar="N", help="-500..500 (0 = normal)")
    syn.add_argument(
        "--stream",
        action="store_true",
        help="stream-input TTS: send the text piece by piece (each line of stdin as it "
        "arrives) and write audio as it comes back",
    )
    syn.add_argument("--play", action="store_true", help="play the audio when it is done")
    add_target_args(syn)
    syn.set_defaults(func=_cmd_synthesize)


def _cmd_synthesize(args: argparse.Namespace) -> int:
    if args.out is None and not args.play:
        raise UsageError("give -o OUT.wav|.mp3|.pcm, or --play")
    fmt = "wav"
    if args.out is not None:
        fmt = _AUDIO_SUFFIXES.get(Path(args.out).suffix.lower(), "")
        if not fmt:
            raise UsageError(f"{args.out}: the output must end in .wav, .mp3 or .pcm")
    player = _find_player() if args.play else None
    if args.play and player is None:
        names = ", ".join(p[0] for p in _PLAYERS)
        print(
            f"nls synthesize: --play: no audio player on this machine (looked for {names}); "
            "write a file with -o instead",
            file=sys.stderr,
        )
        return 1
    if args.text is not None and args.file is not None:
        raise UsageError("give the text or -f FILE, not both")
    params = {
        name: value
        for name, value in (
            ("voice", args.voice),
            ("sample_rate", args.sample_rate),
            ("speech_rate", args.speech_rate),
            ("volume", args.volume),
            ("pitch_rate", args.pitch_rate),
        )
        if value is not None
    }
    lines = _text_lines(args)
    out_path = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "nls-play.wav"
    with open_target(args, need=("tts",)) as target:
        if args.stream:
            rate = params.get("sample_rate", 24000)  # FlowingSpeechSynthesizer's default
            coro = _synthesize_stream(target, lines, out_path, fmt, rate, params)
        else:
            text = "".join(lines)
            if not text.strip():
                raise UsageError("no text to synthesize")
            rate = params.get("sample_rate", 16000)  # SpeechSynthesizer's default
            coro = _synthesize(target, text, out_path, fmt, rate, params)
        asyncio.run(coro)
    if player is not None:
        result = subprocess.run([*player, str(out_path)], check=False)
        if result.returncode != 0:
            print(f"nls synthesize: {player[0]} could not play the audio", file=sys.stderr)
            return 1
    return 0


async def _synthesize(
    target: Target, text: str, out: Path, fmt: str, rate: int, params: dict[str, Any]
) -> None:
    tts = AsyncSpeechSynthesizer(**target.session_kwargs(), long_tts=len(text) > LONG_TTS_CHARS)
    try:
        with _AudioSink(out, fmt, rate) as sink:
            # WAV is asked for as PCM: the streamed header's sizes are unknown (0xFFFFFFFF),
            # so the file's header is written here with the real sizes.
            wire = "mp3" if fmt == "mp3" else "pcm"
            async for chunk in tts.stream(text, format=wire, timeout=30, **params):
                sink.write(chunk)
    finally:
        await tts.close()


async def _synthesize_stream(
    target: Target,
    lines: Iterator[str],
    out: Path,
    fmt: str,
    rate: int,
    params: dict[str, Any],
) -> None:
    wire = "mp3" if fmt == "mp3" else "pcm"
    async with AsyncStreamInputSynthesizer(
        **target.session_kwargs(), format=wire, timeout=30, **params
    ) as tts:
        with _AudioSink(out, fmt, rate) as sink:

            async def consume() -> None:
                async for chunk in tts.audio():
                    sink.write(chunk)

            consumer = asyncio.create_task(consume())
            try:
                async for line in _athread(lines):
                    if consumer.done():
                        break
                    if line.strip():
                        await tts.send_text(line)
                await tts.finish(timeout=120)
                await consumer
            except NlsError as exc:
                raise_consumer_error(consumer, exc)
                raise
            finally:
                consumer.cancel()
                with contextlib.suppress(asyncio.CancelledError, NlsError):
                    await consumer


# ---------------------------------------------------------------------------- helpers


class _AudioSink:
    """Writes synthesized audio to a file as it arrives; a WAV header gets real sizes."""

    def __init__(self, path: Path, fmt: str, rate: int) -> None:
        self.path, self.fmt, self.rate = path, fmt, rate
        self._wav: wave.Wave_write | None = None
        self._raw: BinaryIO | None = None

    def __enter__(self) -> _AudioSink:
        if self.fmt == "wav":
            self._wav = wave.open(str(self.path), "wb")
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
        else:
            self._raw = self.path.open("wb")
        return self

    def write(self, chunk: bytes) -> None:
        if self._wav is not None:
            self._wav.writeframes(chunk)
        elif self._raw is not None:
            self._raw.write(chunk)

    def __exit__(self, *exc_info: object) -> None:
        if self._wav is not None:
            self._wav.close()
        if self._raw is not None:
            self._raw.close()


def _text_lines(args: argparse.Namespace) -> Iterator[str]:
    """The text to speak, line by line (stdin lines come as they are typed or piped)."""
    if args.text is not None:
        return iter([args.text])
    if args.file is not None and args.file != "-":
        try:
            return iter(Path(args.file).read_text(encoding="utf-8").splitlines(keepends=True))
        except OSError as exc:
            raise UsageError(f"{args.file}: {exc.strerror}") from None
    if args.file is None and sys.stdin.isatty() and not args.stream:
        raise UsageError("give TEXT, -f FILE, or pipe the text into stdin")
    return _stdin_lines(sys.stdin)


def _stdin_lines(stream: TextIO) -> Iterator[str]:
    # readline (not iteration) so each line is handed on as soon as it arrives.
    while line := stream.readline():
        yield line


async def _athread(items: Iterator[str]) -> AsyncIterator[str]:
    """Iterate a blocking iterator (stdin) in a thread, without blocking the loop."""
    while (item := await asyncio.to_thread(next, items, None)) is not None:
        yield item


def _find_player() -> tuple[str, ...] | None:
    for player in _PLAYERS:
        if shutil.which(player[0]):
            return player
    return None
