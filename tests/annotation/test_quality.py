"""The quality model alone: numpy arrays in, signals, reliability and reasons out."""

import numpy as np

from annotation.quality import NONE, Answers, QualityConfig, assess, reliability_from_checks

CONFIG = QualityConfig()


def answers(rows: list[tuple]) -> Answers:
    """Rows of (listener, triplet, odd, position, gold, repeat_of, listened_ms)."""
    cols = list(zip(*rows, strict=True))
    return Answers(
        *(np.array(c, dtype=int) for c in cols),
        votes=np.array([r[5] == NONE for r in rows], dtype=bool),
    )


def crowd(kinds: list[str], triplets: int = 60, seed: int = 0) -> Answers:
    """Every listener answers every triplet once: honest ones pick the true odd slot 75% of
    the time, "random" uniformly, "always_a" the first displayed position."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(3, size=triplets)
    gold = np.where(np.arange(triplets) % 10 == 0, truth, NONE)
    rows = []
    for who, kind in enumerate(kinds):
        for t in range(triplets):
            order = rng.permutation(3)  # order[position] = slot shown there
            if kind == "honest":
                odd = truth[t] if rng.random() < 0.75 else int(rng.integers(3))
            elif kind == "random":
                odd = int(rng.integers(3))
            else:
                odd = int(order[0])
            position = int(np.flatnonzero(order == odd)[0])
            rows.append((who, t, odd, position, gold[t], NONE, 6000))
    return answers(rows)


def test_three_answers_move_a_newcomer_only_a_little():
    fresh = reliability_from_checks(np.array([0]), np.array([0]), CONFIG)[0]
    all_right = reliability_from_checks(np.array([3]), np.array([3]), CONFIG)[0]
    all_wrong = reliability_from_checks(np.array([0]), np.array([3]), CONFIG)[0]
    assert 0.3 < fresh < 0.7
    assert abs(all_right - fresh) < 0.2
    assert abs(all_wrong - fresh) < 0.2


def test_a_newcomer_with_three_wrong_answers_is_not_flagged():
    rows = [(0, t, 0, 0, 1, NONE, 6000) for t in range(3)]  # three gold triplets, all wrong
    result = assess(answers(rows), 1, CONFIG)
    assert result.reasons == [[]]
    assert result.signals[0]["gold"] == 3 and result.signals[0]["gold_right"] == 0


def test_honest_listeners_earn_more_reliability_than_random_clickers():
    data = crowd(["honest"] * 8 + ["random"] * 2)
    result = assess(data, 10, CONFIG)
    assert result.reliability[:8].min() > 0.6
    assert result.reliability[8:].max() < CONFIG.min_reliability
    assert all(result.reasons[i] == [] for i in range(8))
    assert all("low reliability" in result.reasons[i][0] for i in (8, 9))


def test_a_listener_always_pressing_the_first_position_is_caught():
    data = crowd(["honest"] * 8 + ["always_a"])
    result = assess(data, 9, CONFIG)
    assert result.signals[8]["top_position_share"] == 1.0
    assert any("one position" in r for r in result.reasons[8])
    assert not any(result.reasons[:8])


def test_answers_before_listening_are_marked_and_their_listener_flagged():
    rows = [(0, t, t % 3, t % 3, NONE, NONE, 900) for t in range(12)]
    rows += [(1, t, t % 3, (t + 1) % 3, NONE, NONE, 6000) for t in range(12)]
    result = assess(answers(rows), 2, CONFIG)
    assert result.too_fast.tolist() == [True] * 12 + [False] * 12
    assert any("before listening" in r for r in result.reasons[0])
    assert result.reasons[1] == []


def test_a_repeat_answered_the_same_way_passes_the_consistency_check():
    rows = [
        (0, 1, 2, 0, NONE, NONE, 6000),
        (0, 1, 2, 1, NONE, 0, 6000),  # repeats row 0, same slot at another position
        (0, 2, 0, 0, NONE, NONE, 6000),
        (0, 2, 1, 0, NONE, 2, 6000),  # repeats row 2, another slot
    ]
    signals = assess(answers(rows), 1, CONFIG).signals[0]
    assert signals["repeats"] == 2
    assert signals["repeats_same"] == 1


def test_the_consensus_leans_on_reliable_listeners():
    # Five honest listeners and five random clickers: checked against a consensus in which
    # the clickers weigh little, honest answers agree more often than by raw majority.
    data = crowd(["honest"] * 5 + ["random"] * 5, triplets=80, seed=3)
    one_round = assess(data, 10, QualityConfig(rounds=1))
    three_rounds = assess(data, 10, QualityConfig(rounds=3))
    honest_agreed = sum(s["consensus_agreed"] for s in three_rounds.signals[:5])
    assert honest_agreed >= sum(s["consensus_agreed"] for s in one_round.signals[:5])
    assert three_rounds.reliability[:5].mean() > three_rounds.reliability[5:].mean() + 0.4
