import numpy as np

from annotation.crowd import CrowdConfig, SimulatedListener, Taste, simulate_votes


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
