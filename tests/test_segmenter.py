from __future__ import annotations

import numpy as np
import pytest

from evaldata import load_wav, segments
from nls_gateway.engines.silero_vad import SileroVad, create
from nls_gateway.segmenter import (
    EndSilenceTimeout,
    PauseEnded,
    PauseStarted,
    SampleBuffer,
    Segmenter,
    SegmenterConfig,
    SegmenterEvent,
    SpeechEnded,
    SpeechStarted,
    StartSilenceTimeout,
    threshold_for,
)
from nls_gateway.testing import ScriptedVad
from tasks.fakes import silence, tone

CHUNK = 1600  # 100 ms, as a client sends it


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    engine = create()
    assert isinstance(engine, SileroVad)
    return engine


def _run(seg: Segmenter, audio: np.ndarray) -> list[SegmenterEvent]:
    events: list[SegmenterEvent] = []
    for i in range(0, audio.size, CHUNK):
        events += seg.accept_waveform(audio[i : i + CHUNK])
    return events + seg.flush()


def test_threshold_mapping() -> None:
    assert threshold_for(0.0) == pytest.approx(0.5)
    assert threshold_for(-1.0) < threshold_for(0.0) < threshold_for(1.0) <= 0.9
    assert threshold_for(5.0) == threshold_for(1.0)


def test_config_rejects_out_of_range_silence() -> None:
    with pytest.raises(ValueError):
        SegmenterConfig(max_sentence_silence_ms=100)


@pytest.mark.parametrize("name", ["zh_dev_long_01_concat.wav", "en_dev_long_01_concat.wav"])
def test_real_speech_boundaries(vad: SileroVad, name: str) -> None:
    audio = load_wav(name)
    events = _run(Segmenter(vad.create_stream()), audio)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    started = [e for e in events if isinstance(e, SpeechStarted)]
    refs = segments(name)
    assert len(ended) == len(started) == len(refs)
    for got, (start_s, end_s) in zip(ended, refs, strict=True):
        # Reference boundaries are the source clips' edges, and some clips open with up
        # to ~0.9 s of their own silence, so onsets may come a little later.
        assert -500 <= got.begin_ms - start_s * 1000 <= 700
        assert abs(got.end_ms - end_s * 1000) <= 500
        assert got.audio.size == pytest.approx((got.end_ms - got.begin_ms) * 16, abs=16)
        assert not got.forced


def test_silence_and_noise_give_no_sentence(vad: SileroVad) -> None:
    rng = np.random.default_rng(3)
    for audio in (
        np.zeros(5 * 16000, np.float32),
        (rng.standard_normal(5 * 16000) * 0.05).astype(np.float32),
    ):
        events = _run(Segmenter(vad.create_stream()), audio)
        assert not [e for e in events if isinstance(e, SpeechStarted | SpeechEnded)]


def test_start_and_end_silence_timeouts(vad: SileroVad) -> None:
    speech = load_wav("zh_dev_07_paddlespeech_zh.wav")
    gap = np.zeros(3 * 16000, np.float32)
    config = SegmenterConfig(max_start_silence_ms=1000, max_end_silence_ms=1500)
    events = _run(Segmenter(vad.create_stream(), config=config), np.concatenate([gap, speech, gap]))
    kinds = [type(e) for e in events]
    assert kinds.count(StartSilenceTimeout) == 1
    timeout = next(e for e in events if isinstance(e, StartSilenceTimeout))
    assert 1000 <= timeout.elapsed_ms < 1100
    assert kinds.index(StartSilenceTimeout) < kinds.index(SpeechStarted)
    assert kinds[-2:] == [SpeechEnded, EndSilenceTimeout] or kinds[-1] == EndSilenceTimeout


def test_current_audio_grows_during_a_sentence(vad: SileroVad) -> None:
    seg = Segmenter(vad.create_stream())
    audio = load_wav("zh_dev_07_paddlespeech_zh.wav")
    sizes = []
    for i in range(0, audio.size, CHUNK):
        seg.accept_waveform(audio[i : i + CHUNK])
        if seg.in_speech:
            sizes.append(seg.current_audio().size)
    assert sizes and sizes == sorted(sizes) and sizes[-1] > 3 * 16000
    assert seg.sentence_begin_ms is not None


def test_long_speech_is_split_at_a_pause(vad: SileroVad) -> None:
    # The Azure passage has sub-800 ms pauses only, so just the length limit splits it.
    audio = load_wav("zh_dev_long_02_azure_zhcn_continuous.wav")
    config = SegmenterConfig(max_sentence_ms=20000)
    ended = [
        e
        for e in _run(Segmenter(vad.create_stream(), config=config), audio)
        if isinstance(e, SpeechEnded)
    ]
    assert len(ended) >= 3
    for event in ended:
        assert event.end_ms - event.begin_ms <= 20000 + 32
    for first, second in zip(ended, ended[1:], strict=False):
        assert second.begin_ms >= first.end_ms
    # Split points fall in pauses: the audio around each forced cut is quiet.
    for event in ended[:-1]:
        if event.forced:
            tail = event.audio[-1600:]
            assert float(np.sqrt(np.mean(tail**2))) < 0.02


def test_pause_events_match_the_sentence_end() -> None:
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.4), tone(1.0), silence(1.2)])
    # The pause is reported once it is past the post-roll, so its audio is the sentence's.
    config = SegmenterConfig(pause_ms=SegmenterConfig().post_roll_ms + 50)
    events = _run(Segmenter(ScriptedVad().create_stream(), config=config), audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, PauseStarted, PauseEnded, PauseStarted, SpeechEnded]
    first, resumed, pause, ended = events[1], events[2], events[3], events[4]
    assert isinstance(first, PauseStarted) and isinstance(resumed, PauseEnded)
    assert isinstance(pause, PauseStarted) and isinstance(ended, SpeechEnded)
    assert abs(first.speech_end_ms - 1500) <= 32 and abs(resumed.speech_ms - 1900) <= 32
    # The last pause saw the same speech (and, past the post-roll, the same audio).
    assert (pause.begin_ms, pause.speech_end_ms) == (ended.begin_ms, ended.speech_end_ms)
    assert pause.end_ms == ended.end_ms
    np.testing.assert_array_equal(pause.audio, ended.audio)


def test_no_pause_events_by_default() -> None:
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.4), tone(1.0), silence(1.2)])
    events = _run(Segmenter(ScriptedVad().create_stream()), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]


def test_sample_buffer_views_survive_growth_and_trim() -> None:
    buf = SampleBuffer(capacity=16)
    buf.append(np.ones(10000, dtype=np.float32))
    view = buf.view(0, 10000)
    buf.trim(9000)
    buf.append(np.full(40000, 2, dtype=np.float32))
    assert (buf.start, buf.end) == (9000, 50000)
    assert float(view.sum()) == 10000  # an old view is never overwritten
    assert float(buf.view(0, 10000).sum()) == 1000  # trimmed samples are gone
    assert float(buf.view(10000, 50000).mean()) == 2


def test_sample_buffer_copies_only_what_it_keeps() -> None:
    # A long stream with a short kept window: memory stays bounded by the window.
    buf = SampleBuffer()
    frame = np.zeros(1600, dtype=np.float32)
    for _ in range(3000):  # 5 minutes of 100 ms frames
        buf.append(frame)
        buf.trim(buf.end - 4800)
    assert buf._data.size <= 4 * 16000
