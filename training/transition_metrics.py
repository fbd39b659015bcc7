"""Evaluation of transition models on held-out tracks: the calibrated continuation test.

Pure numpy. A *seam* is a clip's ending; its true continuation is the opening of the audio
that starts where the clip stops. Each seam is ranked against 100 candidate openings.

Design note: the calibrated candidate set
-----------------------------------------
With only other tracks' openings as distractors, the training-free mel-stats nearest
neighbour already puts the true continuation first for ~3/4 of seams: telling tracks apart
is easy, telling *where in a track* the music goes next is the real question. So each
seam's 100 candidates are the truth, up to 20 other openings of the same track, and other
tracks' openings for the rest (DESIGN.md, "Transition evaluation, calibrated"). A same-track
distractor must not overlap the context clip or the truth (that would be the answer again),
and versions of one piece (a "group": a stem and its mix, a tempo variant) are never
distractors for each other. Ties rank the truth pessimistically, so a constant score
earns recall 0, not 1. The mel-stats baseline always runs on the same candidates.
"""

from dataclasses import dataclass

import numpy as np

N_CANDIDATES = 100  # truth included
SAME_TRACK_MAX = 20  # same-track distractors per seam, at most
HIST_BINS = 40  # bins of the cosine histograms over [-1, 1]
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass
class SeamSet:
    """Held-out seams and the pool of candidate openings they are ranked against.

    Spans are [start, end) in any one time unit (seconds or windows)."""

    seam_track: np.ndarray  # (Q,) int
    seam_span: np.ndarray  # (Q, 2) the context clip
    seam_truth: np.ndarray  # (Q,) int, index of the true continuation in the pool
    pool_track: np.ndarray  # (P,) int
    pool_span: np.ndarray  # (P, 2) each candidate opening
    track_group: dict[int, int] | None = None  # track -> group; None: own group each


def build_candidates(
    seams: SeamSet,
    rng: np.random.Generator,
    n: int = N_CANDIDATES,
    same_track_max: int = SAME_TRACK_MAX,
) -> np.ndarray:
    """(Q, n) pool indexes per seam, the truth in column 0, then same-track distractors,
    then other tracks' openings. Raises ValueError when the pool is too small."""
    group = seams.track_group or {}
    pool_group = np.array([group.get(int(t), int(t)) for t in seams.pool_track])
    out = np.zeros((len(seams.seam_track), n), dtype=np.int64)
    for q, (track, (start, _), truth) in enumerate(
        zip(seams.seam_track, seams.seam_span, seams.seam_truth, strict=True)
    ):
        # Same track, outside [context start, truth end): the context and the answer.
        end = seams.pool_span[truth, 1]
        same = seams.pool_track == track
        clear = (seams.pool_span[:, 1] <= start) | (seams.pool_span[:, 0] >= end)
        near = np.flatnonzero(same & clear)
        near = rng.permutation(near)[:same_track_max]
        far = np.flatnonzero(pool_group != group.get(int(track), int(track)))
        if len(far) < n - 1 - len(near):
            raise ValueError(
                f"seam {q}: only {len(near) + len(far)} distractors for {n - 1}; "
                "hold out more tracks or lower n"
            )
        far = rng.choice(far, n - 1 - len(near), replace=False)
        out[q] = np.concatenate([[truth], near, far])
    return out


def candidates_possible(seams: SeamSet, same_track_max: int = SAME_TRACK_MAX) -> int:
    """The largest candidate count (truth included) `build_candidates` can fill for every
    seam: a small collection is ranked among fewer candidates, and says so, rather than
    not at all."""
    group = seams.track_group or {}
    pool_group = np.array([group.get(int(t), int(t)) for t in seams.pool_track])
    most = None
    for track, (start, _), truth in zip(
        seams.seam_track, seams.seam_span, seams.seam_truth, strict=True
    ):
        end = seams.pool_span[truth, 1]
        clear = (seams.pool_span[:, 1] <= start) | (seams.pool_span[:, 0] >= end)
        near = min(int(np.sum((seams.pool_track == track) & clear)), same_track_max)
        far = int(np.sum(pool_group != group.get(int(track), int(track))))
        most = 1 + near + far if most is None else min(most, 1 + near + far)
    return most or 0


def truth_ranks(scores: np.ndarray) -> np.ndarray:
    """(Q,) 1-based rank of column 0 among each row of (Q, n) scores, higher is better;
    ties count against the truth."""
    scores = np.asarray(scores, dtype=np.float64)
    return 1 + np.sum(scores[:, 1:] >= scores[:, :1], axis=1)


def recall_at(scores: np.ndarray, ks: tuple[int, ...] = (1, 10)) -> dict[str, float]:
    """Share of rows whose truth (column 0) is in the top k, per k."""
    ranks = truth_ranks(scores)
    return {f"recall_at_{k}": float(np.mean(ranks <= k)) for k in ks}


def cosine_scores(predicted: np.ndarray, pool: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(Q, n) cosine of each seam's prediction (Q, D) with its candidates' vectors (P, D)."""
    p = _unit(predicted)
    return np.einsum("qd,qnd->qn", p, _unit(pool)[candidates])


def euclidean_scores(ending: np.ndarray, pool: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """(Q, n) minus the Euclidean distance between each ending's vector and its candidates',
    after z-scoring every feature by the pool (the mel-stats nearest-neighbour baseline)."""
    mean, std = pool.mean(axis=0), np.maximum(pool.std(axis=0), 1e-6)
    e, c = (ending - mean) / std, (pool - mean) / std
    return -np.linalg.norm(c[candidates] - e[:, None, :], axis=-1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def distribution(values: np.ndarray, bins: int = HIST_BINS) -> dict[str, list[float] | float]:
    """Histogram on [-1, 1] (counts and edges), quantiles and mean of cosine similarities."""
    v = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(np.clip(v, -1, 1), bins=bins, range=(-1.0, 1.0))
    return {
        "mean": float(v.mean()),
        "quantiles": dict(
            zip(map(str, QUANTILES), np.quantile(v, QUANTILES).tolist(), strict=True)
        ),
        "counts": counts.tolist(),
        "edges": edges.tolist(),
    }


def spectral_convergence(reference: np.ndarray, other: np.ndarray) -> float:
    """||reference - other||_F / ||reference||_F of two magnitude spectra of equal shape."""
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    return float(np.linalg.norm(reference - other) / max(np.linalg.norm(reference), 1e-12))


def log_mel_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two log-mel spectra (natural log) of equal shape."""
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def seam_metrics(ending_edge: np.ndarray, opening_edge: np.ndarray) -> dict[str, float]:
    """Mean spectral convergence and log-mel MSE across seams, from the log-mel just before
    each seam (N, ...) and just after it (N, ...); magnitudes are exp(log-mel / 2)."""
    sc = [
        spectral_convergence(np.exp(a / 2), np.exp(b / 2))
        for a, b in zip(ending_edge, opening_edge, strict=True)
    ]
    mse = [log_mel_mse(a, b) for a, b in zip(ending_edge, opening_edge, strict=True)]
    return {"spectral_convergence": float(np.mean(sc)), "log_mel_mse": float(np.mean(mse))}


def rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array, ties sharing the mean of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    # Average over runs of equal values.
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks, minlength=len(values))
    counts = np.bincount(inverse, minlength=len(values))
    return (sums / counts)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (Pearson correlation of tie-averaged ranks); nan when either side is
    constant or there are fewer than 2 pairs."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two 1-D arrays of one length, got {a.shape} and {b.shape}")
    if len(a) < 2:
        return float("nan")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    denominator = np.sqrt(np.sum(ra * ra) * np.sum(rb * rb))
    return float(np.sum(ra * rb) / denominator) if denominator > 0 else float("nan")


def evaluate_transitions(
    candidates: np.ndarray,
    predicted: np.ndarray,
    pool_vectors: np.ndarray,
    ending_stats: np.ndarray,
    pool_stats: np.ndarray,
    ending_edge: np.ndarray,
    pool_edge: np.ndarray,
    rng: np.random.Generator,
) -> dict:
    """Every continuation metric for one model on one candidate set (see the module note).

    candidates (Q, n) from `build_candidates`; predicted (Q, D) model predictions and
    pool_vectors (P, D) candidate embeddings; ending_stats (Q, S) / pool_stats (P, S) mel-
    stats for the baseline; ending_edge (Q, M) / pool_edge (P, M) the log-mel spectrum just
    before each seam and at the start of each candidate. Returns a JSON-able dict.
    """
    q = len(candidates)
    model = cosine_scores(predicted, pool_vectors, candidates)
    baseline = euclidean_scores(ending_stats, pool_stats, candidates)
    random_column = rng.integers(1, candidates.shape[1], q)
    picks = {
        "true": candidates[:, 0],
        "model": candidates[np.arange(q), np.argmax(model, axis=1)],
        "melstats": candidates[np.arange(q), np.argmax(baseline, axis=1)],
        "random": candidates[np.arange(q), random_column],
    }
    return {
        "seams": q,
        "candidates": int(candidates.shape[1]),
        "chance": {f"recall_at_{k}": k / candidates.shape[1] for k in (1, 10)},
        "model": recall_at(model),
        "melstats": recall_at(baseline),
        "model_mean_rank": float(truth_ranks(model).mean()),
        "melstats_mean_rank": float(truth_ranks(baseline).mean()),
        "cosine_true": distribution(model[:, 0]),
        "cosine_random": distribution(model[np.arange(q), random_column]),
        "seam": {name: seam_metrics(ending_edge, pool_edge[p]) for name, p in picks.items()},
    }
