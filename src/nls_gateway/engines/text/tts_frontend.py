"""Text front-end for Kokoro: clause splitting, Chinese G2P and English words via espeak-ng.

This module owns the path from the text a client sends to the phoneme string Kokoro reads:

* :func:`split_clauses` cuts text at ，。！？；,.!? and newlines (a ``.`` between digits is a
  decimal point, not a stop) and :func:`split_words` cuts a long clause at word boundaries so
  the first chunk can be short.
* :class:`Phonemizer` turns one clause into Kokoro phonemes. Chinese runs are normalised
  (:mod:`.tts_normalize`), segmented with jieba and read with pypinyin; each syllable is
  mapped to IPA with the tone arrows →↗↓↘ after the vowel nucleus, the notation of misaki's
  ``ZHG2P`` (legacy mode) that Kokoro v1.0 was trained on. Latin-letter runs are read as
  English by libespeak-ng (bundled by ``espeakng-loader``, driven through ctypes) and mapped
  to Kokoro's English symbols the way misaki's espeak fallback does; for a Mandarin voice
  they are then respelt in its notation (aspirated stops, no θ ð).
* It also reports how many phoneme symbols each original character produced, which the
  engine uses to time per-character subtitles.

It must not run the model, touch audio, or do any I/O besides loading libespeak-ng.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from nls_gateway.engines.text.tts_normalize import normalize
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "Espeak",
    "Phonemized",
    "Phonemizer",
    "has_speech",
    "pinyin_to_ipa",
    "split_clauses",
    "split_words",
]

_HANZI = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPEAKABLE_RE = re.compile(rf"[{_HANZI}A-Za-z0-9]")
_WORDISH = re.compile(r"[A-Za-z0-9'’]")
_CLAUSE_END_RE = re.compile(r"[，。！？；,!?;\n…]+|(?<!\d)\.+|\.+(?!\d)")

# Punctuation → Kokoro's punctuation symbols (misaki's map_punctuation); these carry the
# pauses and the sentence intonation, so they are kept, not dropped.
_PUNCT = {
    "，": ",", ",": ",", "、": ",", "。": ".", ".": ".", "．": ".", "！": "!", "!": "!",
    "？": "?", "?": "?", "；": ";", ";": ";", "：": ":", ":": ":", "…": "…", "—": "—",
    "“": "“", "”": "”", "\"": "\"", "《": "“", "》": "”", "「": "“", "」": "”",
    "（": "(", "）": ")", "(": "(", ")": ")",
}  # fmt: skip

# zh/ch are Kokoro's single symbol ꭧ (U+AB67), as misaki writes them: spelled ʈʂ they became
# two tokens (ʈ, ʂ) the model never saw for Mandarin, and every zh/ch syllable was blurred.
_INITIALS = {
    "b": "p", "p": "pʰ", "m": "m", "f": "f", "d": "t", "t": "tʰ", "n": "n", "l": "l",
    "g": "k", "k": "kʰ", "h": "x", "j": "ʨ", "q": "ʨʰ", "x": "ɕ", "zh": "ꭧ", "ch": "ꭧʰ",
    "sh": "ʂ", "r": "ɻ", "z": "ʦ", "c": "ʦʰ", "s": "s",
}  # fmt: skip
# Finals with "0" where the tone goes: after the vowel nucleus, before a nasal coda.
_FINALS = {
    "a": "a0", "ai": "ai0", "an": "a0n", "ang": "a0ŋ", "ao": "au0", "e": "ɤ0", "ei": "ei0",
    "en": "ə0n", "eng": "ə0ŋ", "er": "ɚ0", "i": "i0", "ia": "ja0", "ian": "jɛ0n",
    "iang": "ja0ŋ", "iao": "jau0", "ie": "je0", "in": "i0n", "iou": "jou0", "ing": "i0ŋ",
    "iong": "jʊ0ŋ", "ong": "ʊ0ŋ", "ou": "ou0", "u": "u0", "uei": "wei0", "ua": "wa0",
    "uai": "wai0", "uan": "wa0n", "uen": "wə0n", "uang": "wa0ŋ", "ueng": "wə0ŋ", "uo": "wo0",
    "o": "wo0", "ü": "y0", "üe": "ɥe0", "üan": "ɥɛ0n", "ün": "y0n", "ê": "ɛ0",
}  # fmt: skip
# Whole syllables the initial/final split does not cover (interjections, syllabic nasals).
_SPECIAL = {"o": "ɔ0", "yo": "jɔ0", "m": "m0", "n": "n0", "ng": "ŋ0", "hm": "hm0", "hng": "hŋ0"}
_TONES = {"1": "→", "2": "↗", "3": "↓", "4": "↘", "5": ""}

# espeak-ng IPA → Kokoro's English symbols (diphthongs as single letters, as misaki does);
# longest first so that "a^ɪ" wins over "a".
_FROM_ESPEAK = sorted(
    {
        "\u0303": "", "a^ɪ": "I", "a^ʊ": "W", "d^ʒ": "ʤ", "e": "A", "e^ɪ": "A", "r": "ɹ",
        "t^ʃ": "ʧ", "x": "k", "ç": "k", "ɐ": "ə", "ɔ^ɪ": "Y", "ə^l": "ᵊl", "ɚ": "əɹ",
        "ɬ": "l", "ʔ": "t", "ʔn": "tᵊn", "ʔˌn\u0329": "tᵊn", "ʲ": "", "ʲO": "jO", "ʲQ": "jQ",
    }.items(),
    key=lambda kv: -len(kv[0]),
)  # fmt: skip
# English words read by a Mandarin voice (issue 15). The zh training data is written in
# misaki's Mandarin notation, where aspiration is a symbol of its own: p t k are pinyin's
# unaspirated b d g and pʰ tʰ kʰ are p t k. English /p t k/ are aspirated, except after s
# (spin, stop, sky), but misaki's English notation leaves that implied, so a zh voice says
# Python as 白森 and socket as saga. θ and ð never occur in Mandarin; a Chinese speaker
# says s and z. Round trip of 20 zh sentences with English words × 4 zh voices, 474 → 365
# errors (BENCHMARKS.md, issue 15 table).
_ASPIRATED = re.compile(r"(?<![sʃ])([ptk])")
_TO_MANDARIN = str.maketrans({"θ": "s", "ð": "z"})
_ESPEAK_TIE = "^"
_ESPEAK_IPA = 0x02
_ESPEAK_USE_TIE = 0x80
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_SYNCHRONOUS = 0x02
_ESPEAK_DONT_EXIT = 0x8000

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Phonemized:
    """One clause as Kokoro phonemes."""

    phonemes: str
    weights: tuple[int, ...]
    """Phoneme symbols produced by each character of the clause (0 for silent ones)."""


def has_speech(text: str) -> bool:
    """True if ``text`` has anything to say (a hanzi, a letter or a digit)."""
    return _SPEAKABLE_RE.search(text) is not None


def split_clauses(text: str) -> list[tuple[int, int]]:
    """Cut ``text`` into clauses ``(begin, end)``, each ending after its punctuation.

    Clauses with nothing to say (only punctuation or whitespace) are merged into the clause
    before them so no character is lost, or dropped when they come first.
    """
    clauses: list[tuple[int, int]] = []
    begin = 0
    for match in _CLAUSE_END_RE.finditer(text):
        clauses.append((begin, match.end()))
        begin = match.end()
    if begin < len(text):
        clauses.append((begin, len(text)))
    merged: list[tuple[int, int]] = []
    for b, e in clauses:
        if has_speech(text[b:e]) or not merged:
            merged.append((b, e))
        else:
            merged[-1] = (merged[-1][0], e)
    return [(b, e) for b, e in merged if has_speech(text[b:e])]


def split_words(text: str, begin: int, end: int, target: int) -> list[tuple[int, int]]:
    """Cut ``text[begin:end]`` into pieces of about ``target`` characters at word boundaries.

    Chinese words come from jieba, English words from spaces; a piece never cuts a word,
    nor anything text normalisation reads as one unit (2026年11月22日, 14:30, a phone number,
    -5℃): cut there, the halves would be read differently (2026 as a quantity, say).
    """
    import jieba

    inside: set[int] = set()
    for span in normalize(text[begin:end]):
        inside.update(range(begin + span.begin + 1, begin + span.end))
    bounds: list[int] = []
    for _, _, stop in jieba.tokenize(text[begin:end]):
        at = begin + stop
        if at in inside or (_WORDISH.match(text[at - 1]) and _WORDISH.match(text[at : at + 1])):
            continue
        bounds.append(at)
    pieces: list[tuple[int, int]] = []
    start = begin
    for stop in bounds:
        if stop - start >= target and end - stop >= target // 2:
            pieces.append((start, stop))
            start = stop
    if start < end:
        pieces.append((start, end))
    return pieces


def pinyin_to_ipa(syllable: str) -> str:
    """One pypinyin TONE3 syllable (e.g. ``zhong1``, ``ma5``) → Kokoro IPA with tone arrow.

    Raises:
        ValueError: not a Mandarin syllable.
    """
    from pypinyin.contrib.tone_convert import to_finals, to_initials

    tone = syllable[-1] if syllable[-1:].isdigit() else "5"
    base = syllable.rstrip("012345").replace("v", "ü")
    arrow = _TONES.get(tone)
    if arrow is None or not base.isalpha():
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    if base in _SPECIAL:
        return _SPECIAL[base].replace("0", arrow)
    initial = to_initials(base, strict=True)
    final = to_finals(base, strict=True, v_to_u=True)
    if final == "i" and initial in ("zh", "ch", "sh", "r", "z", "c", "s"):
        # The apical vowels of zhi/chi/shi/ri and zi/ci/si: Kokoro's symbol is ɨ.
        ipa_final = "ɨ0"
    elif final in _FINALS:
        ipa_final = _FINALS[final]
    else:
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    return _INITIALS.get(initial, "") + ipa_final.replace("0", arrow)


class Espeak:
    """English (or other) text → IPA through libespeak-ng's ``espeak_TextToPhonemes``.

    libespeak-ng keeps global state, so one instance per process serialises calls with a lock.
    """

    _instance: Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise EngineUnavailableError(
                "espeak-ng is needed for English words: pip install 'opennls[gateway]'"
                " (or pip install espeakng-loader)"
            ) from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        data = espeakng_loader.get_data_path().encode()
        if lib.espeak_Initialize(_ESPEAK_SYNCHRONOUS, 0, data, _ESPEAK_DONT_EXIT) <= 0:
            raise EngineUnavailableError("libespeak-ng failed to initialise")
        self._lib: Any = lib
        self._lock = threading.Lock()
        self._voice = ""

    @classmethod
    def shared(cls) -> Espeak:
        """The process-wide instance (libespeak-ng cannot be initialised twice)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def ipa(self, text: str, voice: str = "en-us") -> str:
        """Raw espeak-ng IPA for ``text``, with ``^`` tying the letters of one phoneme."""
        mode = _ESPEAK_IPA | _ESPEAK_USE_TIE | (ord(_ESPEAK_TIE) << 8)
        out: list[str] = []
        with self._lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise ValueError(f"espeak-ng has no voice {voice!r}")
                self._voice = voice
            buf = ctypes.c_char_p(text.encode())
            ptr = ctypes.pointer(buf)
            # Each call returns one clause and advances the pointer; NULL at the end.
            while buf.value:
                piece = self._lib.espeak_TextToPhonemes(ptr, _ESPEAK_CHARS_UTF8, mode)
                if piece is None:
                    break
                out.append(piece.decode("utf-8", "replace").strip())
        return " ".join(p for p in out if p)

    def kokoro(self, text: str, *, british: bool = False) -> str:
        """``text`` in Kokoro's English phoneme symbols (misaki's espeak mapping)."""
        ps = self.ipa(text, "en-gb" if british else "en-us")
        for old, new in _FROM_ESPEAK:
            ps = ps.replace(old, new)
        ps = re.sub(r"(\S)\u0329", r"ᵊ\1", ps).replace("\u0329", "")
        if british:
            ps = ps.replace("e^ə", "ɛː").replace("iə", "ɪə").replace("ə^ʊ", "Q")
        else:
            ps = ps.replace("o^ʊ", "O").replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ")
            ps = ps.replace("ɪə", "iə").replace("ː", "")
        return ps.replace("o", "ɔ").replace(_ESPEAK_TIE, "")


class Phonemizer:
    """Clause text → :class:`Phonemized` for Kokoro, for a Chinese or an English voice."""

    def __init__(self, vocab: dict[str, int]) -> None:
        import jieba

        # jieba logs "Building prefix dict…" at INFO on first use; keep the gateway log clean.
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        self._vocab = vocab
        self._espeak = Espeak.shared()

    def phonemize(self, text: str, *, language: str = "zh", british: bool = False) -> Phonemized:
        """Phonemes of ``text`` (one clause) and the symbol count of each of its characters.

        Args:
            text: the clause, as written by the client.
            language: ``zh`` applies Chinese text normalisation (digits read in Chinese)
                and respells English words in the Mandarin notation; ``en`` leaves digits
                to espeak-ng (read in English).
            british: read English with espeak-ng's ``en-gb`` voice.
        """
        weights = [0] * len(text)
        pieces: list[str] = []
        for seg_text, owners, kind in self._segments(text, language):
            if kind == "zh":
                ps = self._zh(seg_text, owners, weights)
            elif kind == "en":
                ps = self._espeak.kokoro(seg_text, british=british)
                if language == "zh":
                    ps = _ASPIRATED.sub(r"\1ʰ", ps).translate(_TO_MANDARIN)
                _spread(ps, owners, weights)
            elif kind == "punct":
                ps = _PUNCT[seg_text]
                weights[owners[0]] += 1
            else:
                ps = " "
            pieces.append(ps)
        phonemes = re.sub(r" +", " ", " ".join(pieces)).strip()
        phonemes = re.sub(r" ([,.!?;:…])", r"\1", phonemes)
        return Phonemized("".join(ch for ch in phonemes if ch in self._vocab), tuple(weights))

    def _segments(self, text: str, language: str) -> Iterator[tuple[str, list[int], str]]:
        """Runs of (spoken text, original index of each spoken char, kind)."""
        spoken: list[str] = []
        owners: list[int] = []
        if language == "zh":
            for span in normalize(text):
                n = len(span.spoken)
                width = span.end - span.begin
                for k, ch in enumerate(span.spoken):
                    spoken.append(ch)
                    owners.append(span.begin + (k * width) // max(n, 1))
        else:
            spoken = list(text)
            owners = list(range(len(text)))
        joined = "".join(spoken)
        run_re = _RUN_ZH if language == "zh" else _RUN_EN
        for m in run_re.finditer(joined):
            kind = m.lastgroup or "other"
            yield m.group(), owners[m.start() : m.end()], kind

    def _zh(self, text: str, owners: list[int], weights: list[int]) -> str:
        import jieba
        from pypinyin import Style, lazy_pinyin

        words: list[str] = []
        pos = 0
        for word in jieba.lcut(text, HMM=True):
            syllables = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
            ipa = ""
            if len(syllables) == len(word):
                for k, syllable in enumerate(syllables):
                    try:
                        piece = pinyin_to_ipa(syllable)
                    except ValueError:
                        piece = ""  # a rare character pypinyin cannot read: skip it
                    weights[owners[pos + k]] += len(piece)
                    ipa += piece
            words.append(ipa)
            pos += len(word)
        return " ".join(w for w in words if w)


def _spread(phonemes: str, owners: list[int], weights: list[int]) -> None:
    """Share a run's phoneme symbols out over its characters in proportion to their order."""
    count = sum(1 for ch in phonemes if not ch.isspace())
    if not owners:
        return
    for k in range(count):
        weights[owners[(k * len(owners)) // count]] += 1


_RUN_ZH = re.compile(
    rf"(?P<zh>[{_HANZI}]+)"
    r"|(?P<en>[A-Za-z][A-Za-z'’]*(?:[ -][A-Za-z][A-Za-z'’]*)*)"
    rf"|(?P<punct>[{re.escape(''.join(_PUNCT))}])"
    r"|(?P<space>\s+)"
)
_RUN_EN = re.compile(
    rf"(?P<zh>[{_HANZI}]+)"
    r"|(?P<en>[A-Za-z0-9$%][A-Za-z0-9'’$%]*(?:(?:[ -]|[.,:](?=\d))[A-Za-z0-9$%][A-Za-z0-9'’$%]*)*)"
    rf"|(?P<punct>[{re.escape(''.join(_PUNCT))}])"
    r"|(?P<space>\s+)"
)
