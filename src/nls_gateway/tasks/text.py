"""Synthesis text: the SSML subset we accept, sentence splitting, the streaming assembler.

This module owns what happens to TTS text before it reaches an engine (protocol.md §6, §7):
:func:`parse` turns a request's ``text`` into :class:`Speech` pieces and :class:`Pause`
items — plain text is one piece; text starting with ``<speak>`` is read as SSML, where
``<break>`` becomes a pause, ``<s>``/``<p>``/``<say-as>``/``<sub>`` are reduced to their
text and any other tag is rejected with 41020001 ``Illegal ssml text`` (§9). Every piece
keeps, for each character, its index in the original text, so subtitles can point into
what the client sent. :func:`split_sentences` and :class:`SentenceAssembler` cut text at
``。！？；.!?`` and newlines (a ``.`` only before a space or the end, so ``3.14`` stays
whole), the sentence unit of MetaInfo subtitles and of FlowingSpeechSynthesizer.

Pure functions over strings: no engines, no asyncio, no I/O.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from nls.protocol.constants import Status
from nls_gateway.tasks.base import TaskError

__all__ = [
    "MAX_BREAK_MS",
    "Pause",
    "SentenceAssembler",
    "Speech",
    "parse",
    "split_sentences",
]

MAX_BREAK_MS = 10_000
"""Longest ``<break>`` honoured (the cloud caps breaks at 10 s)."""

_STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 200,
    "medium": 400,
    "strong": 700,
    "x-strong": 1000,
}
_TEXT_TAGS = {"speak", "s", "p", "say-as", "sub"}
_TOKEN = re.compile(r"<[^<>]*>|&#?\w+;|[^<&]+|[<&]")
_TAG = re.compile(
    r"<\s*(/)?\s*([a-zA-Z][\w:-]*)((?:\s+[\w:-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*(/)?\s*>$"
)
_ATTR = re.compile(r"([\w:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_ENDERS = "。！？；!?;\n"
_CLOSERS = "”’\"')]）」』】》"
_SOFT = "，、,：:"
_MAX_SENTENCE = 200
"""A sentence longer than this without an ender is cut at a comma (bounded latency)."""


@dataclass(frozen=True, slots=True)
class Speech:
    """Text to speak; ``index[i]`` is the original-text index of ``text[i]``."""

    text: str
    index: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence of ``ms`` milliseconds (from ``<break>``)."""

    ms: int


def parse(text: str) -> list[Speech | Pause]:
    """Split a request's ``text`` into speech pieces and pauses.

    Raises:
        TaskError: 41020001 ``Illegal ssml text`` for SSML we cannot honour.
    """
    if not text.lstrip().startswith("<speak"):
        return [Speech(text, tuple(range(len(text))))]
    return _parse_ssml(text)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(begin, end)`` of each sentence of ``text`` (every character in exactly one)."""
    assembler = SentenceAssembler()
    spans: list[tuple[int, int]] = []
    pos = 0
    for sentence in [*assembler.add(text), *assembler.flush()]:
        spans.append((pos, pos + len(sentence)))
        pos += len(sentence)
    return spans


class SentenceAssembler:
    """Collects streamed text and hands out complete sentences (FlowingSpeechSynthesizer)."""

    def __init__(self) -> None:
        self._buf = ""

    @property
    def pending(self) -> str:
        """Text received but not yet part of a complete sentence."""
        return self._buf

    def add(self, text: str) -> list[str]:
        """Append ``text``; return the sentences it completed, in order."""
        self._buf += text
        out: list[str] = []
        while (cut := self._cut()) is not None:
            out.append(self._buf[:cut])
            self._buf = self._buf[cut:]
        return out

    def flush(self) -> list[str]:
        """Everything still pending, as a last sentence (FlushText / StopSynthesis)."""
        rest, self._buf = self._buf, ""
        return [rest] if rest else []

    def _cut(self) -> int | None:
        buf = self._buf
        for i, ch in enumerate(buf):
            if ch in _ENDERS or (ch == "." and i + 1 < len(buf) and buf[i + 1].isspace()):
                end = i + 1
                while end < len(buf) and (buf[end] in _CLOSERS or buf[end] in _ENDERS):
                    end += 1
                while end < len(buf) and buf[end] in " \t":
                    end += 1
                return end
        if len(buf) > _MAX_SENTENCE:
            soft = max(buf.rfind(c, 0, _MAX_SENTENCE) for c in _SOFT)
            return soft + 1 if soft > 0 else _MAX_SENTENCE
        return None


def _illegal(detail: str) -> TaskError:
    # 41020001 TtsClientError "Illegal ssml text" (§6.2, §9)
    return TaskError(
        Status.TTS_CLIENT_ERROR, Status.TTS_CLIENT_ERROR.text.format(f"Illegal ssml text: {detail}")
    )


def _parse_ssml(text: str) -> list[Speech | Pause]:
    items: list[Speech | Pause] = []
    chars: list[str] = []
    index: list[int] = []
    stack: list[str] = []
    closed = False
    alias: str | None = None

    def flush() -> None:
        if chars:
            items.append(Speech("".join(chars), tuple(index)))
            chars.clear()
            index.clear()

    for m in _TOKEN.finditer(text):
        token, pos = m.group(), m.start()
        if token.startswith("<"):
            tag = _TAG.match(token)
            if tag is None:
                raise _illegal(f"malformed tag {token!r}")
            closing, name, attrs, empty = (
                tag.group(1),
                tag.group(2).lower(),
                tag.group(3),
                tag.group(4),
            )
            if closed:
                raise _illegal("content after </speak>")
            if not stack and (name != "speak" or closing):
                raise _illegal("the document must be one <speak> element")
            if name == "break":
                if closing:
                    continue
                flush()
                items.append(Pause(_break_ms(dict(_attrs(attrs)))))
                continue
            if name not in _TEXT_TAGS:
                raise _illegal(f"unsupported tag <{name}>")
            if closing:
                if not stack or stack[-1] != name:
                    raise _illegal(f"unbalanced </{name}>")
                stack.pop()
                if name == "sub" and alias is not None:
                    alias = None
                closed = not stack
                if name in ("s", "p"):
                    flush()  # sentence/paragraph ends are prosodic boundaries
                continue
            if name in ("s", "p"):
                flush()
            if empty:
                continue
            stack.append(name)
            if name == "sub":
                alias = dict(_attrs(attrs)).get("alias")
                if alias is not None:
                    chars.extend(alias)
                    index.extend([pos] * len(alias))
            continue
        if not stack:
            if token.strip():
                raise _illegal("text outside <speak>")
            continue
        if alias is not None:
            continue  # <sub alias="…">: the alias was spoken instead of this text
        if token.startswith("&") and len(token) > 1:
            decoded = html.unescape(token)
            if decoded == token:
                raise _illegal(f"unknown entity {token}")
            chars.extend(decoded)
            index.extend([pos] * len(decoded))
        elif token in ("<", "&"):
            raise _illegal(f"stray {token!r}")
        else:
            chars.extend(token)
            index.extend(range(pos, pos + len(token)))
    if stack:
        raise _illegal(f"<{stack[-1]}> is not closed")
    flush()
    return items


def _attrs(attrs: str) -> list[tuple[str, str]]:
    return [(k.lower(), a if a else b) for k, a, b in _ATTR.findall(attrs)]


def _break_ms(attrs: dict[str, str]) -> int:
    if "time" in attrs:
        m = _TIME.match(attrs["time"])
        if m is None:
            raise _illegal(f"bad break time {attrs['time']!r}")
        value = float(m.group(1)) * (1 if m.group(2) == "ms" else 1000)
        return min(MAX_BREAK_MS, round(value))
    strength = attrs.get("strength", "medium")
    if strength not in _STRENGTH_MS:
        raise _illegal(f"bad break strength {strength!r}")
    return _STRENGTH_MS[strength]
