"""The scripted engines implement the engine interfaces and behave as documented."""

from __future__ import annotations

import numpy as np
import pytest

from nls_gateway.engines.base import AsrEngine, AsrOptions, TtsEngine, TtsOptions, VadEngine
from nls_gateway.testing import ScriptedAsr, ScriptedTts, ScriptedVad


def test_interfaces():
    assert isinstance(ScriptedAsr(), AsrEngine)
    assert isinstance(ScriptedVad(), VadEngine)
    assert isinstance(ScriptedTts(), TtsEngine)


def test_asr_returns_texts_in_order_and_partials_peek():
    asr = ScriptedAsr(["one", "two"])
    audio = np.full(16000, 0.1, dtype=np.float32)
    assert asr.transcribe(audio, AsrOptions(final=False)).text == "one"
    assert asr.transcribe(audio, AsrOptions()).text == "one"
    result = asr.transcribe(audio, AsrOptions())
    assert result.text == "two"
    assert result.words[-1].end_ms <= 1000
    assert asr.transcribe(audio, AsrOptions()).text == "one"  # starts over
    assert asr.transcribe(np.zeros(0, dtype=np.float32), AsrOptions()).text == ""


def test_vad_marks_tone_frames_as_speech():
    vad = ScriptedVad()
    stream = vad.create_stream()
    tone = (0.3 * np.sin(np.arange(1024) / 3)).astype(np.float32)
    probs = stream.accept_waveform(np.concatenate([np.zeros(1024, np.float32), tone[:700]]))
    assert list(probs) == [0.0, 0.0, 1.0]
    assert list(stream.accept_waveform(tone[700:])) == [1.0]  # 188 kept + 324 new
    assert list(stream.accept_waveform(np.zeros(200, np.float32))) == []  # kept for later


def test_tts_chunks_per_clause_with_subtitles():
    tts = ScriptedTts(ms_per_char=10)
    chunks = list(tts.synthesize("你好，世界。", TtsOptions(voice="xiaoyun")))
    assert [(c.begin_index, c.end_index) for c in chunks] == [(0, 3), (3, 6)]
    assert chunks[0].audio.size == 3 * 160
    assert [s.text for s in chunks[1].subtitles] == ["世", "界"]  # "。" is a pause
    assert chunks[1].subtitles[-1].end_time == 20
    assert chunks[1].audio.size == 3 * 160
    with pytest.raises(KeyError):
        list(tts.synthesize("hi", TtsOptions(voice="nobody")))
    with pytest.raises(ValueError):
        tts.synthesize("。。", TtsOptions(voice="xiaoyun"))
