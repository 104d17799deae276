"""Tests for nls_gateway.engines.voices: the NLS voice table."""

from __future__ import annotations

from pathlib import Path

import pytest

from nls_gateway.engines.voices import (
    DEFAULT_VOICE,
    FLOWING_DEFAULT_VOICE,
    KOKORO_VOICES,
    VOICES,
    kokoro_voice,
    voice_table,
)

# Genders as the NLS documentation gives them (标准女声, 标准男声, …).
_FEMALE_ZH = {
    "xiaoyun", "ruoxi", "siqi", "sijia", "aiqi", "aijia", "aixia", "aimei", "aiyu", "yina",
    "ninger", "ruilin", "xiaomei", "siyue", "zhiqi", "zhitian", "zhiyan", "zhiya", "zhimiao",
    "zhimi", "longxiaochun", "longxiaoxia", "longwan", "longyue",
}  # fmt: skip
_MALE_ZH = {
    "xiaogang", "sicheng", "aicheng", "aida", "ailun", "aifei", "zhishuo", "zhifeng",
    "longcheng", "longshu", "longfei", "longxiang",
}  # fmt: skip
_FEMALE_EN = {"abby", "annie", "betty", "emily", "luna", "wendy", "olivia"}
_MALE_EN = {"andy", "harry", "eric", "luca", "william"}
_COMMON = [
    "xiaoyun", "xiaogang", "ruoxi", "siqi", "sijia", "sicheng", "aiqi", "aijia", "aicheng",
    "aixia", "aimei", "aiyu", "ninger", "ruilin", "xiaomei", "longxiaochun",
]  # fmt: skip


def test_defaults_keep_their_nls_gender() -> None:
    assert VOICES[DEFAULT_VOICE].language == "zh"
    assert VOICES[DEFAULT_VOICE].gender == "female"
    assert VOICES[FLOWING_DEFAULT_VOICE].gender == "female"
    assert VOICES["xiaogang"].gender == "male"
    for name in (DEFAULT_VOICE, FLOWING_DEFAULT_VOICE):
        assert VOICES[name].engine_voice != VOICES["xiaogang"].engine_voice


def test_every_voice_keeps_its_nls_language_and_gender() -> None:
    expected = {
        **dict.fromkeys(_FEMALE_ZH, ("zh", "female")),
        **dict.fromkeys(_MALE_ZH, ("zh", "male")),
        **dict.fromkeys(_FEMALE_EN, ("en", "female")),
        **dict.fromkeys(_MALE_EN, ("en", "male")),
    }
    assert set(VOICES) == set(expected)
    for name, (language, gender) in expected.items():
        assert (VOICES[name].language, VOICES[name].gender) == (language, gender), name


def test_common_voices_are_spread_over_distinct_timbres() -> None:
    female = [n for n in _COMMON if VOICES[n].gender == "female"]
    voices = {VOICES[n].engine_voice for n in female}
    # 14 common female names over the 4 Kokoro voices and their blends: at most 4 shared.
    assert len(voices) >= len(female) - 4
    male = [n for n in _COMMON if VOICES[n].gender == "male"]
    assert len({VOICES[n].engine_voice for n in male}) == len(male)


def test_every_entry_names_a_kokoro_voice_or_blend() -> None:
    for info in VOICES.values():
        assert all(part in KOKORO_VOICES for part in info.engine_voice.split("+")), info
    assert all(name == info.name for name, info in VOICES.items())


def test_blends_keep_language_and_gender() -> None:
    assert kokoro_voice("zf_xiaoxiao+zf_xiaobei") == ("zh", "female")
    with pytest.raises(KeyError):
        kokoro_voice("zf_xiaoxiao+zm_yunxi")
    with pytest.raises(KeyError):
        kokoro_voice("zf_xiaoxiao+af_heart")


def test_overrides_remap_and_validate() -> None:
    table = voice_table({"xiaoyun": "zm_yunxi", "custom": "af_heart"})
    assert table["xiaoyun"].engine_voice == "zm_yunxi"
    assert table["xiaoyun"].gender == "male"
    assert table["custom"].language == "en"
    with pytest.raises(KeyError):
        voice_table({"xiaoyun": "zz_nobody"})
    with pytest.raises(KeyError):
        voice_table({"xiaoyun": "zf_xiaoni+zm_yunxi"})


def test_docs_list_the_table_as_it_is() -> None:
    """docs/voices.md's table is the code's: each name with its language, gender and voice."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "voices.md").read_text("utf-8")
    rows = {}
    for line in doc.split("## The table", 1)[1].splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in VOICES:
            rows[cells[0]] = (cells[1], cells[2], cells[4])
    assert rows == {n: (v.language, v.gender, v.engine_voice) for n, v in VOICES.items()}
