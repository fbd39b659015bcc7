"""mel-stats: the training-free baseline embedding every learned model must beat.

Summary statistics of one snippet: log-mel mean and spread per band, spectral shape,
loudness, and onset (rhythm) statistics. No learned weights, so it is always available.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torchaudio

NAME = "mel-stats"
VERSION = 1
SAMPLE_RATE = 16_000  # Hz; the analysis rate of embeddings.audio
N_FFT = 1024  # samples, 64 ms
HOP = 320  # samples, 20 ms
N_MELS = 64
FRAME_RATE = SAMPLE_RATE / HOP  # frames per second
LOG_FLOOR = 1e-6  # power; keeps log of digital silence finite
RMS_FLOOR_DB = -100.0  # dBFS
ROLLOFF_FRACTION = 0.85  # share of spectral power below the rolloff frequency
TEMPO_MIN_BPM, TEMPO_MAX_BPM = 60.0, 200.0
DIM = 2 * N_MELS + 8 + 2 + 4

_SPECTROGRAM = torchaudio.transforms.Spectrogram(n_fft=N_FFT, hop_length=HOP, power=2.0)
_MEL_SCALE = torchaudio.transforms.MelScale(
    n_mels=N_MELS, sample_rate=SAMPLE_RATE, f_min=0.0, f_max=SAMPLE_RATE / 2, n_stft=N_FFT // 2 + 1
)
_FREQS_KHZ = np.linspace(0.0, SAMPLE_RATE / 2000, N_FFT // 2 + 1, dtype=np.float32)


def _power(x16k: np.ndarray) -> torch.Tensor:
    x = np.asarray(x16k, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono audio (T,), got shape {x.shape}")
    if len(x) < N_FFT:
        raise ValueError(
            f"need at least {N_FFT} samples ({N_FFT / SAMPLE_RATE:.3f} s), got {len(x)}"
        )
    with torch.no_grad():
        return _SPECTROGRAM(torch.from_numpy(np.ascontiguousarray(x)))


def _log_mel_from_power(power: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.log(torch.clamp(_MEL_SCALE(power), min=LOG_FLOOR)).numpy()


def log_mel(x16k: np.ndarray) -> np.ndarray:
    """Natural-log mel power spectrogram (N_MELS, frames) of 16 kHz mono audio, 20 ms hop."""
    return _log_mel_from_power(_power(x16k))


def extract(x16k: np.ndarray) -> np.ndarray:
    """The mel-stats vector (DIM,) float32 of 16 kHz mono audio; deterministic.

    Layout: log-mel mean (64), log-mel std (64); spectral centroid, bandwidth, flatness
    and rolloff, each mean then std (8; frequencies in kHz); frame RMS mean and std in
    dBFS (2); onset-strength mean and std, tempo in BPM and its strength (4).
    """
    power_t = _power(x16k)
    mel = _log_mel_from_power(power_t)
    power = power_t.numpy()
    features = [mel.mean(axis=1), mel.std(axis=1), _spectral_shape(power)]
    features.append(_rms_db(np.asarray(x16k, dtype=np.float32)))
    features.append(_onset_stats(mel))
    out = np.concatenate(features).astype(np.float32)
    assert out.shape == (DIM,)
    return out


def _spectral_shape(power: np.ndarray) -> np.ndarray:
    total = power.sum(axis=0)
    share = power / np.maximum(total, 1e-12)  # silent frames get zero weight everywhere
    centroid = _FREQS_KHZ @ share
    bandwidth = np.sqrt(np.maximum(((_FREQS_KHZ[:, None] - centroid) ** 2 * share).sum(axis=0), 0))
    log_power = np.log(power + LOG_FLOOR)
    flatness = np.exp(log_power.mean(axis=0)) / (power.mean(axis=0) + LOG_FLOOR)
    rolloff = _FREQS_KHZ[np.argmax(np.cumsum(share, axis=0) >= ROLLOFF_FRACTION, axis=0)]
    return np.array(
        [f(v) for v in (centroid, bandwidth, flatness, rolloff) for f in (np.mean, np.std)]
    )


def _rms_db(x: np.ndarray) -> np.ndarray:
    # Same centred 1024-sample frames as the spectrogram.
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    rms = np.sqrt(np.einsum("ij,ij->i", frames, frames) / N_FFT)
    db = 20 * np.log10(np.maximum(rms, 10 ** (RMS_FLOOR_DB / 20)))
    return np.array([db.mean(), db.std()])


def _onset_stats(mel: np.ndarray) -> np.ndarray:
    """Mean and std of spectral flux, and the strongest beat period of its autocorrelation."""
    flux = np.maximum(np.diff(mel, axis=1), 0.0).mean(axis=0)
    env = flux - flux.mean()
    lag_min = math.ceil(60 * FRAME_RATE / TEMPO_MAX_BPM)
    lag_max = math.floor(60 * FRAME_RATE / TEMPO_MIN_BPM)
    tempo_bpm, strength = 0.0, 0.0  # too short or too flat to say
    if len(env) > lag_max + 1:
        n = 1 << (2 * len(env) - 1).bit_length()
        spectrum = np.fft.rfft(env, n)
        ac = np.fft.irfft(spectrum * spectrum.conj(), n)[: lag_max + 2]
        if ac[0] > 1e-12:
            lag = lag_min + int(np.argmax(ac[lag_min : lag_max + 1]))
            # A parabola through the peak refines the 20 ms lag grid (±7% BPM steps at 200).
            left, mid, right = ac[lag - 1], ac[lag], ac[lag + 1]
            curve = left - 2 * mid + right
            shift = 0.5 * (left - right) / curve if curve < 0 else 0.0
            tempo_bpm = 60 * FRAME_RATE / (lag + float(np.clip(shift, -0.5, 0.5)))
            strength = float(mid / ac[0])
    return np.array([flux.mean(), flux.std(), tempo_bpm, strength])
