"""embeddings.transitions: clip plans, tempo and beat alignment, rendering the three styles."""

import csv
import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from embeddings import audio
from embeddings import transitions as tr
from embeddings.transitions import RenderConfig, Tempo

SR = 44_100  # Hz: the corpus tracks' own rate (no resampling), and listeners hear renderings
# at full bandwidth; 16 kHz would cut everything above 8 kHz from what they judge.
X_TRACK = "supertuxkart/ravenbridge_mansion.ogg"  # ~140 BPM, a clear beat
Y_TRACK = "supertuxkart/West.ogg"  # another track, also ~140 BPM: beat alignment applies


def clicks(seconds: float, first_s: float, period_s: float = 0.5, sr: int = SR) -> np.ndarray:
    """A click track: short decaying noise bursts every `period_s` from `first_s`."""
    x = np.zeros(round(seconds * sr), dtype=np.float32)
    burst = np.random.default_rng(0).normal(0, 0.5, 200) * np.exp(-np.arange(200) / 40)
    for t in np.arange(first_s, seconds - 0.01, period_s):
        x[round(t * sr) : round(t * sr) + 200] += burst.astype(np.float32)
    return x


def noise(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, round(seconds * sr)).astype(np.float32)


@functools.cache
def mono_track(path: Path) -> np.ndarray:
    wave, sr = audio.decode(path)
    assert sr == SR
    return audio.to_mono(wave)


@pytest.fixture
def pair(corpus: Path) -> tuple[np.ndarray, float, np.ndarray, float]:
    """X and Y as whole mono tracks, with the seam at the end of X's clip 1 and the start of
    Y's clip 1, as the Django side would render a candidate pair."""
    with open(corpus / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        listed = {row["path"]: row for row in csv.DictReader(f)}
    for name in (X_TRACK, Y_TRACK):
        if name not in listed or not (corpus / name).is_file():
            pytest.skip(f"{name} is not in the corpus at {corpus}")
        assert int(listed[name]["sample_rate"]) == SR
    x, y = mono_track(corpus / X_TRACK), mono_track(corpus / Y_TRACK)
    x_clip = tr.plan_clips(len(x) / SR)[1]
    y_clip = tr.plan_clips(len(y) / SR)[1]
    return x, x_clip.end_s, y, y_clip.start_s


def render(pair, style: tr.Style, **kwargs) -> tr.Rendering:
    x, x_seam_s, y, y_seam_s = pair
    return tr.render_transition(x, y, SR, style, x_seam_s=x_seam_s, y_seam_s=y_seam_s, **kwargs)


def source(track: np.ndarray, start_s: float, n: int, gain_db: float) -> np.ndarray:
    """What a rendering should hold of a track: n samples from start_s, after the gain."""
    start = round(start_s * SR)
    assert start >= 0 and start + n <= len(track)
    return track[start : start + n] * np.float32(10 ** (gain_db / 20))


def lufs(r: tr.Rendering, from_s: float, to_s: float) -> float:
    return audio.loudness_lufs(r.audio[round(from_s * SR) : round(to_s * SR)], SR)


# Clip plans


def test_a_track_splits_into_25_s_clips_overlapping_by_5_s_with_a_last_partial_clip():
    clips = tr.plan_clips(100.0)
    assert [(c.start_s, c.duration_s) for c in clips] == [
        (0.0, 25.0),
        (20.0, 25.0),
        (40.0, 25.0),
        (60.0, 25.0),
        (80.0, 20.0),
    ]
    assert [c.index for c in clips] == [0, 1, 2, 3, 4]
    assert all(b.start_s == a.end_s - 5.0 for a, b in itertools.pairwise(clips))


def test_a_last_piece_shorter_than_the_minimum_is_dropped():
    assert [c.end_s for c in tr.plan_clips(89.0)] == [25.0, 45.0, 65.0, 85.0]
    assert tr.plan_clips(91.0)[-1].duration_s == 11.0


def test_a_track_shorter_than_a_clip_is_one_shorter_clip_or_nothing():
    assert [(c.start_s, c.duration_s) for c in tr.plan_clips(18.0)] == [(0.0, 18.0)]
    assert tr.plan_clips(8.0) == []


def test_clip_length_overlap_and_edges_are_configurable():
    clips = tr.plan_clips(61.0, clip_s=20.0, overlap_s=0.0, ending_s=3.0)
    assert [c.start_s for c in clips] == [0.0, 20.0, 40.0]
    assert (clips[1].opening.start_s, clips[1].opening.end_s) == (20.0, 23.0)
    assert (clips[1].ending.start_s, clips[1].ending.end_s) == (37.0, 40.0)
    assert clips[1].ending.duration_s == 3.0


def test_an_ending_outside_3_to_5_s_is_refused():
    with pytest.raises(ValueError, match="ending_s"):
        tr.plan_clips(100.0, ending_s=6.0)


def test_a_render_config_without_room_around_the_fade_is_refused():
    with pytest.raises(ValueError, match="at least 2 s"):
        RenderConfig(before_s=1.0)


def test_the_true_continuation_starts_where_the_ending_stops_inside_the_next_clip():
    clips = tr.plan_clips(100.0)
    first = tr.true_continuation(clips, 0)
    assert first is not None
    assert first.clip_index == 1
    assert (first.span.start_s, first.span.end_s) == (25.0, 29.0)
    assert first.offset_s == 5.0  # skips the overlap, so nothing of the context repeats
    assert first.span.start_s >= clips[0].ending.end_s
    last_full = tr.true_continuation(clips, 3)
    assert last_full is not None and last_full.clip_index == 4
    assert tr.true_continuation(clips, 4) is None


def test_past_the_last_clip_the_continuation_has_no_clip_but_still_follows_the_track():
    clips = tr.plan_clips(89.0)  # the last 4 s after clip 3 are too short to be a clip
    assert tr.true_continuation(clips, 3) is None
    beyond = tr.true_continuation(clips, 3, track_s=89.0)
    assert beyond is not None
    assert (beyond.span.start_s, beyond.span.end_s, beyond.clip_index) == (85.0, 89.0, None)
    assert tr.true_continuation(clips, 3, track_s=88.0) is None


def test_without_overlap_the_true_continuation_is_the_next_clips_opening():
    clips = tr.plan_clips(100.0, clip_s=20.0, overlap_s=0.0)
    continuation = tr.true_continuation(clips, 2)
    assert continuation is not None
    assert continuation.span == clips[3].opening
    assert continuation.offset_s == 0.0


# Tempo and beat alignment


def test_a_120_bpm_click_track_reads_as_120_bpm_with_high_confidence():
    tempo = tr.estimate_tempo(clicks(8.0, 0.25), SR)
    assert tempo.bpm == pytest.approx(120.0, rel=0.01)
    assert tempo.confidence > 0.8
    assert tempo.phase_s == pytest.approx(0.25, abs=0.02)


def test_a_click_track_200_ms_late_is_shifted_back_onto_the_beat():
    x, y = clicks(16.0, 0.25), clicks(16.0, 0.45)
    r = tr.render_transition(x, y, SR, "crossfade", x_seam_s=8.0, y_seam_s=0.0)
    assert r.aligned, r.alignment_note
    assert r.beat_shift_s == pytest.approx(-0.2, abs=0.02)
    # X's beats fall at 8.25 s, 8.75 s, ...: Y's first click after the fade must too.
    after_fade = round((r.seam_s + r.crossfade_s / 2) * SR)
    first_click = after_fade + int(np.argmax(np.abs(r.audio[after_fade:]) > 0.01))
    assert first_click / SR == pytest.approx(10.25, abs=0.02)
    assert len(r.audio) == round(r.duration_s * SR)


def test_noise_has_low_tempo_confidence_and_is_not_aligned():
    r = tr.render_transition(noise(16.0, 1), noise(16.0, 2), SR, "crossfade", x_seam_s=8.0)
    assert r.tempo_x.confidence < RenderConfig().min_confidence
    assert not r.aligned
    assert r.beat_shift_s == 0.0
    assert "confidence" in r.alignment_note


def test_tempos_neither_equal_nor_twice_each_other_are_not_aligned():
    shift, note = tr.beat_shift(
        Tempo(120.0, 0.9, 0.1), Tempo(100.0, 0.9, 0.3), -8.0, RenderConfig()
    )
    assert shift == 0.0
    assert "neither equal nor 2:1" in note


def test_a_half_tempo_side_is_aligned_on_the_faster_grid():
    shift, note = tr.beat_shift(Tempo(120.0, 0.9, 0.1), Tempo(60.0, 0.9, 0.3), -8.0, RenderConfig())
    assert shift == pytest.approx(-0.2)  # onto X's 0.5 s grid, not Y's 1 s one
    assert note.startswith("aligned")


def test_a_hard_cut_into_the_true_continuation_without_alignment_is_the_track_itself():
    track = noise(30.0, 3)
    config = RenderConfig(align_beats=False)
    r = tr.render_transition(
        track, track, SR, "hard_cut", x_seam_s=20.0, y_seam_s=20.0, config=config
    )
    seam, n = round(r.seam_s * SR), len(r.audio)
    assert r.x_start_s == r.y_start_s == 12.0
    assert np.array_equal(r.audio[:seam], source(track, 12.0, n, r.gain_x_db)[:seam])
    assert np.array_equal(r.audio[seam:], source(track, 12.0, n, r.gain_y_db)[seam:])
    assert abs(r.gain_x_db - r.gain_y_db) < 0.1  # stationary noise: no step at the seam


# Rendering real music (the acceptance test of issue 5)


@pytest.mark.corpus
@pytest.mark.parametrize("style", tr.STYLES)
def test_each_style_renders_before_plus_after_seconds_at_a_matched_loudness(pair, style):
    config = RenderConfig()
    r = render(pair, style, seed=5)
    assert r.style == style
    assert r.audio.dtype == np.float32
    assert r.audio.shape == (round((config.before_s + config.after_s) * SR),)
    assert r.duration_s == pytest.approx(16.0, abs=1 / SR)
    assert r.seam_s == pytest.approx(8.0, abs=1 / SR)
    assert np.max(np.abs(r.audio)) <= 10 ** (config.peak_dbfs / 20) + 1e-6
    # Where each side plays alone, 3 s on either side of the mix: matched within 1 LU.
    if style == "overlay":
        mixed = np.flatnonzero((r.mask > 0) & (r.mask < 1))
        mix_from, mix_to = mixed[0] / 10, (mixed[-1] + 1) / 10
    else:
        mix_from, mix_to = r.seam_s - config.crossfade_s / 2, r.seam_s + config.crossfade_s / 2
    x_part, y_part = lufs(r, mix_from - 3, mix_from), lufs(r, mix_to, mix_to + 3)
    assert abs(x_part - y_part) < 1.0, (x_part, y_part)
    # The regions the gains were measured on are at the target, unless the peak limit held.
    x_solo = lufs(r, 0, r.seam_s - config.crossfade_s / 2)
    y_solo = lufs(r, r.seam_s + config.crossfade_s / 2, r.duration_s)
    for level, limited in ((x_solo, r.limited_x), (y_solo, r.limited_y)):
        assert limited or abs(level - config.target_lufs) < 0.1 - r.mix_gain_db


@pytest.mark.corpus
def test_every_style_of_one_pair_shares_gains_and_beat_shift(pair):
    renderings = [render(pair, style) for style in tr.STYLES]
    assert len({(r.gain_x_db, r.gain_y_db, r.beat_shift_s) for r in renderings}) == 1
    assert renderings[0].aligned, renderings[0].alignment_note  # both tracks are ~140 BPM
    assert renderings[0].tempo_x.bpm == pytest.approx(renderings[0].tempo_y.bpm, rel=0.04)


@pytest.mark.corpus
def test_a_hard_cut_is_exactly_x_up_to_the_seam_then_y(pair):
    x, _, y, _ = pair
    r = render(pair, "hard_cut")
    seam, n = round(r.seam_s * SR), len(r.audio)
    assert r.mask is None and r.mix_gain_db == 0.0
    assert np.array_equal(r.audio[:seam], source(x, r.x_start_s, n, r.gain_x_db)[:seam])
    assert np.array_equal(r.audio[seam:], source(y, r.y_start_s, n, r.gain_y_db)[seam:])


@pytest.mark.corpus
def test_the_crossfade_is_equal_power_and_is_what_was_played(pair):
    x, _, y, _ = pair
    r = render(pair, "crossfade", config=RenderConfig(crossfade_s=3.0))
    assert r.crossfade_s == 3.0 and r.mask is None
    np.testing.assert_allclose(r.curve_x**2 + r.curve_y**2, 1.0, atol=1e-6)
    fading = np.flatnonzero((r.curve_y > 0) & (r.curve_y < 1)) / SR
    # float32 rounds the last ~0.5 ms of sin(π/2 u) to exactly 1.
    assert fading[0] == pytest.approx(r.seam_s - 1.5, abs=1e-3)
    assert fading[-1] == pytest.approx(r.seam_s + 1.5, abs=1e-3)
    n, mix = len(r.audio), 10 ** (r.mix_gain_db / 20)
    played = source(x, r.x_start_s, n, r.gain_x_db) * r.curve_x
    played += source(y, r.y_start_s, n, r.gain_y_db) * r.curve_y
    np.testing.assert_allclose(r.audio, played * mix, atol=1e-5)


@pytest.mark.corpus
def test_the_overlay_stores_its_mask_at_10_values_a_second_and_plays_by_it(pair):
    r = render(pair, "overlay", seed=7)
    assert r.mask_rate_hz == 10.0
    assert r.mask.shape == (round(r.duration_s * 10),)
    assert r.mask.min() >= 0.0 and r.mask.max() <= 1.0
    assert r.mask[0] == 0.0 and r.mask[-1] == 1.0  # X alone at the start, Y alone at the end
    assert ((r.mask > 0.2) & (r.mask < 0.8)).sum() >= 10  # both play together for a while
    np.testing.assert_allclose(r.curve_x**2 + r.curve_y**2, 1.0, atol=1e-6)
    centres = np.round((np.arange(len(r.mask)) + 0.5) / 10 * SR).astype(int)
    np.testing.assert_allclose(r.curve_y[centres], np.sin(np.pi / 2 * r.mask), atol=1e-4)


@pytest.mark.corpus
def test_the_overlay_plays_a_given_mask_and_refuses_one_of_the_wrong_length(pair):
    given = np.linspace(0.0, 1.0, 160, dtype=np.float32)
    r = render(pair, "overlay", mask=given)
    assert np.array_equal(r.mask, given)
    with pytest.raises(ValueError, match="160 values"):
        render(pair, "overlay", mask=given[:100])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        render(pair, "overlay", mask=given * 2)


def test_a_default_mask_depends_only_on_its_seed():
    a, b = tr.default_mask(16.0, 8.0, seed=1), tr.default_mask(16.0, 8.0, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, tr.default_mask(16.0, 8.0, seed=2))


def test_rendering_is_deterministic_given_a_seed():
    x, y = clicks(16.0, 0.25) + noise(16.0, 4), clicks(16.0, 0.3) + noise(16.0, 5)
    a = tr.render_transition(x, y, SR, "overlay", x_seam_s=8.0, seed=9)
    b = tr.render_transition(x, y, SR, "overlay", x_seam_s=8.0, seed=9)
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.mask, b.mask)


def test_mono_into_stereo_renders_stereo():
    stereo = np.stack([noise(16.0, 6), noise(16.0, 7)])
    r = tr.render_transition(noise(16.0, 8), stereo, SR, "crossfade", x_seam_s=8.0)
    assert r.audio.shape == (2, round(16.0 * SR))


def test_an_encoded_rendering_is_a_playable_ogg_of_the_same_duration(tmp_path):
    t = np.arange(round(16.0 * SR)) / SR
    x, y = np.sin(2 * np.pi * 440 * t) * 0.3, np.sin(2 * np.pi * 660 * t) * 0.2
    r = tr.render_transition(x, y, SR, "crossfade", x_seam_s=8.0)
    path = tmp_path / "transition.ogg"
    tr.write_rendering(r, path)
    info = audio.probe(path)
    assert (info.format, info.subtype) == ("OGG", "VORBIS")
    wave, sr = audio.decode(path)
    assert sr == SR
    assert wave.shape[-1] / sr == pytest.approx(r.duration_s, abs=0.01)
    assert math.isclose(audio.loudness_lufs(wave, sr), -18.0, abs_tol=0.5)
