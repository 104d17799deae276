"""Tests for nls_gateway.engines.text.tts_frontend: clauses, pinyin → IPA, mixed Chinese/English."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nls_gateway.engines.text.tts_frontend import (
    Espeak,
    Phonemizer,
    has_speech,
    pinyin_to_ipa,
    split_clauses,
    split_words,
)

_MIRROR = Path(
    os.environ.get("NLS_MODEL_MIRROR") or Path(__file__).parents[3] / "shared" / "models"
)


@pytest.fixture(scope="module")
def phonemizer() -> Phonemizer:
    vocab = json.loads((_MIRROR / "kokoro-v1_0-voices" / "vocab.json").read_text("utf-8"))
    return Phonemizer(vocab["vocab"])


@pytest.mark.parametrize(
    ("syllable", "ipa"),
    [
        ("ma1", "ma→"),
        ("zhong1", "ꭧʊ→ŋ"),
        ("chi1", "ꭧʰɨ→"),
        ("guo2", "kwo↗"),
        ("ni3", "ni↓"),
        ("hao3", "xau↓"),
        ("shi4", "ʂɨ↘"),
        ("si4", "sɨ↘"),
        ("qu4", "ʨʰy↘"),
        ("xue2", "ɕɥe↗"),
        ("you3", "jou↓"),
        ("dui4", "twei↘"),
        ("lun4", "lwə↘n"),
        ("er4", "ɚ↘"),
        ("de5", "tɤ"),
        ("jian1", "ʨjɛ→n"),
    ],
)
def test_pinyin_to_ipa(syllable: str, ipa: str) -> None:
    assert pinyin_to_ipa(syllable) == ipa


def test_pinyin_to_ipa_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        pinyin_to_ipa("q3x")


def test_split_clauses_at_punctuation_not_decimals() -> None:
    text = "你好，世界。圆周率是3.14！Hello, world.\n第二行"
    clauses = [text[b:e] for b, e in split_clauses(text)]
    assert clauses == ["你好，", "世界。", "圆周率是3.14！", "Hello,", " world.\n", "第二行"]


def test_split_clauses_drops_silent_text() -> None:
    assert split_clauses("。，！") == []
    assert not has_speech("。，！ \n")
    assert has_speech("a")


def test_split_words_keeps_words_whole() -> None:
    text = "北京时间今天上午十点整我们在会议室召开全体员工大会"
    pieces = split_words(text, 0, len(text), 8)
    assert "".join(text[b:e] for b, e in pieces) == text
    assert len(pieces) > 1
    assert all(e - b >= 4 for b, e in pieces)
    assert text[pieces[0][0] : pieces[0][1]] == "北京时间今天上午"


def test_phonemize_chinese_has_tones_and_weights(phonemizer: Phonemizer) -> None:
    result = phonemizer.phonemize("你好，世界。")
    assert result.phonemes == "ni↓xau↓, ʂɨ↘ʨje↘."
    assert len(result.weights) == 6
    assert result.weights[0] == len("ni↓") and result.weights[2] == 1


def test_phonemize_reads_numbers_in_chinese(phonemizer: Phonemizer) -> None:
    result = phonemizer.phonemize("35%")
    assert result.phonemes == phonemizer.phonemize("百分之三十五").phonemes
    assert sum(result.weights) > 0 and all(w > 0 for w in result.weights)


def test_phonemize_reads_english_words_through_espeak(phonemizer: Phonemizer) -> None:
    result = phonemizer.phonemize("我们使用Python开发")
    # In a Mandarin voice's notation: p aspirated (unaspirated p is pinyin b), θ as s.
    assert "pʰˈIsən" in result.phonemes
    python = result.weights[4:10]
    assert all(w > 0 for w in python)


def test_english_words_in_mandarin_aspirate_stops_except_after_s(
    phonemizer: Phonemizer,
) -> None:
    zh = phonemizer.phonemize("用WebSocket和Starbucks").phonemes
    assert "sˈɑkʰɪtʰ" in zh  # socket: k and t aspirated
    assert "stˈɑɹbʌkʰs" in zh  # the t of st stays unaspirated, as in English
    # An English voice keeps English notation: aspiration is implied there.
    en = phonemizer.phonemize("WebSocket and the Python", language="en").phonemes
    assert "ʰ" not in en and "θ" in en and "ð" in en


def test_phonemize_english_voice(phonemizer: Phonemizer) -> None:
    result = phonemizer.phonemize("Hello world, it costs 5 dollars!", language="en")
    assert result.phonemes.startswith("həlˈO wˈɜɹld,")
    assert "fˈIv" in result.phonemes
    assert result.phonemes.endswith("!")


def test_espeak_shared_is_a_singleton() -> None:
    assert Espeak.shared() is Espeak.shared()
    assert "ˈ" in Espeak.shared().ipa("hello")


def test_split_words_never_cuts_a_number_or_a_latin_word() -> None:
    from nls_gateway.engines.text.tts_frontend import split_words

    for text in ("会议定于2026年11月22日下午14:30召开。", "请拨打客服电话13800138000咨询。"):
        cuts = [e for _, e in split_words(text, 0, len(text), 4)]
        for unit in ("2026年11月22日", "14:30", "13800138000"):
            at = text.find(unit)
            if at >= 0:
                assert not any(at < c < at + len(unit) for c in cuts)
    text = "我们使用WebSocket开发"
    assert all(text[e - 1 : e + 1] != "bS" for _, e in split_words(text, 0, len(text), 3))
