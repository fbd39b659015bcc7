import numpy as np
import pytest

from training.metrics import (
    bootstrap_ci,
    exact_mean,
    human_ceiling,
    majority_scores,
    odd_position,
    odd_positions,
    same_track_retrieval,
    vote_scores,
)


def test_the_odd_one_is_the_one_left_out_of_the_closest_pair() -> None:
    assert odd_position(np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])) == 2
    assert odd_position(np.array([[9.0, 0.0], [0.0, 1.0], [0.0, 1.2]])) == 0
    # Cosine ignores length: 1 and 2 point the same way, 0 does not.
    cos = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 50.0]])
    assert odd_position(cos, metric="cosine") == 0
    batch = np.stack([np.roll(np.array([[0.0], [0.0], [1.0]]), k, axis=0) for k in range(3)])
    assert odd_positions(batch).tolist() == [2, 0, 1]


def test_majority_scores_split_credit_on_ties() -> None:
    votes = [[0, 0, 1], [0, 1], [0, 1, 2], [2, 2, 2]]
    model = np.array([0, 1, 2, 0])
    np.testing.assert_allclose(majority_scores(model, votes), [1.0, 0.5, 1 / 3, 0.0])


def test_equal_credit_gives_equal_agreement_whatever_the_ties() -> None:
    # 156 tie shares of 1/3 and 104 of 1/2 are worth 104 whole matches; a float mean says
    # the ties are a hair worse, which would decide "at least as well" by a rounding error.
    ties = np.array([1 / 3] * 156 + [0.5] * 104)
    wins = np.array([1.0] * 104 + [0.0] * 156)
    assert ties.mean() != wins.mean()
    assert exact_mean(ties) == exact_mean(wins) == 0.4
    assert exact_mean(ties - wins) == 0.0
    assert exact_mean([1.0, 0.5, 1 / 3]) == pytest.approx(11 / 18)
    with pytest.raises(ValueError):
        exact_mean([])


def test_vote_scores_count_the_individual_votes_matched() -> None:
    votes = [[0, 0, 1, 2], [1]]
    np.testing.assert_allclose(vote_scores(np.array([0, 1]), votes), [0.5, 1.0])


def test_the_bootstrap_interval_contains_the_mean() -> None:
    scores = np.random.default_rng(1).integers(0, 2, 300).astype(float)
    low, high = bootstrap_ci(scores)
    assert low < scores.mean() < high
    assert high - low < 0.2
    assert bootstrap_ci(scores, seed=3) != bootstrap_ci(scores, seed=4)


def test_the_human_ceiling_leaves_each_vote_out_of_its_own_majority() -> None:
    # [0, 0, 0]: every vote matches the two others -> 3 × 1.
    # [0, 0, 1]: each 0 matches the others' tie {0, 1} -> 2 × 1/2; the 1 meets [0, 0] -> 0.
    # [1, 2]: too few votes, not used.
    mean, used = human_ceiling([[0, 0, 0], [0, 0, 1], [1, 2]])
    assert used == 6
    assert np.isclose(mean, (3 + 0.5 + 0.5 + 0) / 6)


def test_the_human_ceiling_is_undefined_without_enough_votes() -> None:
    mean, used = human_ceiling([[0, 1], [2]])
    assert used == 0
    assert np.isnan(mean)


def test_same_track_retrieval_is_perfect_when_tracks_form_tight_clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 8)) * 10
    groups = np.repeat(np.arange(5), 4)
    vectors = centres[groups] + rng.normal(size=(20, 8)) * 0.01
    result = same_track_retrieval(vectors, groups, k=10, metric="euclidean")
    assert result["recall_at_k"] == 1.0
    assert result["ndcg_at_k"] == pytest.approx(1.0)
    assert result["queries"] == 20


def test_same_track_retrieval_scores_a_late_hit_below_an_early_one():
    # Query 0's only partner (index 3) is ranked third: recall 1, nDCG 1/log2(4) = 0.5.
    vectors = np.array([[0.0], [1.0], [2.0], [3.0], [100.0]])
    groups = np.array([0, 1, 2, 0, 4])
    result = same_track_retrieval(vectors, groups, k=3, metric="euclidean")
    assert result["queries"] == 2
    assert result["recall_at_k"] == 1.0
    assert result["ndcg_at_k"] == pytest.approx(0.5)
