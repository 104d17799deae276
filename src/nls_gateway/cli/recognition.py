"""``nls recognize`` and ``nls transcribe``: the recognition commands (``nls synthesize``
is :mod:`.synthesis`).

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
import sys
from pathlib import Path
from typing import Any

from nls.asyncio import (
    AsyncSession,
    AsyncSpeechRecognizer,
    AsyncSpeechTranscriber,
)
from nls.exception import NlsError
from nls.protocol import Event, SentenceBegin, SentenceEnd, TranscriptionResultChanged
from nls_gateway.cli import audio_files
from nls_gateway.cli.display import Display
from nls_gateway.cli.errors import UsageError, raise_consumer_error
from nls_gateway.cli.output import OUTPUT_FORMATS, SentenceWriter, recognition_json
from nls_gateway.cli.target import Target, add_target_args, open_target

__all__ = ["MAX_RECOGNITION_S", "register", "run_transcription"]

MAX_RECOGNITION_S = 60.0
"""SpeechRecognizer takes at most 60 s of audio per task (protocol.md §4)."""

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``recognize`` and ``transcribe`` to the ``nls`` parser."""
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
            raise_consumer_error(consumer, exc)
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
            raise_consumer_error(consumer, exc)
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


def _session_done(session: AsyncSession) -> bool:
    return session.completed is not None and session.completed.done()
