"""Output formatting for the speech commands: text, JSON, SRT and WebVTT (pure functions).

This module owns how results look on stdout: sentence lines, subtitle cues (SRT and
WebVTT, timed by the ``SentenceEnd`` events' ``begin_time`` and ``time``), JSON Lines of
events, and the one-line error message with its NLS status code. Each formatter turns one
event into the text to write at once, so sentences stream out as they finish.

It must not print, read files or touch the network: callers write what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from nls.exception import ConnectionUnavailable, TaskFailedError
from nls.protocol import Event, SentenceEnd

__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "SentenceWriter",
    "error_line",
    "event_json",
    "recognition_json",
    "srt_cue",
    "srt_timestamp",
    "vtt_cue",
    "vtt_timestamp",
]

OutputFormat = Literal["text", "json", "srt", "vtt"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("text", "json", "srt", "vtt")

VTT_HEADER = "WEBVTT\n\n"


def srt_timestamp(ms: int) -> str:
    """``HH:MM:SS,mmm`` for SRT (comma before the milliseconds)."""
    return _timestamp(ms, ",")


def vtt_timestamp(ms: int) -> str:
    """``HH:MM:SS.mmm`` for WebVTT (dot before the milliseconds)."""
    return _timestamp(ms, ".")


def srt_cue(index: int, begin_ms: int, end_ms: int, text: str) -> str:
    """One SRT cue, numbered from 1, with its trailing blank line."""
    return f"{index}\n{srt_timestamp(begin_ms)} --> {srt_timestamp(end_ms)}\n{text}\n\n"


def vtt_cue(begin_ms: int, end_ms: int, text: str) -> str:
    """One WebVTT cue with its trailing blank line (the file starts with ``WEBVTT``)."""
    return f"{vtt_timestamp(begin_ms)} --> {vtt_timestamp(end_ms)}\n{text}\n\n"


def event_json(event: Event) -> str:
    """The event's JSON message on one line (JSON Lines), as the server sent it."""
    return json.dumps(json.loads(event.raw), ensure_ascii=False, separators=(",", ":"))


def error_line(exc: BaseException) -> str:
    """One clear line for a failed command, with the NLS status code where there is one.

    Examples: ``error 40000001: Meta:ACCESS_DENIED:The token 'x' is invalid!``,
    ``error 40000004: Gateway:IDLE_TIMEOUT:…``, ``error: cannot connect to ws://…``.
    """
    if isinstance(exc, TaskFailedError):
        return f"error {exc.status}: {exc.status_text}"
    if isinstance(exc, ConnectionUnavailable) and exc.http_status is not None:
        # A refused handshake: the body is the server's explanation (403 Meta:ACCESS_DENIED…).
        text = exc.body.strip() or str(exc)
        return f"error {exc.status}: {text}"
    return f"error: {exc}"


@dataclass
class SentenceWriter:
    """Turns transcription events into output text, one finished piece at a time.

    ``text`` writes one line per sentence, ``json`` one line per event (every event, so
    nothing is lost), ``srt``/``vtt`` one cue per sentence. Cue times come from the
    sentence's ``begin_time`` and ``time`` (end), both in ms from the start of the audio;
    an end never precedes its begin or the previous cue's begin, so cues stay monotone.
    """

    format: OutputFormat = "text"
    count: int = 0
    """Sentences written so far."""
    _last_begin: int = field(default=0, repr=False)

    def header(self) -> str:
        """Text to write before anything else (the WebVTT signature)."""
        return VTT_HEADER if self.format == "vtt" else ""

    def event(self, event: Event) -> str:
        """Text to write for ``event`` now ("" when it adds nothing in this format)."""
        if self.format == "json":
            return event_json(event) + "\n"
        if not isinstance(event, SentenceEnd):
            return ""
        text = event.result.strip()
        if self.format == "text":
            self.count += 1
            return text + "\n"
        if not text:
            return ""  # an empty cue is invalid in SRT and pointless in VTT
        begin = max(event.begin_time, self._last_begin)
        end = max(event.time, begin)
        self._last_begin = begin
        self.count += 1
        if self.format == "srt":
            return srt_cue(self.count, begin, end, text)
        return vtt_cue(begin, end, text)


def recognition_json(path: str, text: str, events: list[Event]) -> str:
    """One JSON line for a recognised file: its text and every event of its task."""
    doc: Mapping[str, Any] = {
        "file": path,
        "result": text,
        "events": [json.loads(e.raw) for e in events],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _timestamp(ms: int, sep: str) -> str:
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{millis:03d}"
