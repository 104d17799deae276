"""The NLS voice table: every voice name the NLS API accepts, mapped to a local Kokoro voice.

This module owns the data only: NLS voice name → (language, gender, Kokoro voice id). Every
NLS voice keeps its documented language and gender (xiaoyun and longxiaochun are female,
xiaogang is male). Kokoro v1.0 ships four female and four male Mandarin voices, fewer than
the NLS names, so the table also uses blends: ``zf_xiaoxiao+zf_xiaobei`` is the mean of the
two voices' style tables, a timbre between the two (the usual Kokoro technique). Blends were
kept only where the round trip through the gateway's own ASR stayed intelligible
(``benchmarks/tts.py``; figures in ``docs/voices.md``, which also lists the whole table).
The commonly used names get distinct voices; the defaults xiaoyun, longxiaochun (female)
and xiaogang (male) never share one. Operators can remap any name with
``kokoro.create(voice_map={...})``.

It must not import the model or any heavy library: the gateway lists voices without loading
an engine.
"""

from __future__ import annotations

from collections.abc import Mapping

from nls_gateway.engines.base import VoiceInfo

__all__ = [
    "DEFAULT_VOICE",
    "FLOWING_DEFAULT_VOICE",
    "KOKORO_VOICES",
    "VOICES",
    "kokoro_voice",
    "voice_table",
]

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

# Blends (mean style tables); their round-trip CER is in docs/voices.md.
_ZF_ALL = "zf_xiaobei+zf_xiaoni+zf_xiaoxiao+zf_xiaoyi"
_XX_YI = "zf_xiaoxiao+zf_xiaoyi"
_XX_BEI = "zf_xiaoxiao+zf_xiaobei"
_BEI_YI = "zf_xiaobei+zf_xiaoyi"
_XX_YI_BEI = "zf_xiaoxiao+zf_xiaoyi+zf_xiaobei"
_BEI_NI = "zf_xiaobei+zf_xiaoni"
_XX_NI = "zf_xiaoxiao+zf_xiaoni"
_YI_NI = "zf_xiaoyi+zf_xiaoni"
_XI_JIAN = "zm_yunxi+zm_yunjian"
_XI_YANG = "zm_yunxi+zm_yunyang"
_XI_XIA = "zm_yunxi+zm_yunxia"
_BF = "bf_emma+bf_isabella"
_BM = "bm_george+bm_lewis"

# (NLS name, Kokoro voice or blend, NLS description). Language and gender follow from the
# Kokoro voice, which was chosen to match the NLS voice's own language and gender; the
# defaults get the most intelligible voice of their gender (docs/voices.md).
_TABLE: tuple[tuple[str, str, str], ...] = (
    # General Mandarin voices (SpeechSynthesizer); xiaoyun is the NLS default.
    ("xiaoyun", _XX_YI_BEI, "标准女声"),
    ("xiaogang", _XI_JIAN, "标准男声"),
    ("ruoxi", _XX_BEI, "温柔女声"),
    ("siqi", _XX_YI, "温柔女声"),
    ("sijia", "zf_xiaoyi", "标准女声"),
    ("sicheng", "zm_yunxi", "标准男声"),
    ("aiqi", _ZF_ALL, "温柔女声"),
    ("aijia", "zf_xiaobei", "标准女声"),
    ("aicheng", "zm_yunjian", "标准男声"),
    ("aida", _XI_YANG, "标准男声"),
    ("ailun", "zm_yunyang", "悬疑解说男声"),
    ("aifei", "zm_yunxia", "激昂解说男声"),
    ("aixia", _XX_NI, "亲和女声"),
    ("aimei", _BEI_NI, "甜美女声"),
    ("aiyu", _YI_NI, "自然女声"),
    ("yina", "zf_xiaoni", "浙普女声"),
    ("ninger", "zf_xiaoxiao", "标准女声"),
    ("ruilin", _XX_YI, "标准女声"),
    ("xiaomei", _BEI_NI, "甜美女声"),
    ("siyue", _XX_BEI, "温柔女声"),
    # 48 kHz "zhi*" voices.
    ("zhiqi", _XX_YI, "温柔女声"),
    ("zhitian", _BEI_NI, "甜美女声"),
    ("zhiyan", _YI_NI, "自然女声"),
    ("zhiya", "zf_xiaobei", "标准女声"),
    ("zhimiao", _XX_NI, "多情感女声"),
    ("zhimi", "zf_xiaoni", "多情感女声"),
    ("zhishuo", _XI_XIA, "自然男声"),
    ("zhifeng", "zm_yunjian", "多情感男声"),
    # FlowingSpeechSynthesizer (CosyVoice) "long*" voices; longxiaochun is the default.
    ("longxiaochun", _BEI_YI, "知性积极女"),
    ("longxiaoxia", "zf_xiaoyi", "沉稳权威女"),
    ("longwan", _XX_BEI, "积极知性女"),
    ("longyue", _ZF_ALL, "温暖磁性女"),
    ("longcheng", "zm_yunxi", "智慧青年男"),
    ("longshu", "zm_yunjian", "沉稳青年男"),
    ("longfei", "zm_yunyang", "热血磁性男"),
    ("longxiang", _XI_XIA, "自然男"),
    # English voices.
    ("andy", "am_michael", "美音男声"),
    ("abby", "af_heart", "美音女声"),
    ("annie", "af_bella", "美音女声"),
    ("betty", "af_sarah", "美音女声"),
    ("harry", "bm_george", "英音男声"),
    ("eric", "bm_lewis", "英音男声"),
    ("emily", "bf_emma", "英音女声"),
    ("luna", "bf_isabella", "英音女声"),
    ("luca", _BM, "英音男声"),
    ("wendy", _BF, "英音女声"),
    ("william", "am_adam", "英音男声 in NLS; an American voice here (three British ones taken)"),
    ("olivia", "af_nicole", "英音女声 in NLS; an American voice here (three British ones taken)"),
)


def kokoro_voice(voice: str) -> tuple[str, str]:
    """(language, gender) of a Kokoro voice id or of a blend ``a+b`` of such ids.

    Raises:
        KeyError: an unknown Kokoro voice, or a blend of voices whose language or gender
            differ (a blend keeps both).
    """
    kinds = {KOKORO_VOICES[part] for part in voice.split("+") if part in KOKORO_VOICES}
    if len(kinds) != 1 or any(part not in KOKORO_VOICES for part in voice.split("+")):
        raise KeyError(f"unknown Kokoro voice or mixed blend {voice!r}")
    return kinds.pop()


def voice_table(overrides: Mapping[str, str] | None = None) -> dict[str, VoiceInfo]:
    """NLS voice name → :class:`VoiceInfo`, with optional remapping.

    Args:
        overrides: NLS name → Kokoro voice id, replacing the default choice (e.g.
            ``{"xiaoyun": "zm_yunxi"}``, or a blend ``"zf_xiaoni+zf_xiaoyi"``).
            A name not in the table adds a new NLS voice name.

    Raises:
        KeyError: an override names a Kokoro voice that does not exist (or blends a
            male and a female voice, or two languages).
    """
    rows = {name: (voice, desc) for name, voice, desc in _TABLE}
    for name, voice in (overrides or {}).items():
        rows[name] = (voice, rows.get(name, ("", "custom"))[1])
    table: dict[str, VoiceInfo] = {}
    for name, (voice, desc) in rows.items():
        try:
            language, gender = kokoro_voice(voice)
        except KeyError:
            raise KeyError(f"unknown Kokoro voice {voice!r} for NLS voice {name!r}") from None
        table[name] = VoiceInfo(name, language, gender, voice, desc)
    return table


VOICES: Mapping[str, VoiceInfo] = voice_table()
"""The default table."""
