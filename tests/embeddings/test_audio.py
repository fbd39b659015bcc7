"""embeddings.audio: decoding, rejection of bad files, loudness, snippet plans, encoding."""

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from embeddings import audio
from embeddings.audio import AudioError

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def tone(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def music(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Stereo (2, T) stand-in for music: two tones under a little noise."""
    noise = np.random.default_rng(seed).normal(0, 0.02, (2, round(seconds * sr)))
    return (np.stack([tone(seconds, sr, 440), tone(seconds, sr, 660)]) + noise).astype(np.float32)


def write_ogg(path: Path, seconds: float = 20.0, sr: int = 44_100) -> Path:
    sf.write(path, music(seconds, sr).T, sr, format="OGG", subtype="VORBIS")
    return path


def test_decode_returns_float32_channels_by_frames_and_the_rate(tmp_path):
    path = write_ogg(tmp_path / "a.ogg", seconds=3.0)
    wave, sr = audio.decode(path)
    assert sr == 44_100
    assert wave.dtype == np.float32
    assert wave.shape == (2, 3 * 44_100)


def test_probe_reports_rate_channels_frames_and_format(tmp_path):
    sf.write(tmp_path / "a.wav", tone(2.0, 22_050), 22_050)
    info = audio.probe(tmp_path / "a.wav")
    assert (info.sample_rate, info.channels, info.frames) == (22_050, 1, 44_100)
    assert info.duration_s == pytest.approx(2.0)
    assert info.format == "WAV"


def test_a_truncated_ogg_is_rejected_rather_than_half_decoded(tmp_path):
    data = write_ogg(tmp_path / "whole.ogg").read_bytes()
    (tmp_path / "cut.ogg").write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(AudioError, match=r"decoding failed at .* s"):
        audio.decode(tmp_path / "cut.ogg")


def test_an_ogg_cut_inside_its_headers_is_not_audio(tmp_path):
    data = write_ogg(tmp_path / "whole.ogg").read_bytes()
    (tmp_path / "stub.ogg").write_bytes(data[:200])
    with pytest.raises(AudioError, match="not an audio file"):
        audio.decode(tmp_path / "stub.ogg")


def test_a_text_file_renamed_mp3_is_not_an_audio_file(tmp_path):
    (tmp_path / "song.mp3").write_text("these are the lyrics, not the song\n" * 50)
    with pytest.raises(AudioError, match="not an audio file"):
        audio.probe(tmp_path / "song.mp3")


def test_an_empty_file_is_rejected_as_empty(tmp_path):
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        audio.decode(tmp_path / "empty.flac")


def test_a_missing_file_is_reported_as_not_found(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        audio.probe(tmp_path / "nowhere.wav")


def test_a_float_wav_containing_nan_is_rejected(tmp_path):
    wave = tone(2.0, 16_000)
    wave[16_000] = np.nan
    sf.write(tmp_path / "nan.wav", wave, 16_000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        audio.decode(tmp_path / "nan.wav")


def test_a_wav_without_frames_is_rejected(tmp_path):
    sf.write(tmp_path / "none.wav", np.zeros(0, dtype=np.float32), 16_000)
    with pytest.raises(AudioError, match="no audio frames"):
        audio.decode(tmp_path / "none.wav")


def test_to_mono_averages_the_channels():
    stereo = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert np.allclose(audio.to_mono(stereo), [0.5, 0.5])
    assert audio.to_mono(stereo[0]).shape == (2,)


def test_resample_keeps_a_tone_at_its_pitch_in_mono_and_stereo():
    x = tone(1.0, 44_100, freq=1000.0)
    mono = audio.resample(x, 44_100, 16_000)
    stereo = audio.resample(np.stack([x, x]), 44_100, 16_000)
    assert mono.shape == (16_000,)
    assert stereo.shape == (2, 16_000)
    assert np.argmax(np.abs(np.fft.rfft(mono))) == 1000  # 1 Hz bins over one second


def test_a_full_scale_1khz_sine_measures_minus_3_lufs():
    # The calibration point of ITU-R BS.1770: 0 dBFS at 1 kHz on one channel is -3.01 LKFS.
    assert audio.loudness_lufs(tone(10.0, 48_000, 1000.0, amp=1.0), 48_000) == pytest.approx(
        -3.01, abs=0.05
    )


def test_a_minus_20_dbfs_stereo_sine_measures_minus_20_lufs_at_44_1_khz():
    x = tone(10.0, 44_100, 1000.0, amp=0.1)
    assert audio.loudness_lufs(np.stack([x, x]), 44_100) == pytest.approx(-20.0, abs=0.05)


def test_silence_measures_minus_70_lufs():
    assert audio.loudness_lufs(np.zeros((2, 48_000)), 48_000) == -70.0


def test_normalise_loudness_reaches_the_target_when_the_peak_allows():
    x = music(10.0, 44_100) * 0.1
    y, gain_db = audio.normalise_loudness(x, 44_100, target_lufs=-18.0)
    assert audio.loudness_lufs(y, 44_100) == pytest.approx(-18.0, abs=0.1)
    assert gain_db > 0
    assert y.dtype == np.float32


def test_normalise_loudness_limits_the_gain_to_keep_the_peak_under_the_ceiling():
    x = tone(10.0, 44_100, amp=0.01)
    x[1000] = 0.9  # one spike: quiet overall, but almost no headroom
    y, gain_db = audio.normalise_loudness(x, 44_100, target_lufs=-18.0, peak_dbfs=-1.0)
    assert 20 * np.log10(np.max(np.abs(y))) == pytest.approx(-1.0, abs=1e-3)
    assert audio.loudness_lufs(y, 44_100) < -25.0
    assert gain_db == pytest.approx(-1.0 - 20 * np.log10(0.9), abs=1e-3)


def test_five_seconds_of_audio_is_too_short_for_a_snippet():
    assert audio.plan_snippets(tone(5.0, 16_000), 16_000) == []


def test_leading_silence_is_skipped_and_windows_follow_without_overlap():
    x = np.concatenate([np.zeros(5 * 16_000, np.float32), tone(40.0, 16_000)])
    plans = audio.plan_snippets(x, 16_000, length_s=15.0)
    assert [(p.start_s, p.duration_s) for p in plans] == [(5.0, 15.0), (20.0, 15.0)]


def test_a_window_that_is_mostly_silent_is_skipped():
    sound, gap = tone(15.0, 16_000), np.zeros(15 * 16_000, np.float32)
    plans = audio.plan_snippets(np.concatenate([sound, gap, sound]), 16_000, length_s=15.0)
    assert [p.start_s for p in plans] == [0.0, 30.0]


def test_a_track_between_the_minimum_and_the_length_gives_one_shorter_snippet():
    x = np.concatenate([np.zeros(16_000, np.float32), tone(12.0, 16_000)])
    plans = audio.plan_snippets(x, 16_000, length_s=15.0)
    assert [(p.start_s, p.duration_s) for p in plans] == [(1.0, 12.0)]


def test_snippet_lengths_outside_10_to_20_seconds_are_refused():
    with pytest.raises(ValueError):
        audio.plan_snippets(tone(60.0, 16_000), 16_000, length_s=25.0)
    with pytest.raises(ValueError):
        audio.plan_snippets(tone(60.0, 16_000), 16_000, length_s=5.0)


def test_the_browser_copy_is_ogg_at_its_own_rate_and_keeps_stereo(tmp_path):
    audio.encode_browser(music(3.0, 44_100), 44_100, tmp_path / "b.ogg")
    info = audio.probe(tmp_path / "b.ogg")
    assert (info.format, info.sample_rate, info.channels) == ("OGG", 44_100, 2)
    assert info.subtype in {"VORBIS", "OPUS"}
    assert info.duration_s == pytest.approx(3.0, abs=0.05)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_a_browser_copy_above_48khz_is_resampled_to_48khz(tmp_path):
    audio.encode_browser(music(1.0, 96_000), 96_000, tmp_path / "hi.ogg")
    assert audio.probe(tmp_path / "hi.ogg").sample_rate == 48_000


def test_the_browser_copy_folds_surround_to_stereo_and_keeps_mono(tmp_path):
    six = np.tile(tone(2.0, 48_000), (6, 1))
    audio.encode_browser(six, 48_000, tmp_path / "six.ogg")
    audio.encode_browser(tone(2.0, 48_000), 48_000, tmp_path / "one.ogg")
    assert audio.probe(tmp_path / "six.ogg").channels == 2
    assert audio.probe(tmp_path / "one.ogg").channels == 1


def test_the_analysis_copy_round_trips_within_16_bit_precision(tmp_path):
    x = tone(3.0, 16_000)
    audio.encode_analysis(x, tmp_path / "a.flac")
    info = audio.probe(tmp_path / "a.flac")
    assert (info.format, info.subtype, info.sample_rate) == ("FLAC", "PCM_16", 16_000)
    y = audio.load_analysis(tmp_path / "a.flac")
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.max(np.abs(y - x)) < 2**-14


def test_load_analysis_refuses_a_file_at_another_rate(tmp_path):
    sf.write(tmp_path / "a.flac", tone(2.0, 22_050), 22_050)
    with pytest.raises(AudioError, match="16000 Hz"):
        audio.load_analysis(tmp_path / "a.flac")


def test_sha256_file_matches_hashing_the_whole_file(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    assert audio.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.corpus
def test_a_real_ogg_from_the_shared_corpus_decodes_as_its_manifest_says():
    if not (CORPUS / "MANIFEST.csv").exists():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    with open(CORPUS / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        row = min(csv.DictReader(f), key=lambda r: float(r["duration_s"]))
    wave, sr = audio.decode(CORPUS / row["path"])
    assert sr == int(row["sample_rate"])
    assert wave.shape[0] == int(row["channels"])
    assert wave.shape[1] / sr == pytest.approx(float(row["duration_s"]), abs=0.05)
    assert -40.0 < audio.loudness_lufs(wave, sr) < 0.0


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype", "sr"),
    [
        (".opus", "OGG", "OPUS", 48_000),
        (".mp3", "MP3", "MPEG_LAYER_III", 44_100),
        (".flac", "FLAC", "PCM_16", 44_100),
        (".wav", "WAV", "PCM_16", 22_050),
        (".ogg", "OGG", "VORBIS", 32_000),
    ],
)
def test_every_supported_format_decodes(tmp_path, suffix, fmt, subtype, sr):
    path = tmp_path / f"clip{suffix}"
    sf.write(path, music(3.0, sr).T, sr, format=fmt, subtype=subtype)
    x, rate = audio.decode(path)
    assert rate == sr
    assert x.shape[0] == 2
    assert x.shape[1] / sr == pytest.approx(3.0, abs=0.1)
