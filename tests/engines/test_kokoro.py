"""Tests for nls_gateway.engines.kokoro: real synthesis, subtitles, errors, model files."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from nls_gateway import modelstore
from nls_gateway.engines import kokoro, kokoro_graph, signed_int8
from nls_gateway.engines.base import TtsChunk, TtsEngine, TtsOptions
from nls_gateway.engines.text.tts_frontend import split_clauses
from nls_gateway.exception import EngineUnavailableError

_MIRROR = Path(
    os.environ.get("NLS_MODEL_MIRROR") or Path(__file__).parents[3] / "shared" / "models"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[kokoro.KokoroEngine]:
    saved = os.environ.get("NLS_MODEL_MIRROR")
    os.environ["NLS_MODEL_MIRROR"] = str(_MIRROR)
    try:
        yield kokoro.create(locate=modelstore.locate)
    finally:
        if saved is None:
            os.environ.pop("NLS_MODEL_MIRROR", None)


def _check_chunks(chunks: list[TtsChunk], text: str) -> None:
    assert chunks
    assert chunks[0].begin_index == 0 or not text[: chunks[0].begin_index].strip()
    for chunk in chunks:
        assert chunk.audio.dtype == np.float32 and chunk.audio.size > 2400
        assert np.abs(chunk.audio).max() > 0.01
        duration_ms = chunk.audio.size * 1000 / kokoro.SAMPLE_RATE
        subs = chunk.subtitles
        assert subs
        times = [t for s in subs for t in (s.begin_time, s.end_time)]
        assert times == sorted(times)
        assert abs(subs[-1].end_time - duration_ms) <= 100
        # Timed by the model's durations: the first character starts where the sound does.
        onset_ms = np.flatnonzero(np.abs(chunk.audio) > 0.02)[0] * 1000 / kokoro.SAMPLE_RATE
        assert abs(subs[0].begin_time - onset_ms) <= 80, (subs[0], onset_ms)
        for sub in subs:
            assert text[sub.begin_index : sub.end_index] == sub.text
            assert chunk.begin_index <= sub.begin_index < chunk.end_index
    ends = [c.end_index for c in chunks]
    assert ends == sorted(ends)


def test_engine_satisfies_protocol(engine: kokoro.KokoroEngine) -> None:
    assert isinstance(engine, TtsEngine)
    names = {v.name for v in engine.voices()}
    assert {"xiaoyun", "xiaogang", "longxiaochun", "andy", "olivia"} <= names


def test_a_synthesis_costs_one_stream_where_the_convolutions_run_signed(
    engine: kokoro.KokoroEngine,
) -> None:
    signed = signed_int8.exact_on_this_cpu()
    assert engine._model.signed_products is signed
    assert engine.stream_cost == (1 if signed else 2)


@pytest.mark.skipif(
    not signed_int8.exact_on_this_cpu(), reason="this CPU keeps the exported convolutions"
)
def test_the_rewritten_graphs_compute_what_the_export_does(
    engine: kokoro.KokoroEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signed_int8, "exact_on_this_cpu", lambda: False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    exported = kokoro_graph.load(modelstore.locate(kokoro.MODEL_FILE), options)
    assert not exported.signed_products and engine._model.signed_products
    info = {v.name: v for v in engine.voices()}["xiaoyun"]
    style = engine._style(info.engine_voice)
    _, ids = engine._tokens("今天天气不错，我们去公园散步吧。", info)
    row = style[len(ids)][np.newaxis, :]
    tokens = np.array([[0, *ids, 0]], dtype=np.int64)
    features = engine._model.features(tokens, row, 1.0)
    theirs = exported.features(tokens, row, 1.0)
    for name in ("asr", "f0", "energy"):
        np.testing.assert_array_equal(getattr(features, name), getattr(theirs, name))
    norms = engine._model.calibrate(features, row)  # the meter: u8 × s8, channel-major
    for ours, exact in zip(norms, exported.calibrate(features, row), strict=True):
        np.testing.assert_array_equal(ours, exact)
    begin, end = features.speech_window()  # the decoder: u8 × s8, time-major
    np.testing.assert_array_equal(
        engine._model.render(features, row, norms, begin, end),
        exported.render(features, row, norms, begin, end),
    )


def test_synthesize_chinese(engine: kokoro.KokoroEngine) -> None:
    text = "你好，今天是2026年11月22日。"
    chunks = list(engine.synthesize(text, TtsOptions(voice="xiaoyun")))
    _check_chunks(chunks, text)
    assert chunks[-1].end_index == len(text)


def test_synthesize_english(engine: kokoro.KokoroEngine) -> None:
    text = "Hello, this is a short test."
    chunks = list(engine.synthesize(text, TtsOptions(voice="abby")))
    _check_chunks(chunks, text)


def test_first_chunk_is_short(engine: kokoro.KokoroEngine) -> None:
    text = "北京时间今天上午十点整我们在会议室召开全体员工大会"
    first = next(iter(engine.synthesize(text, TtsOptions(voice="xiaogang"))))
    assert first.end_index - first.begin_index <= 12


def test_speed_changes_duration(engine: kokoro.KokoroEngine) -> None:
    text = "语音合成。"
    slow = sum(c.audio.size for c in engine.synthesize(text, TtsOptions("xiaogang", 0.7)))
    fast = sum(c.audio.size for c in engine.synthesize(text, TtsOptions("xiaogang", 1.4)))
    assert slow > fast * 1.4


def test_nothing_to_speak_raises_value_error(engine: kokoro.KokoroEngine) -> None:
    with pytest.raises(ValueError):
        engine.synthesize("。，！", TtsOptions(voice="xiaoyun"))


def test_unknown_voice_raises_key_error(engine: kokoro.KokoroEngine) -> None:
    with pytest.raises(KeyError):
        engine.synthesize("你好", TtsOptions(voice="nobody"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A temp copy of part of the mirror, served over HTTP on 127.0.0.1."""
    root = tmp_path / "served"
    src = _MIRROR / kokoro.VOICES_DIR
    dest = root / kokoro.VOICES_DIR
    (dest / "voices_pt").mkdir(parents=True)
    shutil.copy(src / "vocab.json", dest / "vocab.json")
    shutil.copy(src / "voices_pt" / "zm_yunxi.pt", dest / "voices_pt" / "zm_yunxi.pt")
    handler = partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", dest
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_files_download_and_verify(
    http_mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = http_mirror
    monkeypatch.delenv("NLS_MODEL_MIRROR", raising=False)
    monkeypatch.setenv("NLS_MODEL_DIR", str(tmp_path / "cache"))
    locate = partial(modelstore.locate, download_base=base)
    vocab = kokoro.load_vocab(locate)
    style = kokoro.load_style("zm_yunxi", locate)
    assert vocab["↓"] == 169 and style.shape == (510, 256)
    cached = modelstore.cache_dir() / kokoro.VOICES_DIR / "voices_pt" / "zm_yunxi.pt"
    assert modelstore.sha256_of(cached) == kokoro.VOICE_SHA256["zm_yunxi"]
    # Second load comes from the cache even with the server's file gone.
    (http_mirror[1] / "voices_pt" / "zm_yunxi.pt").unlink()
    assert np.array_equal(kokoro.load_style("zm_yunxi", locate), style)


def test_corrupt_download_is_rejected(
    http_mirror: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, served = http_mirror
    (served / "vocab.json").write_text('{"vocab": {"a": 1}}', encoding="utf-8")
    monkeypatch.delenv("NLS_MODEL_MIRROR", raising=False)
    monkeypatch.setenv("NLS_MODEL_DIR", str(tmp_path / "cache"))
    with pytest.raises(EngineUnavailableError, match="sha256"):
        kokoro.load_vocab(partial(modelstore.locate, download_base=base))
    assert not (modelstore.cache_dir() / kokoro.VOCAB_RELPATH).exists()


def test_chunk_edges_keep_a_lead_in_and_exactly_the_pause() -> None:
    rate = kokoro.SAMPLE_RATE
    speech = np.full(rate // 2, 0.1, dtype=np.float32)
    audio = np.concatenate([np.zeros(rate // 2, np.float32), speech, np.zeros(rate, np.float32)])
    assert kokoro._lead_start(audio) == rate // 2 - rate * 40 // 1000
    keep = rate // 10
    out = kokoro._with_pause(audio[rate // 2 :], keep)
    assert np.count_nonzero(out) == speech.size
    assert out.size == speech.size + keep
    # A render that stops soon after the speech gets its pause as digital silence.
    out = kokoro._with_pause(audio[rate // 2 : rate + rate // 50], keep)
    assert out.size == speech.size + keep and not out[-keep:].any()
    silent = np.zeros(rate, dtype=np.float32)
    assert kokoro._lead_start(silent) == 0 and kokoro._with_pause(silent, keep) is silent


def test_windows_start_short_double_and_cut_where_a_character_starts() -> None:
    cuts = list(range(10, 400, 7))
    energy = np.zeros(400, dtype=np.float32)
    windows = kokoro._windows(3, 390, cuts, energy, 16)
    assert windows[0][0] == 3 and windows[-1][1] == 390
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    assert all(b in cuts for b, _ in windows[1:])
    sizes = [e - b for b, e in windows]
    assert 16 <= sizes[0] < 16 + 7
    for before, size in zip(sizes, sizes[1:-1], strict=False):
        assert min(2 * before, kokoro._LARGEST_WINDOW) <= size <= 2 * before + 7
    assert sizes[-1] >= kokoro._SHORTEST_WINDOW
    # The quietest cut in reach is taken.
    dense = list(range(10, 400, 2))
    energy[[20, 22]] = [-1.0, -5.0]
    assert kokoro._windows(3, 390, dense, energy, 16)[0] == (3, 22)
    # Too short to cut: one window.
    assert kokoro._windows(0, 30, cuts, energy, 16) == [(0, 30)]


def test_later_clauses_are_grouped_as_the_queued_audio_grows() -> None:
    text = (
        "今天天气很好，我们一起去公园散步吧。明天最低气温-5℃，请注意保暖。"
        "北京时间今天上午十点整，我们在会议室召开全体员工大会。"
    )
    clauses = split_clauses(text)
    pieces = kokoro._schedule(text, clauses, 30)
    # Every character once, in order.
    assert pieces[0][0] == clauses[0][0] and pieces[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert len(pieces) < len(clauses)
    starts = {b for b, _ in clauses}
    for begin, end in pieces[1:]:
        assert begin in starts  # groups start at a clause
        single = (begin, end) in clauses
        # A group never outgrows what was queued before it, nor the size limit.
        assert single or end - begin <= min(30, begin - pieces[0][0])


def test_one_word_clauses_are_not_grouped() -> None:
    # Grouped, Kokoro slurs a filler: "uh, moved to Friday." was heard as "a move to Friday".
    text = "Well, um, the meeting is, uh, moved to Friday, at ten, in the big room."
    clauses = split_clauses(text)
    pieces = [text[b:e].strip() for b, e in kokoro._schedule(text, clauses, 240)]
    assert "uh," in pieces and "um," in pieces
    assert "moved to Friday, at ten," in pieces  # the other clauses are still grouped


def test_pause_depends_on_where_the_chunk_was_cut() -> None:
    text = "今天天气很好，我们一起去公园散步吧。"
    assert kokoro._pause_after(text, 4) < kokoro._pause_after(text, 7)
    assert kokoro._pause_after(text, 7) < kokoro._pause_after(text, len(text))


def test_windows_join_up_as_one_render(engine: kokoro.KokoroEngine) -> None:
    text = "北京时间今天上午十点整我们在会议室召开全体员工大会"
    chunks = list(engine.synthesize(text, TtsOptions(voice="xiaoyun")))
    assert len(chunks) >= 3  # one call, rendered in windows that start short
    stream = np.concatenate([c.audio for c in chunks])
    # The same call rendered as one window, trimmed as the stream's first chunk was.
    features, row, norms = _features(engine, text, "xiaoyun")
    first, last = features.speech_window()
    whole = engine._model.render(features, row, norms, first, last)
    # The stream starts at a lead-in found on 10 ms windows: align on that grid.
    ten_ms = kokoro.SAMPLE_RATE // 100
    n = min(stream.size, whole.size - 20 * ten_ms) - kokoro.SAMPLE_RATE // 5

    def correlation(shift: int) -> float:
        x = stream[:n].astype(np.float64)
        y = whole[shift : shift + n].astype(np.float64)
        return float(np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y)))

    shift = max(range(0, 20 * ten_ms, ten_ms), key=correlation)
    # Sample for sample the same signal, the harmonic source's phase included (a window
    # whose source restarted its phase would decorrelate wherever the voice is voiced).
    assert correlation(shift) > 0.9
    a, b = stream[:n], whole[shift : shift + n]
    # No step at a join, and no level jump around one.
    joins = np.cumsum([c.audio.size for c in chunks])[:-1]
    steps = np.abs(np.diff(stream))
    assert steps[joins - 1].max() <= 0.5 * steps.max()
    for join in joins:
        around = slice(join - 3 * ten_ms, join + 3 * ten_ms)
        level = [10 * np.log10(np.mean(x[around] ** 2) + 1e-9) for x in (a, b)]
        assert abs(level[0] - level[1]) < 3.0, (join, level)


def test_a_short_window_is_not_softened_by_its_own_statistics(
    engine: kokoro.KokoroEngine,
) -> None:
    # With the decoder's norms taking their statistics over the window, 那个 rendered
    # without the call's silence came out 4 dB softer than in the whole call.
    features, row, norms = _features(engine, "那个，", "xiaogang")
    begin, end = features.speech_window()
    whole = engine._model.reference(features, row, 0, features.frames)
    part = whole[begin * kokoro_graph.HOP : end * kokoro_graph.HOP]

    def db(audio: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(audio**2)))

    alone = db(engine._model.render(features, row, norms, begin, end))
    own = db(engine._model.reference(features, row, begin, end))
    assert own < alone and abs(alone - db(part)) < 4.0, (own, alone, db(part))


def test_norm_statistics_are_kept_in_the_cache_dir(
    engine: kokoro.KokoroEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fresh() -> kokoro.KokoroEngine:  # the fixture's sessions, an empty memory
        return kokoro.KokoroEngine(
            engine._model,
            engine._phonemizer,
            engine._vocab,
            {v.name: v for v in engine.voices()},
            locate=engine._locate,
            cache_dir=tmp_path,
        )

    info = {v.name: v for v in engine.voices()}["xiaogang"]
    style = engine._style(info.engine_voice)
    measured = fresh()._calibrated(info, style, 11)
    (kept,) = (tmp_path / kokoro.NORMS_DIR).glob(f"{info.engine_voice}-11-*.npz")
    # A new process reads them back instead of measuring again.
    calls: list[int] = []
    real = engine._model.calibrate

    def counted(features: kokoro_graph.Features, style: np.ndarray) -> kokoro_graph.Norms:
        calls.append(1)
        return real(features, style)

    monkeypatch.setattr(engine._model, "calibrate", counted)
    again = fresh()._calibrated(info, style, 11)
    assert not calls and all(np.array_equal(a, b) for a, b in zip(measured, again, strict=True))
    # An unreadable file is measured again and replaced.
    kept.write_bytes(b"not an npz")
    repaired = fresh()._calibrated(info, style, 11)
    assert calls == [1] and all(np.allclose(a, b) for a, b in zip(measured, repaired, strict=True))
    assert kokoro._read_norms(kept, engine._model.norm_count) is not None


def test_phase_offset_continues_the_harmonic_source() -> None:
    def cycles(f0_hz: float, points: int, begin: int) -> np.ndarray:
        """The offset at frame ``begin`` as cycles of each harmonic (the graph's units × 300)."""
        f0 = np.full((1, points), f0_hz, dtype=np.float32)
        frames = points // 2
        features = kokoro_graph.Features(
            np.zeros((1, 512, frames), np.float32), f0, np.zeros_like(f0), (frames,)
        )
        return kokoro_graph.phase_offset(features, begin).reshape(-1) * 300

    def same_phase(x: np.ndarray, y: np.ndarray) -> bool:
        return bool(np.allclose(np.cos(2 * np.pi * (x - y)), 1.0, atol=1e-6))

    harmonics = np.arange(1, 10)
    assert same_phase(cycles(200.0, 20, 0), 0 * harmonics)
    # 4 frames at 200 Hz: 2400 samples, 80 cycles of the fundamental, 80 h of harmonic h.
    assert same_phase(cycles(200.0, 20, 4), 0 * harmonics)
    # 1 frame at 100 Hz: 600 samples, 2.5 cycles, 2.5 h of harmonic h.
    assert same_phase(cycles(100.0, 20, 1), 2.5 * harmonics)
    assert not same_phase(cycles(100.0, 20, 1), 0 * harmonics)


def test_xiaoyun_and_xiaogang_sound_different(engine: kokoro.KokoroEngine) -> None:
    text = "今天天气很好。"
    female = np.concatenate([c.audio for c in engine.synthesize(text, TtsOptions("xiaoyun"))])
    male = np.concatenate([c.audio for c in engine.synthesize(text, TtsOptions("xiaogang"))])
    assert female.size != male.size or not np.allclose(female, male, atol=1e-3)
    assert _pitch_hz(female) > _pitch_hz(male) * 1.3  # a female voice speaks higher


def test_blend_voice_is_between_its_parts(engine: kokoro.KokoroEngine) -> None:
    a, b = engine._style("zf_xiaoxiao"), engine._style("zf_xiaobei")
    blend = engine._style("zf_xiaoxiao+zf_xiaobei")
    assert np.allclose(blend, (a + b) / 2, atol=1e-6)
    assert not np.allclose(blend, a) and not np.allclose(blend, b)


def _pitch_hz(audio: np.ndarray) -> float:
    """Median autocorrelation pitch (70–400 Hz) over the voiced 40 ms frames."""
    rate, frame = kokoro.SAMPLE_RATE, kokoro.SAMPLE_RATE * 40 // 1000
    lo, hi = rate // 400, rate // 70
    pitches = []
    for start in range(0, audio.size - frame, frame):
        x = audio[start : start + frame].astype(np.float64)
        if np.sqrt(np.mean(x * x)) < 0.03:
            continue
        x -= x.mean()
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.4 * ac[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        ("今天天气不错，我们去公园散步吧。", "xiaoyun"),
        ("Good morning, let us take a walk.", "abby"),
    ],
)
def test_decoder_renders_the_sound_and_little_silence(
    engine: kokoro.KokoroEngine, text: str, voice: str
) -> None:
    features, row, norms = _features(engine, text, voice)
    begin, end = features.speech_window()
    full = engine._model.reference(features, row, 0, features.frames)
    assert full.size == features.frames * kokoro_graph.HOP
    frames = full.reshape(features.frames, kokoro_graph.HOP)
    audible = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.004)
    # Every audible frame of the full render is inside the window, with context, and
    # little else: the pads and the final pause are not rendered.
    assert begin + kokoro_graph.LEAD_FRAMES <= audible[0] + 1
    assert audible[-1] + kokoro_graph.TAIL_FRAMES <= end
    context = kokoro_graph.LEAD_FRAMES + kokoro_graph.TAIL_FRAMES
    assert end - begin <= audible[-1] + 1 - audible[0] + context + 12 < features.frames - 8
    window = engine._model.render(features, row, norms, begin, end)
    assert window.size == (end - begin) * kokoro_graph.HOP


def _features(
    engine: kokoro.KokoroEngine, text: str, voice: str
) -> tuple[kokoro_graph.Features, np.ndarray, kokoro_graph.Norms]:
    """The text half's output for ``text`` in one call, the style row it used, and the
    voice's norm statistics."""
    info = {v.name: v for v in engine.voices()}[voice]
    phonemes = engine._phonemizer.phonemize(text, language=info.language).phonemes
    ids = [engine._vocab[c] for c in phonemes]
    style = engine._style(info.engine_voice)
    row = style[len(ids)][np.newaxis, :]
    tokens = np.array([[0, *ids, 0]], dtype=np.int64)
    norms = engine._calibrated(info, style, kokoro._style_row(len(ids)))
    return engine._model.features(tokens, row, 1.0), row, norms
