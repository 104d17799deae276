"""``nls recognize``, ``nls transcribe`` and ``nls synthesize``: the speech commands.

Each command decodes or reads its input, resolves where to connect (``target.py``: the
embedded gateway or ``--url``), and drives one SDK session per task through
``nls.asyncio``, exactly as an application would. Results are written as they arrive
(``display.py``, ``output.py``); a failed task raises the SDK's exception, which
``nls_gateway.cli.main`` turns into one error line and exit code 1.

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

from nls.asyncio import (
    AsyncSession,
    AsyncSpeechRecognizer,
    AsyncSpeechSynthesizer,
    AsyncSpeechTranscriber,
    AsyncStreamInputSynthesizer,
)
from nls.exception import NlsError
from nls.protocol import Event, SentenceBegin, SentenceEnd, TranscriptionResultChanged
from nls_gateway.cli import audio_files
from nls_gateway.cli.display import Display
from nls_gateway.cli.errors import UsageError
from nls_gateway.cli.output import OUTPUT_FORMATS, SentenceWriter, recognition_json
from nls_gateway.cli.target import Target, add_target_args, open_target

__all__ = ["MAX_RECOGNITION_S", "register", "run_transcription"]

MAX_RECOGNITION_S = 60.0
"""SpeechRecognizer takes at most 60 s of audio per task (protocol.md §4)."""
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

_RECOGNIZE_EXAMPLES = """examples:
  nls recognize hello.wav                      # embedded gateway, prints the text
  nls recognize a.mp3 b.m4a c.flac             # one line per file
  nls recognize --output json hello.wav        # every event of the task as JSON
  nls recognize --language en speech.ogg
  nls recognize --url ws://127.0.0.1:8765/ws/v1 --token T --appkey K hello.wav
"""

_TRANSCRIBE_EXAMPLES = """examples:
  nls transcribe meeting.m4a                   # sentences stream out as they finish
  nls transcribe talk.mp3 --output srt > talk.srt
  nls transcribe lecture.wav --output vtt > lecture.vtt
  nls transcribe --output json call.wav | jq .header.name
  arecord -q -f S16_LE -r 16000 -c 1 | nls transcribe -     # raw PCM from stdin
  nls transcribe --url wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1 \\
      --akid $ALIYUN_AK_ID --aksecret $ALIYUN_AK_SECRET --appkey K talk.wav
"""

_SYNTHESIZE_EXAMPLES = """examples:
  nls synthesize "今天天气不错。" -o hello.wav
  nls synthesize -f story.txt -o story.mp3 --voice aixia --speech-rate 100
  nls synthesize "Hello there." --voice abby --sample-rate 24000 -o hello.pcm
  nls synthesize "你好" --play                  # needs an audio player and device
  some-llm | nls synthesize --stream -o reply.wav   # text read from stdin as it arrives
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``recognize``, ``transcribe`` and ``synthesize`` to the ``nls`` parser."""
    fmt = argparse.RawDescriptionHelpFormatter

    rec = sub.add_parser(
        "recognize",
        help="one-sentence recognition of short files (≤ 60 s each)",
        description="Recognise one sentence per file (SpeechRecognizer) and print its text, "
        "one line per file. Any audio format; longer audio: use `nls transcribe`.",
        epilog=_RECOGNIZE_EXAMPLES,
        formatter_class=fmt,
    )
    rec.add_argument("files", nargs="+", metavar="FILE", help="audio files (any format)")
    rec.add_argument(
        "--output", choices=("text", "json"), default="text", help="text (default) or json"
    )
    _add_asr_args(rec)
    add_target_args(rec, pacing=True)
    rec.set_defaults(func=_cmd_recognize)

    tr = sub.add_parser(
        "transcribe",
        help="real-time transcription of a file or stdin",
        description="Transcribe a recording or a live stream (SpeechTranscriber). Sentences "
        "are written as they finish; on a terminal the sentence in progress is shown and "
        "updated in place, and files longer than a few seconds get a progress bar.",
        epilog=_TRANSCRIBE_EXAMPLES,
        formatter_class=fmt,
    )
    tr.add_argument(
        "file",
        metavar="FILE|-",
        help="audio file (any format), or - for stdin (raw s16le mono PCM, or a WAV/MP3/"
        "FLAC/Ogg stream)",
    )
    tr.add_argument("--output", choices=OUTPUT_FORMATS, default="text", help="default text")
    tr.add_argument(
        "--raw-rate",
        type=int,
        metavar="HZ",
        help="the input is headerless s16le mono PCM at this rate (default for stdin: 16000)",
    )
    tr.add_argument(
        "--max-sentence-silence",
        type=int,
        metavar="MS",
        help="silence that ends a sentence, 200–6000 ms (server default 800)",
    )
    _add_asr_args(tr)
    add_target_args(tr, pacing=True)
    tr.set_defaults(func=_cmd_transcribe)

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


async def run_transcription(
    target: Target,
    source: audio_files.AudioSource,
    *,
    writer: SentenceWriter,
    display: Display,
    realtime: bool,
    params: dict[str, Any],
) -> None:
    """Stream ``source`` to a SpeechTranscriber task; write results as they arrive.

    Raises:
        TaskFailedError: the server failed the task (or the connection broke).
        ConnectionUnavailable: the handshake was refused (bad token: 403).
    """
    display.write(writer.header())
    async with AsyncSpeechTranscriber(**target.session_kwargs(), **params) as st:

        async def consume() -> None:
            async for event in st.events():
                if isinstance(event, TranscriptionResultChanged):
                    display.partial(event.result)
                if isinstance(event, (SentenceBegin, TranscriptionResultChanged, SentenceEnd)):
                    # The bar follows the server's position in the audio, not the upload:
                    # sent at full speed, the upload is done long before recognition is.
                    display.advance(event.time / 1000)
                if isinstance(event, Event):
                    display.write(writer.event(event))

        consumer = asyncio.create_task(consume())
        sent = 0.0

        def progress(seconds: float) -> None:
            nonlocal sent
            sent = seconds

        try:
            frames = audio_files.frames(source.chunks, realtime=realtime, on_frame=progress)
            async for frame in frames:
                if consumer.done():
                    break  # the task ended early (failed): its error is raised below
                await st.send_audio(frame)
            if not consumer.done():
                # Sent at full speed, the engine may still have most of the audio to decode.
                await st.finish(timeout=max(60.0, sent))
            await consumer
            display.advance(sent)
        except NlsError as exc:
            _raise_consumer_error(consumer, exc)
            raise
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, NlsError):
                await consumer


# --------------------------------------------------------------------------- commands


def _add_asr_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recognition")
    group.add_argument(
        "--no-punctuation",
        dest="punctuation",
        action="store_false",
        help="do not ask for punctuation",
    )
    group.add_argument(
        "--no-itn",
        dest="itn",
        action="store_false",
        help="no inverse text normalization (digits stay words)",
    )
    group.add_argument(
        "--intermediate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask for partial results while a sentence is spoken (default: only when "
        "transcribing to a terminal, which shows them in place; each costs a decode)",
    )


def _asr_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "format": "pcm",
        "sample_rate": audio_files.SAMPLE_RATE,
        "enable_punctuation_prediction": args.punctuation,
        "enable_inverse_text_normalization": args.itn,
    }


def _cmd_recognize(args: argparse.Namespace) -> int:
    # Decode everything first: a file that is missing or too long fails before any engine
    # is loaded.
    clips: list[tuple[str, bytes]] = []
    for path in args.files:
        pcm = audio_files.decode_all(path)
        seconds = len(pcm) / audio_files.BYTES_PER_SECOND
        if seconds > MAX_RECOGNITION_S:
            raise UsageError(
                f"{path} is {seconds:.1f} s long; one-sentence recognition takes at most "
                f"{MAX_RECOGNITION_S:.0f} s. Use `nls transcribe {path}` instead."
            )
        clips.append((path, pcm))
    with open_target(args, need=("asr", "vad")) as target:
        realtime = target.realtime(args.realtime)
        for path, pcm in clips:
            params = _asr_params(args)
            params["enable_intermediate_result"] = bool(args.intermediate)
            text, events = asyncio.run(_recognize(target, pcm, realtime=realtime, params=params))
            line = recognition_json(path, text, events) if args.output == "json" else text + "\n"
            sys.stdout.write(line)
            sys.stdout.flush()
    return 0


async def _recognize(
    target: Target, pcm: bytes, *, realtime: bool, params: dict[str, Any]
) -> tuple[str, list[Event]]:
    events: list[Event] = []
    async with AsyncSpeechRecognizer(**target.session_kwargs(), **params) as sr:

        async def consume() -> None:
            async for event in sr.events():
                if isinstance(event, Event):
                    events.append(event)

        consumer = asyncio.create_task(consume())
        try:
            async for frame in audio_files.frames(iter([pcm]), realtime=realtime):
                if _session_done(sr):
                    break  # the server ended the sentence early (or failed the task)
                await sr.send_audio(frame)
            final = await sr.finish(timeout=max(30.0, len(pcm) / audio_files.BYTES_PER_SECOND))
            await consumer
        except NlsError as exc:
            _raise_consumer_error(consumer, exc)
            raise
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, NlsError):
                await consumer
    return final.result, events


def _cmd_transcribe(args: argparse.Namespace) -> int:
    source = audio_files.open_audio(args.file, raw_rate=args.raw_rate)
    with open_target(args, need=("asr", "vad")) as target:
        writer = SentenceWriter(args.output)
        with Display(sys.stdout, total=source.duration, name=Path(source.name).name) as display:
            params = _asr_params(args)
            partials = display.live_text if args.intermediate is None else args.intermediate
            params["enable_intermediate_result"] = partials
            if args.max_sentence_silence is not None:
                params["max_sentence_silence"] = args.max_sentence_silence
            asyncio.run(
                run_transcription(
                    target,
                    source,
                    writer=writer,
                    display=display,
                    realtime=target.realtime(args.realtime),
                    params=params,
                )
            )
    return 0


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
                _raise_consumer_error(consumer, exc)
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


def _raise_consumer_error(consumer: asyncio.Task[None], exc: NlsError) -> None:
    """Prefer the event reader's error (TaskFailed with its status) to a follow-on one."""
    if consumer.done() and not consumer.cancelled():
        error = consumer.exception()
        if isinstance(error, NlsError) and error is not exc:
            raise error from exc


def _session_done(session: AsyncSession) -> bool:
    return session.completed is not None and session.completed.done()
