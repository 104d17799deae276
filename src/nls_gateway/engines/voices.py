"""The NLS voice table: every voice name the NLS API accepts, mapped to a local Kokoro voice.

This module owns the data only: NLS voice name → (language, gender, Kokoro voice id). The
mapping keeps each NLS voice's language and gender, except for the two default voices
(``xiaoyun``, ``longxiaochun``), which get the most intelligible voice whatever its gender
(see the comment in the table). Within a gender it prefers the Kokoro
voices that came back most intelligible in the round-trip test (Whisper base, see
``benchmarks/tts.py`` and ``shared/models/README.md``): ``zm_yunxi`` for male Mandarin
voices, ``zf_xiaoxiao`` for female Mandarin voices; the other Kokoro voices are spread over
the remaining names so that different NLS names sound different. Operators can remap any
name with ``kokoro.create(voice_map={...})``.

It must not import the model or any heavy library: the gateway lists voices without loading
an engine.
"""

from __future__ import annotations

from collections.abc import Mapping

from nls_gateway.engines.base import VoiceInfo

__all__ = ["DEFAULT_VOICE", "FLOWING_DEFAULT_VOICE", "KOKORO_VOICES", "VOICES", "voice_table"]

DEFAULT_VOICE = "xiaoyun"
"""NLS default for SpeechSynthesizer / SpeechLongSynthesizer (protocol.md §6.1)."""
FLOWING_DEFAULT_VOICE = "longxiaochun"
"""NLS default for FlowingSpeechSynthesizer (protocol.md §7.1)."""

KOKORO_VOICES: dict[str, tuple[str, str]] = {
    "zf_xiaobei": ("zh", "female"),
    "zf_xiaoni": ("zh", "female"),
    "zf_xiaoxiao": ("zh", "female"),
    "zf_xiaoyi": ("zh", "female"),
    "zm_yunjian": ("zh", "male"),
    "zm_yunxi": ("zh", "male"),
    "zm_yunxia": ("zh", "male"),
    "zm_yunyang": ("zh", "male"),
    "af_heart": ("en", "female"),
    "af_bella": ("en", "female"),
    "af_nicole": ("en", "female"),
    "af_sarah": ("en", "female"),
    "am_michael": ("en", "male"),
    "am_adam": ("en", "male"),
    "am_fenrir": ("en", "male"),
    "bf_emma": ("en", "female"),
    "bf_isabella": ("en", "female"),
    "bm_george": ("en", "male"),
    "bm_lewis": ("en", "male"),
}
"""Kokoro voice id → (language, gender); the voice files the engine can load."""

# (NLS name, Kokoro voice, description). Language and gender follow from the Kokoro voice,
# which was chosen to match the NLS voice's own language and gender.
_TABLE: tuple[tuple[str, str, str], ...] = (
    # General Mandarin voices (SpeechSynthesizer).
    # The two defaults map to the most intelligible Kokoro voice measured (zm_yunxi: round-trip
    # CER 16.5 % vs 23.1 % for the best female voice, zf_xiaoxiao, on benchmarks/tts.py's
    # sentences), trading NLS's female timbre for clarity. Remap with voice_map if needed.
    ("xiaoyun", "zm_yunxi", "标准女声 in NLS; mapped to the clearest local voice (male)"),
    ("xiaogang", "zm_yunxi", "标准男声"),
    ("ruoxi", "zf_xiaoxiao", "温柔女声"),
    ("siqi", "zf_xiaoxiao", "温柔女声"),
    ("sijia", "zf_xiaoyi", "标准女声"),
    ("sicheng", "zm_yunxi", "标准男声"),
    ("aiqi", "zf_xiaoxiao", "温柔女声"),
    ("aijia", "zf_xiaoyi", "标准女声"),
    ("aicheng", "zm_yunxi", "标准男声"),
    ("aida", "zm_yunjian", "标准男声"),
    ("ailun", "zm_yunyang", "悬疑解说男声"),
    ("aifei", "zm_yunxia", "激昂解说"),
    ("aixia", "zf_xiaobei", "亲和女声"),
    ("aimei", "zf_xiaoxiao", "甜美女声"),
    ("aiyu", "zf_xiaoni", "自然女声"),
    ("yina", "zf_xiaobei", "浙普女声"),
    ("ninger", "zf_xiaoni", "标准女声"),
    ("ruilin", "zf_xiaoyi", "标准女声"),
    ("xiaomei", "zf_xiaobei", "甜美女声"),
    ("siyue", "zf_xiaoxiao", "温柔女声"),
    # 48 kHz "zhi*" voices.
    ("zhiqi", "zf_xiaoxiao", "温柔女声"),
    ("zhitian", "zf_xiaoni", "甜美女声"),
    ("zhiyan", "zf_xiaoyi", "自然女声"),
    ("zhiya", "zf_xiaobei", "标准女声"),
    ("zhimiao", "zf_xiaoxiao", "多情感女声"),
    ("zhimi", "zf_xiaoni", "多情感女声"),
    ("zhishuo", "zm_yunxi", "自然男声"),
    ("zhifeng", "zm_yunjian", "多情感男声"),
    # FlowingSpeechSynthesizer (CosyVoice) "long*" voices.
    ("longxiaochun", "zm_yunxi", "知性积极女 in NLS; flowing default, clearest voice (male)"),
    ("longxiaoxia", "zf_xiaoyi", "沉稳权威女"),
    ("longwan", "zf_xiaobei", "积极知性女"),
    ("longyue", "zf_xiaoni", "温暖磁性女"),
    ("longcheng", "zm_yunxi", "智慧青年男"),
    ("longshu", "zm_yunjian", "沉稳青年男"),
    ("longfei", "zm_yunyang", "热血磁性男"),
    ("longxiang", "zm_yunxia", "自然男"),
    # English voices.
    ("andy", "am_michael", "American male"),
    ("abby", "af_heart", "American female"),
    ("annie", "af_bella", "American female"),
    ("betty", "af_sarah", "American female"),
    ("harry", "bm_george", "British male"),
    ("eric", "am_adam", "American male"),
    ("emily", "bf_emma", "British female"),
    ("luna", "af_nicole", "American female"),
    ("luca", "bm_lewis", "British male"),
    ("wendy", "bf_isabella", "British female"),
    ("william", "am_fenrir", "American male"),
    ("olivia", "af_heart", "American female"),
)


def voice_table(overrides: Mapping[str, str] | None = None) -> dict[str, VoiceInfo]:
    """NLS voice name → :class:`VoiceInfo`, with optional remapping.

    Args:
        overrides: NLS name → Kokoro voice id, replacing the default choice (e.g.
            ``{"xiaoyun": "zf_xiaoxiao"}`` to get a female timbre back at some cost in clarity).
            A name not in the table adds a new NLS voice name.

    Raises:
        KeyError: an override names a Kokoro voice that does not exist.
    """
    rows = {name: (voice, desc) for name, voice, desc in _TABLE}
    for name, voice in (overrides or {}).items():
        rows[name] = (voice, rows.get(name, ("", "custom"))[1])
    table: dict[str, VoiceInfo] = {}
    for name, (voice, desc) in rows.items():
        if voice not in KOKORO_VOICES:
            raise KeyError(f"unknown Kokoro voice {voice!r} for NLS voice {name!r}")
        language, gender = KOKORO_VOICES[voice]
        table[name] = VoiceInfo(name, language, gender, voice, desc)
    return table


VOICES: Mapping[str, VoiceInfo] = voice_table()
"""The default table."""
