"""Transitions: clip plans, tempo and beat phase, and renderings of clip X flowing into clip Y.

Pure numpy/torch (no Django), like embeddings.audio. A rendering lays X and Y on one timeline
that meets at the seam: X plays up to the seam, Y from it. The three styles differ only in
the equal-power mix gains, so one pair rendered in every style uses the same loudness gains
and beat shift, and its ratings stay comparable across styles.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchaudio
import torchaudio.functional as AF

from embeddings.audio import encode_browser, loudness_lufs, normalise_loudness

RENDER_VERSION = 1  # bump when a rendering of the same inputs would sound different
STYLES = ("hard_cut", "crossfade", "overlay")
Style = Literal["hard_cut", "crossfade", "overlay"]

CLIP_S = 25.0  # s
CLIP_OVERLAP_S = 5.0  # s
EDGE_S = 4.0  # s, length of a clip's opening and of its ending
EDGE_RANGE_S = (3.0, 5.0)  # s, the opening/ending lengths the issue allows
MIN_CLIP_S = 10.0  # s, a shorter last clip is dropped
MS = 1000  # clip times are planned in whole milliseconds, so no float drift accumulates

MASK_RATE_HZ = 10.0  # overlay mask values per second
TEMPO_RATE = 16_000  # Hz, onset analysis rate (the analysis rate of embeddings.audio)
ONSET_FFT = 512  # samples, 32 ms
ONSET_HOP = 160  # samples, 10 ms: the grid beat phases are estimated on
ONSET_FPS = TEMPO_RATE / ONSET_HOP  # onset frames per second
ONSET_MELS = 40
LOG_FLOOR = 1e-6  # mel power; keeps log of digital silence finite
TEMPO_MIN_BPM, TEMPO_MAX_BPM = 60.0, 200.0
TEMPO_PRIOR_BPM, TEMPO_PRIOR_OCTAVES = 120.0, 1.0  # prefer ~120 BPM between octave twins
PHASE_STEP = 0.1  # onset frames (1 ms) between candidate beat phases


@dataclass(frozen=True)
class Span:
    start_s: float  # s from the start of the track
    end_s: float  # s

    @property
    def duration_s(self) -> float:
        return round(self.end_s - self.start_s, 3)


@dataclass(frozen=True)
class ClipPlan:
    index: int  # order in the track, from 0
    start_s: float  # s from the start of the track
    duration_s: float  # s
    opening: Span  # its first seconds
    ending: Span  # its last seconds: the context a transition model reads

    @property
    def end_s(self) -> float:
        return round(self.start_s + self.duration_s, 3)


@dataclass(frozen=True)
class Continuation:
    span: Span  # track time; starts exactly where the context ends
    clip_index: int | None  # the clip it lies in (normally the next); None: past every clip
    offset_s: float | None  # s into that clip where the span starts (the overlap it skips)


def plan_clips(
    duration_s: float,
    clip_s: float = CLIP_S,
    overlap_s: float = CLIP_OVERLAP_S,
    ending_s: float = EDGE_S,
    min_clip_s: float = MIN_CLIP_S,
) -> list[ClipPlan]:
    """Split a track into ordered clips of `clip_s` overlapping by `overlap_s`.

    Clips start every `clip_s - overlap_s`; after the last whole clip, the rest of the track
    makes one shorter clip when it lasts at least `min_clip_s`. Each clip's opening and
    ending last `ending_s` (3-5 s).
    """
    lo, hi = EDGE_RANGE_S
    if not lo <= ending_s <= hi:
        raise ValueError(f"ending_s must be {lo}-{hi} s: {ending_s}")
    if not 0 <= overlap_s < clip_s:
        raise ValueError(f"overlap_s must be in [0, clip_s): {overlap_s}")
    if not ending_s <= min_clip_s <= clip_s:
        raise ValueError(f"min_clip_s must be in [ending_s, clip_s]: {min_clip_s}")
    total, length, edge = round(duration_s * MS), round(clip_s * MS), round(ending_s * MS)
    hop, minimum = length - round(overlap_s * MS), round(min_clip_s * MS)
    starts = list(range(0, total - length + 1, hop))
    rest = starts[-1] + hop if starts else 0
    spans = [(a, length) for a in starts]
    if total - rest >= minimum:
        spans.append((rest, total - rest))
    return [
        ClipPlan(
            i,
            a / MS,
            n / MS,
            Span(a / MS, (a + edge) / MS),
            Span((a + n - edge) / MS, (a + n) / MS),
        )
        for i, (a, n) in enumerate(spans)
    ]


def true_continuation(
    clips: list[ClipPlan], i: int, track_s: float | None = None
) -> Continuation | None:
    """What really followed clip i's ending: the next `ending_s` of the track, from its end.

    With overlapping clips no clip starts exactly there, so the continuation is the span
    inside the next clip that skips the overlap (no overlap with the context). Past the
    last clip it is still returned, without a clip, when `track_s` (the track's length)
    shows the track goes on long enough (as training.transition_net counts it); else None.
    """
    ctx = clips[i]
    want = Span(ctx.end_s, round(ctx.end_s + ctx.ending.duration_s, 3))
    for clip in clips[i + 1 :]:
        if clip.start_s <= want.start_s and want.end_s <= clip.end_s:
            return Continuation(want, clip.index, round(want.start_s - clip.start_s, 3))
    if track_s is not None and want.end_s <= track_s:
        return Continuation(want, None, None)
    return None


@dataclass(frozen=True)
class Tempo:
    bpm: float  # 0 when nothing periodic was found
    confidence: float  # normalised onset autocorrelation at the beat period, in [0, 1]
    phase_s: float  # s from the start of the analysed audio to its first beat


@dataclass(frozen=True)
class RenderConfig:
    before_s: float = 8.0  # s of X before the seam
    after_s: float = 8.0  # s of Y after the seam
    crossfade_s: float = 4.0  # s, centred on the seam
    target_lufs: float = -18.0  # LUFS, both sides are brought here
    peak_dbfs: float = -1.0  # dBFS, sample-peak ceiling of each side and of the mix
    align_beats: bool = True
    tempo_window_s: float = 8.0  # s of each side analysed for tempo, next to the seam
    min_confidence: float = 0.3  # below it a tempo is a guess; noise scores about 0.1
    tempo_tolerance: float = 0.04  # relative difference still called "the same tempo"
    min_shift_s: float = 0.015  # s; smaller shifts are estimation noise, not misalignment

    def __post_init__(self) -> None:
        # Each side needs a second of its own beyond the fade to measure its loudness.
        if min(self.before_s, self.after_s) < 2.0:
            raise ValueError(f"before_s and after_s must be at least 2 s: {self}")
        if self.crossfade_s <= 0 or self.tempo_window_s <= 0:
            raise ValueError(f"crossfade_s and tempo_window_s must be positive: {self}")


@dataclass
class Rendering:
    audio: np.ndarray  # float32 (T,) or (C, T)
    sample_rate: int  # Hz
    style: Style
    seam_s: float  # s into the rendering where X hands over to Y
    duration_s: float  # s, before_s + after_s
    x_start_s: float  # s into X's audio where the rendering starts
    y_start_s: float  # s into Y's audio where the rendering starts (beat shift included)
    gain_x_db: float  # dB, loudness gain applied to X
    gain_y_db: float  # dB
    lufs_x: float  # LUFS of X before the crossfade zone, measured before the gain
    lufs_y: float  # LUFS of Y after the crossfade zone, measured before the gain
    limited_x: bool  # the peak ceiling kept X below the target
    limited_y: bool
    mix_gain_db: float  # dB (≤ 0) on the mix, when the sum of both sides would clip
    curve_x: np.ndarray  # float32 (T,) amplitude gain of X; curve_x² + curve_y² = 1
    curve_y: np.ndarray  # float32 (T,)
    tempo_x: Tempo  # of X's last tempo_window_s before the seam
    tempo_y: Tempo  # of Y's first tempo_window_s after the seam, before any shift
    beat_shift_s: float  # s Y was delayed by (negative: played earlier) to meet X's beats
    aligned: bool
    alignment_note: str  # how Y was aligned, or why it was not
    crossfade_s: float | None = None  # s, for "crossfade"
    mask: np.ndarray | None = None  # float32 Y share at MASK_RATE_HZ, for "overlay"
    mask_rate_hz: float = MASK_RATE_HZ
    seed: int = 0
    version: int = RENDER_VERSION


def estimate_tempo(x: np.ndarray, sr: int) -> Tempo:
    """Tempo, confidence and beat phase of (T,) or (C, T) audio from its onset strength.

    The onset strength is the log-mel spectral flux on a 10 ms grid. Its autocorrelation
    peak in 60-200 BPM (weighted towards 120 to settle octave twins) gives the period; the
    comb of that period that collects the most onset strength gives the phase.
    """
    env = _onset_envelope(x, sr)
    n = len(env)
    lag_min = math.ceil(60 * ONSET_FPS / TEMPO_MAX_BPM)
    lag_max = math.floor(60 * ONSET_FPS / TEMPO_MIN_BPM)
    if n < 2 * lag_max + 2:  # fewer than two slow beats: nothing to measure
        return Tempo(0.0, 0.0, 0.0)
    # Subtracting a 1 s moving average drops loudness swells, which would look periodic at
    # every lag; a window of at least one beat period keeps the beats themselves.
    detrended = env - np.convolve(env, np.ones(lag_max) / lag_max, mode="same")
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(detrended, size)
    ac = np.fft.irfft(spectrum * spectrum.conj(), size)[: lag_max + 2]
    if ac[0] <= 1e-12:
        return Tempo(0.0, 0.0, 0.0)
    ac = ac / (n - np.arange(lag_max + 2)) / (ac[0] / n)  # unbiased, 1 at lag 0
    lags = np.arange(lag_min, lag_max + 1)
    octaves = np.log2(60 * ONSET_FPS / lags / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES
    lag = int(lags[np.argmax(ac[lags] * np.exp(-0.5 * octaves**2))])
    left, mid, right = ac[lag - 1], ac[lag], ac[lag + 1]
    curve = left - 2 * mid + right
    period = lag + (float(np.clip(0.5 * (left - right) / curve, -0.5, 0.5)) if curve < 0 else 0)
    phases = np.arange(0.0, period, PHASE_STEP)
    beats = np.arange(int((n - 1 - period) // period) + 1) * period
    comb = np.interp(phases[:, None] + beats[None, :], np.arange(n), env).sum(axis=1)
    return Tempo(
        bpm=round(60 * ONSET_FPS / period, 2),
        confidence=round(float(np.clip(mid, 0.0, 1.0)), 3),
        phase_s=round(float(phases[np.argmax(comb)]) / ONSET_FPS, 4),
    )


def beat_shift(
    tempo_x: Tempo, tempo_y: Tempo, x_beat_ref_s: float, config: RenderConfig
) -> tuple[float, str]:
    """The delay of Y (s) that puts its beats on X's grid, and a note saying why.

    `x_beat_ref_s` is where X's analysed window starts, in seconds relative to where Y's
    starts (its seam). A shift of 0 with a reason means no alignment.
    """
    low = min(tempo_x.confidence, tempo_y.confidence)
    if low < config.min_confidence or min(tempo_x.bpm, tempo_y.bpm) <= 0:
        return 0.0, f"not aligned: tempo confidence {low:.2f} < {config.min_confidence:.2f}"
    ratio = max(tempo_x.bpm, tempo_y.bpm) / min(tempo_x.bpm, tempo_y.bpm)
    tol = config.tempo_tolerance
    if abs(ratio - 1) <= tol:
        period = 60 / tempo_x.bpm  # X's grid is the one the listener already hears
    elif abs(ratio / 2 - 1) <= tol:
        # Every beat of the slower side lands on every other beat of the faster one.
        period = 60 / max(tempo_x.bpm, tempo_y.bpm)
    else:
        return 0.0, (
            f"not aligned: tempos {tempo_x.bpm:.1f} and {tempo_y.bpm:.1f} BPM "
            f"are neither equal nor 2:1 within {tol:.0%}"
        )
    wanted = (x_beat_ref_s + tempo_x.phase_s - tempo_y.phase_s) % period
    shift = wanted - period if wanted >= period / 2 else wanted
    if abs(shift) < config.min_shift_s:
        return 0.0, f"already aligned (off by {shift * 1000:+.0f} ms) at {60 / period:.1f} BPM"
    return shift, f"aligned: Y shifted {shift * 1000:+.0f} ms onto {60 / period:.1f} BPM beats"


def default_mask(duration_s: float, seam_s: float, seed: int = 0) -> np.ndarray:
    """A plausible overlay mask (Y's share at MASK_RATE_HZ): X alone, both, then Y alone.

    Two smooth steps around the seam (0 to a plateau near 0.5, then to 1) with a slow random
    wobble on the plateau, so both clips play together for a few seconds like a mashup.
    """
    rng = np.random.default_rng(seed)
    t = (np.arange(round(duration_s * MASK_RATE_HZ)) + 0.5) / MASK_RATE_HZ
    half_hold = rng.uniform(1.0, 2.5)  # s either side of the seam where both play
    plateau = rng.uniform(0.35, 0.65)
    width = rng.uniform(1.0, 2.0)  # s per step
    centre = seam_s + rng.uniform(-0.5, 0.5)
    up = _smoothstep((t - (centre - half_hold - width / 2)) / width)
    on = _smoothstep((t - (centre + half_hold - width / 2)) / width)
    wobble = 0.1 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))
    mask = plateau * up + (1 - plateau) * on + wobble * up * (1 - on)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def render_transition(
    x: np.ndarray,
    y: np.ndarray,
    sr: int,
    style: Style,
    *,
    x_seam_s: float | None = None,
    y_seam_s: float = 0.0,
    config: RenderConfig | None = None,
    mask: np.ndarray | None = None,
    seed: int = 0,
) -> Rendering:
    """Render X's last `before_s` before `x_seam_s` flowing into Y from `y_seam_s`.

    `x` and `y` are (T,) or (C, T) float audio at `sr`, typically whole tracks with the seam
    at the end of clip X and the start of clip Y (or of its true continuation), so a fade
    has real audio on both sides; where a track has none, silence stands in. The default
    `x_seam_s` is the end of `x`. `mask` (overlay only) is Y's share at MASK_RATE_HZ, one
    value per 0.1 s of the rendering; without it `default_mask(..., seed)` is used.
    """
    cfg = config or RenderConfig()
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}: {style!r}")
    if mask is not None and style != "overlay":
        raise ValueError("a mask applies only to the overlay style")
    x, y = _match_channels(np.asarray(x, np.float32), np.asarray(y, np.float32))
    x_seam_s = x.shape[-1] / sr if x_seam_s is None else x_seam_s
    seam, total = round(cfg.before_s * sr), round((cfg.before_s + cfg.after_s) * sr)
    x_seam, y_seam, win = round(x_seam_s * sr), round(y_seam_s * sr), round(cfg.tempo_window_s * sr)

    tempo_x = estimate_tempo(_window(x, x_seam - win, win), sr)
    tempo_y = estimate_tempo(_window(y, y_seam, win), sr)
    shift_s, note = 0.0, "not aligned: beat alignment is off"
    if cfg.align_beats:
        shift_s, note = beat_shift(tempo_x, tempo_y, -cfg.tempo_window_s, cfg)
    x_start, y_start = x_seam - seam, y_seam - round(shift_s * sr) - seam
    xs, ys = _window(x, x_start, total), _window(y, y_start, total)

    # Each side is measured where it plays alone in a crossfade, next to the seam, where a
    # jump in loudness would be heard; every style then shares the same gains.
    half_fade = min(round(cfg.crossfade_s * sr / 2), seam - sr, total - seam - sr)
    lufs_x = loudness_lufs(xs[..., : seam - half_fade], sr)
    lufs_y = loudness_lufs(ys[..., seam + half_fade :], sr)
    xs, gain_x = normalise_loudness(xs, sr, cfg.target_lufs, cfg.peak_dbfs, lufs=lufs_x)
    ys, gain_y = normalise_loudness(ys, sr, cfg.target_lufs, cfg.peak_dbfs, lufs=lufs_y)

    t = np.arange(total) / sr
    if style == "hard_cut":
        share = (np.arange(total) >= seam).astype(np.float64)
    elif style == "crossfade":
        share = np.clip((t - (seam / sr - cfg.crossfade_s / 2)) / cfg.crossfade_s, 0.0, 1.0)
    else:
        n_mask = round(total / sr * MASK_RATE_HZ)
        if mask is None:
            mask = default_mask(total / sr, seam / sr, seed)
        mask = np.asarray(mask, dtype=np.float32)
        if mask.shape != (n_mask,) or not np.all((mask >= 0) & (mask <= 1)):
            raise ValueError(f"mask must be {n_mask} values in [0, 1], got shape {mask.shape}")
        # Value k holds at the centre of the k-th 0.1 s; samples between are interpolated.
        share = np.interp(t, (np.arange(n_mask) + 0.5) / MASK_RATE_HZ, mask)
    curve_x = np.cos(0.5 * np.pi * share).astype(np.float32)
    curve_y = np.sin(0.5 * np.pi * share).astype(np.float32)
    if style == "hard_cut":  # exact zeros and ones, so the cut copies samples bit for bit
        curve_x, curve_y = 1.0 - share.astype(np.float32), share.astype(np.float32)
    out = xs * curve_x + ys * curve_y

    # Two uncorrelated sides at -3 dB each can peak above either; pull the whole mix down.
    peak, ceiling = float(np.max(np.abs(out), initial=0.0)), 10 ** (cfg.peak_dbfs / 20)
    # The tolerance keeps float rounding in either side's own limit from touching the mix.
    mix_gain_db = 20 * math.log10(ceiling / peak) if peak > ceiling * (1 + 1e-5) else 0.0
    if mix_gain_db < 0:
        out *= np.float32(10 ** (mix_gain_db / 20))
    return Rendering(
        audio=out.astype(np.float32),
        sample_rate=sr,
        style=style,
        seam_s=seam / sr,
        duration_s=total / sr,
        x_start_s=x_start / sr,
        y_start_s=y_start / sr,
        gain_x_db=gain_x,
        gain_y_db=gain_y,
        lufs_x=lufs_x,
        lufs_y=lufs_y,
        limited_x=gain_x < cfg.target_lufs - lufs_x - 1e-6,
        limited_y=gain_y < cfg.target_lufs - lufs_y - 1e-6,
        mix_gain_db=mix_gain_db,
        curve_x=curve_x,
        curve_y=curve_y,
        tempo_x=tempo_x,
        tempo_y=tempo_y,
        beat_shift_s=round(shift_s * sr) / sr,
        aligned=shift_s != 0.0,
        alignment_note=note,
        crossfade_s=cfg.crossfade_s if style == "crossfade" else None,
        mask=mask if style == "overlay" else None,
        seed=seed,
    )


def write_rendering(rendering: Rendering, path: Path | str) -> None:
    """Write a rendering as browser-playable Ogg Vorbis (atomically, via encode_browser)."""
    encode_browser(rendering.audio, rendering.sample_rate, path)


def _onset_envelope(x: np.ndarray, sr: int) -> np.ndarray:
    """Half-wave rectified log-mel flux per 10 ms frame, frame k at k * 10 ms."""
    mono = np.asarray(x, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if len(mono) * TEMPO_RATE < ONSET_FFT * sr:
        return np.zeros(0)
    wave = torch.from_numpy(np.ascontiguousarray(mono))
    with torch.no_grad():
        wave = _resampler(sr)(wave) if sr != TEMPO_RATE else wave
        spec = torch.stft(
            wave, ONSET_FFT, ONSET_HOP, window=torch.hann_window(ONSET_FFT), return_complex=True
        )
        mel = torch.log(_mel_bank().T @ spec.abs().square() + LOG_FLOOR).numpy()
    flux = np.maximum(np.diff(mel, axis=1), 0.0).mean(axis=0)
    return np.concatenate([[0.0], flux]).astype(np.float64)


@functools.cache
def _resampler(sr: int) -> torchaudio.transforms.Resample:
    # The module keeps its sinc kernel; building it is most of the cost of one call at 44.1 kHz.
    return torchaudio.transforms.Resample(sr, TEMPO_RATE)


@functools.cache
def _mel_bank() -> torch.Tensor:
    return AF.melscale_fbanks(ONSET_FFT // 2 + 1, 30.0, TEMPO_RATE / 2, ONSET_MELS, TEMPO_RATE)


def _window(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """Samples [start, start + n) of (..., T) audio, with silence where there are none."""
    out = np.zeros((*x.shape[:-1], n), dtype=np.float32)
    lo, hi = max(start, 0), min(start + n, x.shape[-1])
    if hi > lo:
        out[..., lo - start : hi - start] = x[..., lo:hi]
    return out


def _match_channels(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mono against stereo plays as stereo: the mono side goes to both channels."""
    if x.ndim == y.ndim and x.shape[:-1] == y.shape[:-1]:
        return x, y
    x2, y2 = np.atleast_2d(x), np.atleast_2d(y)
    if {len(x2), len(y2)} != {1, 2}:
        raise ValueError(f"cannot mix {x.shape[:-1]} with {y.shape[:-1]} channels")
    return np.broadcast_to(x2, (2, x2.shape[-1])), np.broadcast_to(y2, (2, y2.shape[-1]))


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)
