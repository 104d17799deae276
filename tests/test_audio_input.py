"""nls_gateway.audio (input decoders, codecs): real speech, split into random-size frames."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from audio_fixtures import (
    aligned_similarity,
    chunk,
    container_bytes,
    load_clip,
    ogg_opus_bytes,
    opu_bytes,
    split_randomly,
    wav_bytes,
)
from nls_gateway.audio.codecs import OggReader
from nls_gateway.audio.decoder import (
    AudioFormatError,
    Decoder,
    float32_to_pcm16,
    pcm16_to_float32,
    resample,
)
from nls_gateway.audio.input import make_decoder

CLIP = load_clip(3.0)
REF = CLIP.astype(np.float32) / 32768
CLIP_8K = CLIP[::2].copy()  # the clip is band-limited speech; plain decimation is fine here
AMR_NB_8K = Path(__file__).parent / "data" / "speech_8k.amr"  # CLIP_8K, AMR-NB 4.75 kbit/s


def decode(fmt: str, data: bytes, rate: int = 16000, seed: int = 0, **kw: int) -> np.ndarray:
    decoder = make_decoder(fmt, rate, **kw)
    out = [decoder.feed(frame) for frame in split_randomly(data, seed)]
    out.append(decoder.finish())
    assert all(piece.dtype == np.float32 and piece.ndim == 1 for piece in out)
    return np.concatenate(out)


def fails(fmt: str, data: bytes, rate: int = 16000) -> AudioFormatError:
    decoder = make_decoder(fmt, rate)
    with pytest.raises(AudioFormatError) as info:
        for frame in split_randomly(data, 3):
            decoder.feed(frame)
        decoder.finish()
    with pytest.raises(AudioFormatError):  # a failed decoder stays failed
        decoder.feed(b"\0\0")
    return info.value


def ogg_page(packets: list[bytes], *, serial: int = 7, seq: int = 0, flags: int = 0) -> bytes:
    lacing = b"".join(bytes([255] * (len(p) // 255) + [len(p) % 255]) for p in packets)
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, serial, seq, 0, len(lacing))
    return header + lacing + b"".join(packets)


OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 16000, 0, 0)


# --- sample helpers -------------------------------------------------------------------


def test_pcm16_float32_round_trip_is_exact() -> None:
    data = CLIP.tobytes()
    assert float32_to_pcm16(pcm16_to_float32(data)) == data


def test_float32_to_pcm16_clips() -> None:
    assert float32_to_pcm16(np.array([2.0, -2.0, 0.5])) == struct.pack("<3h", 32767, -32768, 16384)


def test_pcm16_to_float32_rejects_odd_length() -> None:
    with pytest.raises(ValueError, match="even"):
        pcm16_to_float32(b"\0\0\0")


def test_resample_lengths_and_identity() -> None:
    assert len(resample(REF, 16000, 8000)) == len(REF) // 2
    assert len(resample(REF[::2], 8000, 16000)) == len(REF)
    same = resample(REF, 16000, 16000)
    assert same is not REF and np.array_equal(same, REF)


# --- each format decodes a real clip --------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_pcm_and_wav_decode_exactly(fmt: str, seed: int) -> None:
    data = CLIP.tobytes() if fmt == "pcm" else wav_bytes(CLIP)
    assert np.array_equal(decode(fmt, data, seed=seed), REF)


def test_pcm_skips_a_riff_header() -> None:
    # Users of the official SDKs send .wav bytes with format=pcm.
    assert np.array_equal(decode("pcm", wav_bytes(CLIP, extra=chunk(b"LIST", b"x" * 33))), REF)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ogg_opus_decodes_aligned(seed: int) -> None:
    out = decode("opus", ogg_opus_bytes(CLIP), seed=seed)
    similarity, lag = aligned_similarity(REF, out)
    # Pre-skip removed at the start, granule trims the end: same length, no lag.
    assert (similarity > 0.99, lag, len(out)) == (True, 0, len(REF))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_opu_decodes_close(seed: int) -> None:
    out = decode("opu", opu_bytes(CLIP), seed=seed)
    similarity, lag = aligned_similarity(REF, out)
    assert similarity > 0.99
    assert 0 <= lag <= 120  # libopus look-ahead (6.5 ms) stays: opu carries no pre-skip
    assert abs(len(out) - len(REF)) <= 320  # within one 20 ms packet


def test_ogg_opus_stereo_is_downmixed() -> None:
    stereo = np.stack([CLIP, CLIP // 2])
    out = decode("opus", ogg_opus_bytes(stereo), seed=4)
    similarity, lag = aligned_similarity(REF, out)
    assert (similarity > 0.99, lag, len(out)) == (True, 0, len(REF))
    assert np.std(out) == pytest.approx(0.75 * np.std(REF), rel=0.03)


def test_chained_ogg_opus_streams_play_one_after_the_other() -> None:
    # Each link is padded to whole 20 ms frames by the fixture encoder: 16000 → 16320.
    out = decode("opus", ogg_opus_bytes(CLIP[:16000]) + ogg_opus_bytes(CLIP[16000:32000]))
    assert len(out) == 2 * 16320
    assert aligned_similarity(REF[:16000], out[:16000])[0] > 0.99
    assert aligned_similarity(REF[16000:32000], out[16320:])[0] > 0.99


def test_aac_adts_decodes_close() -> None:
    out = decode("aac", container_bytes(CLIP, 16000, "adts", "aac", 1024))
    similarity, lag = aligned_similarity(REF, out, max_lag=1100)
    assert similarity > 0.99 and lag == 1024  # AAC priming is not removed (no container)
    assert abs(len(out) - lag - len(REF)) <= 1024


def _demuxed(data: bytes, fmt: str) -> np.ndarray:
    with av.open(io.BytesIO(data), format=fmt) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    x = np.concatenate(frames, axis=1)[0]
    return x.astype(np.float32) / 32768 if x.dtype.kind == "i" else x


def test_mp3_with_id3_tag_matches_ffmpeg_demuxer() -> None:
    data = container_bytes(CLIP, 16000, "mp3", "libmp3lame", 1152)
    assert data.startswith(b"ID3")
    out, ref = decode("mp3", data), _demuxed(data, "mp3")
    similarity, lag = aligned_similarity(ref, out, max_lag=2000)
    # The demuxer also trims LAME's encoder delay; our elementary-stream parser cannot.
    assert similarity > 0.999 and 0 < lag < 2000
    assert aligned_similarity(REF, out, max_lag=2000)[0] > 0.98


def test_amr_nb_8k_matches_ffmpeg_demuxer_and_is_upsampled() -> None:
    # A stored file: FFmpeg has AMR decoders of its own but encodes AMR only through
    # libopencore, which PyAV's wheels dropped in 18.0 (see tests/data/README.md).
    data = AMR_NB_8K.read_bytes()
    assert data.startswith(b"#!AMR\n")
    ref = _demuxed(data, "amr")
    assert np.allclose(decode("amr", data, 8000, target_rate=8000), ref)
    assert len(decode("amr", data, 8000)) == 2 * len(ref)
    # Whole 20 ms frames, the encoder's one flush frame beyond the 3 s clip: nothing lost.
    assert len(ref) % 160 == 0 and 0 < len(ref) - len(CLIP_8K) <= 160


# --- 8 kHz input -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pcm", "wav", "opus", "opu"])
def test_8k_input_becomes_16k(fmt: str) -> None:
    encode = {
        "pcm": lambda x: x.tobytes(),
        "wav": lambda x: wav_bytes(x, 8000),
        "opus": lambda x: ogg_opus_bytes(x, 8000),
        "opu": lambda x: opu_bytes(x, 8000),
    }
    out = decode(fmt, encode[fmt](CLIP_8K), 8000)
    assert abs(len(out) - len(REF)) <= (640 if fmt == "opu" else 0)
    assert aligned_similarity(REF, out)[0] > 0.98


def test_streaming_resampler_matches_one_shot() -> None:
    # No clicks at frame borders: the soxr stream equals resampling the whole signal.
    out = decode("pcm", CLIP_8K.tobytes(), 8000, seed=5)
    assert np.allclose(out, resample(CLIP_8K.astype(np.float32) / 32768, 8000, 16000), atol=1e-6)


def test_duration_ms_counts_input_audio() -> None:
    decoder = make_decoder("pcm", 8000)
    decoder.feed(CLIP_8K[:4000].tobytes() + b"\x01")  # 500 ms and half a sample
    assert decoder.duration_ms == 500
    decoder.finish()
    assert decoder.duration_ms == 500


# --- WAV headers -----------------------------------------------------------------------


def test_wav_stereo_is_downmixed() -> None:
    stereo = np.stack([CLIP, CLIP], axis=1).reshape(-1)
    assert np.allclose(decode("wav", wav_bytes(stereo, channels=2)), REF)


def test_wav_data_size_is_honoured_and_unbounded_size_is_not() -> None:
    trailing = chunk(b"LIST", b"INFOjunk" * 10)
    assert np.array_equal(decode("wav", wav_bytes(CLIP) + trailing), REF)
    unbounded = wav_bytes(CLIP, data_size=0xFFFFFFFF)
    assert np.array_equal(decode("wav", unbounded), REF)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"RIFX" + bytes(100), "Invalid wav header!"),
        (CLIP.tobytes(), "Invalid wav header!"),  # format=wav but no header
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0" + bytes(10), "Invalid wav header!"),  # no fmt
        (wav_bytes(CLIP)[:30], "Invalid wav header!"),  # stream ends in the header
        (wav_bytes(CLIP, extra=chunk(b"LIST", bytes(70_000))), "Too large wav header!"),
    ],
)
def test_bad_wav_header_is_40000009(data: bytes, text: str) -> None:
    error = fails("wav", data)
    assert (error.status, error.status_text) == (40000009, text)


def test_wav_header_rate_must_be_8k_or_16k() -> None:
    assert fails("wav", wav_bytes(CLIP, 44100)).status == 41010101


def test_wav_header_rate_wins_over_declared_rate() -> None:
    assert len(decode("wav", wav_bytes(CLIP_8K, 8000), 16000)) == len(REF)


# --- request parameters ----------------------------------------------------------------


@pytest.mark.parametrize("rate", [0, 11025, 22050, 44100, 48000])
def test_unsupported_sample_rate_is_41010101(rate: int) -> None:
    with pytest.raises(AudioFormatError) as info:
        make_decoder("pcm", rate)
    assert info.value.status == 41010101


@pytest.mark.parametrize("fmt", ["speex", "flac", "PCMA", ""])
def test_unsupported_format_is_41010100(fmt: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        make_decoder(fmt, 16000)
    assert info.value.status == 41010100 and repr(fmt) in info.value.status_text


def test_format_is_case_insensitive() -> None:
    assert isinstance(make_decoder("PCM", 16000), Decoder)


# --- Ogg / opu errors ------------------------------------------------------------------


def test_too_many_opus_packets_per_page_is_40000009() -> None:
    data = ogg_page([OPUS_HEAD], flags=2) + ogg_page([b"OpusTags" + bytes(8)], seq=1)
    data += ogg_page([b"\xfc\xff\xfe"] * 101, seq=2)
    error = fails("opus", data)
    assert (error.status, error.status_text) == (
        40000009,
        "Too many opus packets per page: max=100, actual=101",
    )


def test_ogg_reader_joins_packets_across_pages() -> None:
    big = bytes(range(256)) * 3
    # Page one ends with lacing 255: the 768-byte packet goes on in page two.
    first = struct.pack("<4sBBqIIIB", b"OggS", 0, 2, 0, 1, 0, 0, 3) + bytes([1, 255, 255])
    first += b"a" + big[:510]
    second = ogg_page([big[510:]], serial=1, seq=1, flags=1)
    reader = OggReader()
    packets = [
        p.data
        for frame in split_randomly(first + second, 1, max_size=50)
        for p in reader.feed(frame)
    ]
    assert packets == [b"a", big] and reader.pending == 0


def test_truncated_ogg_is_40000009() -> None:
    data = ogg_opus_bytes(CLIP)
    error = fails("opus", data[: len(data) - 100])
    assert (error.status, error.status_text) == (40000009, "Truncated ogg page at end of stream!")


@pytest.mark.parametrize("seed", range(5))
def test_garbage_as_opus_is_a_clean_error(seed: int) -> None:
    garbage = np.random.default_rng(seed).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert fails("opus", garbage).status == 40000009


def test_ogg_vorbis_as_opus_is_invalid_opus_header() -> None:
    # An Ogg Vorbis stream: its BOS packet is not OpusHead, so no Opus stream is found.
    vorbis = ogg_page([b"\x01vorbis" + bytes(23)], flags=2) + ogg_page([bytes(50)], seq=1)
    error = fails("opus", vorbis)
    assert (error.status, error.status_text) == (40000009, "Invalid opus header!")


@pytest.mark.parametrize("seed", range(5))
def test_garbage_as_opu_never_escapes_as_another_exception(seed: int) -> None:
    garbage = np.random.default_rng(seed).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    decoder = make_decoder("opu", 16000)
    try:
        for frame in split_randomly(garbage, seed):
            decoder.feed(frame)
        decoder.finish()
    except AudioFormatError as error:
        assert error.status in (40000009, 40270003)


def test_opu_length_byte_split_from_its_packet() -> None:
    data = opu_bytes(CLIP[:3200])
    decoder = make_decoder("opu", 16000)
    assert len(decoder.feed(data[:1])) == 0  # only the length byte: wait
    rest = decoder.feed(data[1:])
    assert len(rest) + len(decoder.finish()) >= 3200


def test_truncated_opu_packet_is_40000009() -> None:
    assert fails("opu", opu_bytes(CLIP[:3200])[:-5]).status == 40000009


def test_garbage_as_mp3_is_decode_error() -> None:
    assert fails("mp3", bytes(4000)).status == 40270003


def test_finish_twice_is_a_programming_error() -> None:
    decoder = make_decoder("pcm", 16000)
    decoder.finish()
    with pytest.raises(RuntimeError):
        decoder.feed(b"\0\0")
