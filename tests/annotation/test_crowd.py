import numpy as np
import pytest

from annotation.crowd import (
    MEL_STATS_DIM,
    TEMPO_BPM,
    TEMPO_STRENGTH,
    CrowdConfig,
    Seam,
    SimulatedListener,
    Smoothness,
    SmoothnessConfig,
    Taste,
    simulate_votes,
)
from embeddings.extractors import mel_stats


def _taste(seed: int = 0) -> Taste:
    features = np.random.default_rng(42).standard_normal((120, 40))
    return Taste(features, CrowdConfig(seed=seed))


def test_probabilities_sum_to_one_and_favour_the_taste_answer() -> None:
    taste = _taste()
    taste.calibrate()
    triplets = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    for row, answer in zip(triplets, taste.answers(triplets), strict=True):
        p = taste.probabilities(*row)
        assert np.isclose(p.sum(), 1.0)
        assert p.argmax() == answer


def test_a_calibrated_honest_crowd_agrees_with_the_taste_about_80_percent() -> None:
    taste = _taste()
    taste.calibrate(0.8)
    rng = np.random.default_rng(7)
    triplets = np.stack([rng.choice(120, 3, replace=False) for _ in range(1500)])
    listeners = [SimulatedListener("honest", cant_tell=0.0) for _ in range(30)]
    votes = simulate_votes(taste, triplets, listeners, 3, rng)
    truth = taste.answers(triplets)
    agreement = np.mean([a == t for v, t in zip(votes, truth, strict=True) for _, a in v])
    assert abs(agreement - 0.8) < 0.03


def test_the_same_seeds_give_the_same_votes() -> None:
    def run() -> list:
        taste = _taste(seed=3)
        taste.calibrate(rng=np.random.default_rng(1))
        listeners = [SimulatedListener("honest") for _ in range(5)]
        triplets = np.array([[0, 1, 2]] * 20)
        return simulate_votes(taste, triplets, listeners, 3, np.random.default_rng(2))

    assert run() == run()
    assert _taste(seed=3).points.tolist() != _taste(seed=4).points.tolist()


def test_spammers_answer_without_listening() -> None:
    rng = np.random.default_rng(0)
    p = np.array([0.0, 0.0, 1.0])
    assert {SimulatedListener("always_a").answer(p, rng) for _ in range(20)} == {0}
    assert len({SimulatedListener("random").answer(p, rng) for _ in range(100)}) == 3
    for kind in ("random", "fast", "always_a"):
        assert SimulatedListener(kind).listening_times(rng).max() < 4.0
    assert SimulatedListener("honest").listening_times(rng).min() >= 4.0


def test_an_honest_listener_sometimes_cannot_tell() -> None:
    rng = np.random.default_rng(0)
    listener = SimulatedListener("honest", cant_tell=0.5)
    answers = [listener.answer(np.array([0.2, 0.3, 0.5]), rng) for _ in range(200)]
    assert 60 < answers.count(None) < 140


def _collection(n_tracks: int = 30, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(endings, openings) (n_tracks, D) of mel-stats-like edges: within a track the ending
    and the opening of the next clip differ a little, across tracks a lot."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_tracks, MEL_STATS_DIM))
    base[:, TEMPO_BPM] = rng.uniform(70, 160, n_tracks)
    base[:, TEMPO_STRENGTH] = rng.uniform(0.3, 0.8, n_tracks)
    endings = base + 0.15 * rng.normal(size=base.shape)
    openings = base + 0.15 * rng.normal(size=base.shape)
    for edges in (endings, openings):
        edges[:, TEMPO_BPM] = base[:, TEMPO_BPM] * rng.uniform(0.99, 1.01, n_tracks)
    return endings, openings


def _smoothness(seed: int = 0) -> Smoothness:
    endings, openings = _collection()
    rule = Smoothness(np.vstack([endings, openings]), SmoothnessConfig(seed=seed))
    rule.calibrate(endings, np.roll(openings, 1, axis=0))
    return rule


def test_the_smoothness_rule_reads_the_mel_stats_layout():
    assert MEL_STATS_DIM == mel_stats.DIM
    with pytest.raises(ValueError, match="mel-stats"):
        Smoothness(np.zeros((4, 10)))


def test_true_continuations_rate_higher_on_average_than_random_pairs():
    rule = _smoothness()
    endings, openings = _collection()
    listener = SimulatedListener("honest", leniency=0.2)
    rng = np.random.default_rng(0)

    def ratings(shift: int) -> list[int]:
        paired = np.roll(openings, shift, axis=0)
        return [
            listener.rate(rule.expected(Seam(e, o, "crossfade")), rng)
            for e, o in zip(endings, paired, strict=True)
        ]

    true, random = ratings(0), ratings(7)
    assert np.mean(true) > np.mean(random) + 1.5
    assert np.mean([r >= 4 for r in true]) > 0.8
    assert len(set(random)) >= 3  # random pairs spread over the scale


def test_a_crossfade_softens_a_mismatch_a_little_compared_with_a_hard_cut():
    rule = _smoothness()
    endings, openings = _collection()
    seam = {s: Seam(endings[0], openings[3], s) for s in ("hard_cut", "overlay", "crossfade")}
    cut, overlay, fade = (rule.expected(seam[s]) for s in ("hard_cut", "overlay", "crossfade"))
    assert cut < overlay < fade < cut + 1.0


def test_a_tempo_clash_counts_only_when_both_tempos_are_confident():
    rule = _smoothness()
    endings, openings = _collection()
    e, o = endings[0], openings[0]
    same = rule.expected(Seam(e, o, bpm=(120.0, 120.0), tempo_confidence=(0.9, 0.9)))
    octave = rule.expected(Seam(e, o, bpm=(120.0, 60.0), tempo_confidence=(0.9, 0.9)))
    clash = rule.expected(Seam(e, o, bpm=(120.0, 87.0), tempo_confidence=(0.9, 0.9)))
    unsure = rule.expected(Seam(e, o, bpm=(120.0, 87.0), tempo_confidence=(0.9, 0.05)))
    assert same == pytest.approx(octave) and clash < same
    assert unsure == pytest.approx(same, abs=0.05)


def test_the_smoothness_rule_is_fixed_by_its_seed():
    endings, openings = _collection()
    seams = [Seam(e, o, "overlay") for e, o in zip(endings, np.roll(openings, 2, 0), strict=True)]

    def run(seed: int) -> list[int]:
        rule = _smoothness(seed)
        listener = SimulatedListener("honest", leniency=-0.3)
        rng = np.random.default_rng(seed)
        return [listener.rate(rule.expected(s), rng) for s in seams]

    assert run(1) == run(1)
    assert _smoothness(1).weights.tolist() != _smoothness(2).weights.tolist()
    assert run(1) != run(2)


def test_noise_makes_individual_raters_differ():
    rule = _smoothness()
    endings, openings = _collection()
    seams = [Seam(e, o) for e, o in zip(endings, np.roll(openings, 3, 0), strict=True)]
    rng = np.random.default_rng(0)
    strict, lenient = SimulatedListener(leniency=-0.5), SimulatedListener(leniency=0.5)
    a = [strict.rate(rule.expected(s), rng) for s in seams]
    b = [lenient.rate(rule.expected(s), rng) for s in seams]
    assert a != b and np.mean(a) < np.mean(b)
    again = {strict.rate(rule.expected(seams[0]), rng) for _ in range(50)}
    assert len(again) >= 2  # one listener does not always rate one seam alike


def test_ratings_always_lie_between_1_and_5():
    rng = np.random.default_rng(0)
    for kind in ("honest", "random", "always_a", "fast"):
        listener = SimulatedListener(kind, leniency=1.5, rating_noise=2.0)
        for expected in (-3.0, 1.0, 3.0, 5.0, 9.0):
            ratings = {listener.rate(expected, rng) for _ in range(50)}
            assert ratings <= {1, 2, 3, 4, 5}
    assert {SimulatedListener("always_a").rate(5.0, rng) for _ in range(10)} == {1}


def test_only_honest_listeners_hear_a_transition_past_its_seam():
    rng = np.random.default_rng(0)
    for _ in range(20):
        heard = SimulatedListener("honest").rating_listen_s(16.0, 8.0, rng)
        assert 10.0 <= heard <= 16.0
        for kind in ("random", "fast", "always_a"):
            assert SimulatedListener(kind).rating_listen_s(16.0, 8.0, rng) < 4.0
    taps = [SimulatedListener().broke_at(1, 8.0, 16.0, rng) for _ in range(100)]
    assert all(t is None or 8.0 <= t <= 16.0 for t in taps) and any(taps)
    assert SimulatedListener().broke_at(5, 8.0, 16.0, rng) is None
