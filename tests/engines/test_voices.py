"""Tests for nls_gateway.engines.voices: the NLS voice table."""

from __future__ import annotations

import pytest

from nls_gateway.engines.voices import (
    DEFAULT_VOICE,
    FLOWING_DEFAULT_VOICE,
    KOKORO_VOICES,
    VOICES,
    voice_table,
)

_MALE = {"xiaogang", "aicheng", "aida", "ailun", "sicheng", "zhishuo", "zhifeng"}
_EN = {"andy", "abby", "annie", "betty", "harry", "eric", "emily", "luna", "luca", "wendy"}


def test_defaults_use_the_most_intelligible_voice() -> None:
    assert VOICES[DEFAULT_VOICE].language == "zh"
    assert VOICES[DEFAULT_VOICE].engine_voice == "zm_yunxi"
    assert VOICES[FLOWING_DEFAULT_VOICE].engine_voice == "zm_yunxi"
    assert VOICES["ruoxi"].gender == "female"


def test_genders_and_languages_follow_the_nls_voice() -> None:
    for name in _MALE:
        assert VOICES[name].gender == "male", name
    for name in _EN | {"william", "olivia"}:
        assert VOICES[name].language == "en", name
    assert VOICES["andy"].gender == "male" and VOICES["abby"].gender == "female"


def test_every_entry_names_a_kokoro_voice() -> None:
    assert all(info.engine_voice in KOKORO_VOICES for info in VOICES.values())
    assert all(name == info.name for name, info in VOICES.items())


def test_overrides_remap_and_validate() -> None:
    table = voice_table({"xiaoyun": "zf_xiaoxiao", "custom": "af_heart"})
    assert table["xiaoyun"].engine_voice == "zf_xiaoxiao"
    assert table["xiaoyun"].gender == "female"
    assert table["custom"].language == "en"
    with pytest.raises(KeyError):
        voice_table({"xiaoyun": "zz_nobody"})
