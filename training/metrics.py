"""Agreement between a model and human odd-one-out votes.

Pure numpy. Votes arrive per triplet as a list of answered positions in {0, 1, 2} (the
position chosen as odd); "can't tell" votes are removed before they reach this module.

Design note: the human ceiling
------------------------------
A model's agreement is only meaningful next to how well people agree with each other. The
ceiling asks the same question of one listener that we ask of the model: for every vote on a
triplet with at least 3 votes, does it match the majority of the *other* votes on that
triplet? Leaving the vote out matters: counting it in its own majority would inflate the
ceiling (with 3 votes a listener would "agree" with a majority they themselves created). A
k-way tie among the others' top answers scores 1/k, exactly as `majority_scores` scores the
model, so both numbers are expectations of the same coin. The ceiling is slightly
pessimistic for the model's comparison (a listener is compared with n - 1 votes, the model
with n), so a model close to it has reached what the labels can show.
"""

from collections.abc import Sequence
from fractions import Fraction
from typing import Literal

import numpy as np

N_POSITIONS = 3  # snippets per odd-one-out triplet
SCORE_DENOMINATOR = 6  # tie shares are 1, 1/2 or 1/3, so scores and their differences are k/6
Metric = Literal["euclidean", "cosine"]


def _pair_distances(batch: np.ndarray, metric: Metric) -> np.ndarray:
    """(N, 3, D) -> (N, 3): column x holds the distance of the pair that leaves x out."""
    x = np.asarray(batch, dtype=np.float64)
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}")
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    # Pairs ordered so that column x is the pair without position x.
    u = x[:, [1, 0, 0]]
    v = x[:, [2, 2, 1]]
    if metric == "cosine":
        return 1.0 - np.sum(u * v, axis=-1)
    return np.linalg.norm(u - v, axis=-1)


def odd_positions(batch: np.ndarray, metric: Metric = "euclidean") -> np.ndarray:
    """The odd position (0, 1 or 2) of each triplet in `batch` (N, 3, D): the one left out
    of the closest pair."""
    return np.argmin(_pair_distances(batch, metric), axis=1)


def odd_position(vectors: np.ndarray, metric: Metric = "euclidean") -> int:
    """The odd position of one triplet of vectors (3, D)."""
    return int(odd_positions(np.asarray(vectors)[None], metric)[0])


def _counts(votes: Sequence[int]) -> np.ndarray:
    if len(votes) == 0:
        raise ValueError("a triplet needs at least one vote; drop unanswered triplets first")
    return np.bincount(np.asarray(votes, dtype=np.int64), minlength=N_POSITIONS)


def _tie_share(counts: np.ndarray, answer: int) -> float:
    """1/k if `answer` is among the k positions sharing the top count, else 0."""
    top = counts == counts.max()
    return float(top[answer]) / float(top.sum())


def majority_scores(model_odd: np.ndarray, votes: Sequence[Sequence[int]]) -> np.ndarray:
    """Per triplet, 1 when the model's odd position is the majority answer, 1/k when it is
    one of k tied top answers, else 0."""
    if len(model_odd) != len(votes):
        raise ValueError("one model answer per voted triplet")
    return np.array([_tie_share(_counts(v), int(m)) for m, v in zip(model_odd, votes, strict=True)])


def exact_mean(scores: Sequence[float]) -> float:
    """The mean of per-triplet majority scores (0, 1 or a tie share 1/k) or of differences of
    two such scores, summed as exact fractions: two models with equally many credits get the
    same float, whatever the order or mix of their ties, so "at least as well" never turns on
    a rounding error."""
    if not len(scores):
        raise ValueError("no scores to average")
    total = sum(Fraction(float(s)).limit_denominator(SCORE_DENOMINATOR) for s in scores)
    return float(total / len(scores))


def vote_scores(model_odd: np.ndarray, votes: Sequence[Sequence[int]]) -> np.ndarray:
    """Per triplet, the fraction of its individual votes that match the model's answer.
    Weight by the number of votes (np.average(..., weights=...)) for a per-vote figure."""
    if len(model_odd) != len(votes):
        raise ValueError("one model answer per voted triplet")
    return np.array([_counts(v)[int(m)] / len(v) for m, v in zip(model_odd, votes, strict=True)])


def bootstrap_ci(
    scores: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-triplet `scores`, resampling triplets."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = s[rng.integers(0, s.size, size=(n_boot, s.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def human_ceiling(votes: Sequence[Sequence[int]], min_votes: int = 3) -> tuple[float, int]:
    """Leave-one-out agreement of single votes with the majority of the other votes on the
    same triplet (triplets with at least `min_votes` votes). Returns (mean, votes used);
    (nan, 0) when no triplet qualifies. See the module design note."""
    shares: list[float] = []
    for v in votes:
        if len(v) < min_votes:
            continue
        counts = _counts(v)
        for answer in v:
            others = counts.copy()
            others[answer] -= 1
            shares.append(_tie_share(others, int(answer)))
    if not shares:
        return (float("nan"), 0)
    return (float(np.mean(shares)), len(shares))


def same_track_retrieval(
    vectors: np.ndarray, groups: np.ndarray, k: int = 10, metric: Metric = "cosine"
) -> dict[str, float]:
    """Label-free sanity check: does each snippet find the other snippets of its own track?

    For every query with at least one same-track partner, the other snippets are ranked by
    distance; recall@k is the share of its partners in the top k, nDCG@k rewards finding them
    early (binary relevance, log2 discount, normalised by the ideal ranking). Returns the
    means over queries and their count.
    """
    x = np.asarray(vectors, dtype=np.float64)
    groups = np.asarray(groups)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        distances = 1.0 - x @ x.T
    else:
        square = np.sum(x * x, axis=1)
        distances = square[:, None] + square[None, :] - 2 * x @ x.T
    np.fill_diagonal(distances, np.inf)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for q in range(len(x)):
        relevant = groups == groups[q]
        relevant[q] = False
        n_relevant = int(relevant.sum())
        if n_relevant == 0:
            continue
        top = np.argsort(distances[q], kind="stable")[:k]
        hits = relevant[top].astype(np.float64)
        recalls.append(hits.sum() / n_relevant)
        ideal = discount[: min(n_relevant, k)].sum()
        ndcgs.append(float((hits * discount[: len(hits)]).sum() / ideal))
    if not recalls:
        return {"recall_at_k": float("nan"), "ndcg_at_k": float("nan"), "k": k, "queries": 0}
    return {
        "recall_at_k": float(np.mean(recalls)),
        "ndcg_at_k": float(np.mean(ndcgs)),
        "k": k,
        "queries": len(recalls),
    }
