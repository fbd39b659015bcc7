"""embeddings.extractors.mel_stats: the training-free baseline vector."""

import numpy as np
import pytest

from embeddings.extractors import mel_stats

SR = mel_stats.SAMPLE_RATE
CENTROID = 2 * mel_stats.N_MELS  # mean spectral centroid, kHz
RMS_DB = CENTROID + 8  # mean frame RMS, dBFS
TEMPO = mel_stats.DIM - 2  # BPM, then its strength


def tone(seconds: float, freq: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def clicks(seconds: float, bpm: float) -> np.ndarray:
    x = np.zeros(round(seconds * SR), np.float32)
    x[:: round(SR * 60 / bpm)] = 1.0
    return np.convolve(x, np.hanning(32).astype(np.float32), mode="same")


def noisy_music(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return tone(seconds, 330.0) + rng.normal(0, 0.05, round(seconds * SR)).astype(np.float32)


def test_extract_returns_dim_finite_float32_values():
    vector = mel_stats.extract(noisy_music(15.0, 0))
    assert vector.shape == (mel_stats.DIM,) == (142,)
    assert vector.dtype == np.float32
    assert np.isfinite(vector).all()


def test_digital_silence_gives_a_finite_vector():
    vector = mel_stats.extract(np.zeros(15 * SR, np.float32))
    assert np.isfinite(vector).all()
    assert vector[RMS_DB] == pytest.approx(mel_stats.RMS_FLOOR_DB)


def test_extract_is_deterministic():
    x = noisy_music(15.0, 1)
    assert np.array_equal(mel_stats.extract(x), mel_stats.extract(x.copy()))


def test_log_mel_has_64_bands_and_a_frame_every_20_ms():
    spectrogram = mel_stats.log_mel(noisy_music(15.0, 2))
    assert spectrogram.shape == (64, 15 * 50 + 1)
    assert spectrogram.min() >= np.log(mel_stats.LOG_FLOOR) - 1e-6


def test_a_brighter_tone_has_a_higher_spectral_centroid():
    dull = mel_stats.extract(tone(10.0, 300.0))
    bright = mel_stats.extract(tone(10.0, 3000.0))
    assert dull[CENTROID] == pytest.approx(0.3, abs=0.05)
    assert bright[CENTROID] == pytest.approx(3.0, abs=0.1)


def test_a_louder_signal_has_a_higher_rms_by_the_gain_in_db():
    quiet = mel_stats.extract(tone(10.0, 440.0, amp=0.01))
    loud = mel_stats.extract(tone(10.0, 440.0, amp=0.1))
    assert loud[RMS_DB] - quiet[RMS_DB] == pytest.approx(20.0, abs=0.1)


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_the_tempo_feature_finds_the_beat_of_a_click_track(bpm):
    vector = mel_stats.extract(clicks(15.0, bpm))
    assert vector[TEMPO] == pytest.approx(bpm, rel=0.03)
    assert vector[TEMPO + 1] > 0.5


def test_a_steady_tone_has_no_strong_beat():
    assert mel_stats.extract(tone(15.0, 440.0))[TEMPO + 1] < 0.2


def test_extract_refuses_stereo_and_too_short_input():
    with pytest.raises(ValueError, match="mono"):
        mel_stats.extract(np.zeros((2, SR), np.float32))
    with pytest.raises(ValueError, match="at least"):
        mel_stats.extract(np.zeros(100, np.float32))
