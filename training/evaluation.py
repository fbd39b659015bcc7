"""Honest evaluation of a model version against people, beside every baseline.

Held out means: triplets of the test split none of whose tracks the version trained on. On
exactly those triplets the report gives the version's agreement with the majority and with
single votes, a bootstrap 95% interval, the human ceiling, and the same agreement for the
baselines: random, mel-stats, the pretrained-only oddnet it started from, the BEATs mean
(when its vectors exist) and the version promoted before it. A label-free sanity check rides
along: how well each snippet of a held-out track finds its track's other snippets.

Quality control is judged here too. The held-out votes are the counted ones (listeners
neither flagged nor excluded: the honest ones, as far as anyone knows), so `agreement` is
also `honest_majority_agreement`; beside it stands the same figure for the newest oddnet
trained with equal weights (`train --equal-weights`, every answer weighing 1, flagged
listeners' answers included), on the triplets held out from both.
"""

import numpy as np
from django.conf import settings

from annotation.models import Judgment, Triplet
from annotation.selectors import triplet_votes
from embeddings import services as embedding_services
from embeddings.extractors import beats
from embeddings.models import Snippet, Split, Track
from embeddings.selectors import embedding_matrix
from training import metrics
from training.models import Evaluation, ModelVersion

BOOTSTRAP_SAMPLES = 2000
RETRIEVAL_K = 10


def _space_matrix(space: str) -> tuple[dict[int, int], np.ndarray, str]:
    """Row of each snippet, the vectors, and the metric the space is compared with."""
    ids, matrix = embedding_matrix(space)
    if space == embedding_services.MEL_STATS_SPACE:
        # The training-free baseline compares standardised features, as its index does.
        matrix = (matrix - matrix.mean(0)) / np.maximum(matrix.std(0), 1e-6)
        return {int(s): i for i, s in enumerate(ids)}, matrix, "euclidean"
    return {int(s): i for i, s in enumerate(ids)}, matrix, "cosine"


def odd_positions(space: str, triplets: list[tuple[int, int, int]]) -> np.ndarray | None:
    """The odd position the space picks in each triplet; None when a snippet has no vector."""
    row, matrix, metric = _space_matrix(space)
    if any(s not in row for t in triplets for s in t):
        return None
    return metrics.odd_positions(matrix[[[row[s] for s in t] for t in triplets]], metric=metric)


def _agreement(space: str | None, triplets: list, votes: list) -> float | None:
    if space is None:
        return None
    odd = odd_positions(space, triplets)
    return None if odd is None else float(metrics.majority_scores(odd, votes).mean())


def _retrieval(space: str, snippet_ids: list[int], track_of: dict[int, int]) -> dict | None:
    row, matrix, metric = _space_matrix(space)
    present = [s for s in snippet_ids if s in row]
    if len(present) < 2:
        return None
    vectors = matrix[[row[s] for s in present]]
    groups = np.array([track_of[s] for s in present])
    return metrics.same_track_retrieval(vectors, groups, k=RETRIEVAL_K, metric=metric)


def _previous_promoted(version: ModelVersion | None) -> ModelVersion | None:
    """The version people were served before this one: promoted, and not this one."""
    promoted = ModelVersion.objects.filter(promoted=True)
    if version is not None:
        promoted = promoted.exclude(id=version.id)
    return promoted.order_by("-promoted_at", "-id").first()


def model_evaluate(version: ModelVersion | None = None, split: str = Split.TEST) -> Evaluation:
    """Evaluate `version` (or mel-stats alone) on held-out triplets; store and return it.

    Raises ValueError when there is nothing held out with votes to evaluate on.
    """
    space = version.space if version else embedding_services.MEL_STATS_SPACE
    trained = set(version.trained_track_ids) if version else set()
    track_of = dict(Snippet.objects.values_list("id", "track_id"))
    held_out = [
        (ids, votes)
        for ids, votes, _ in triplet_votes(split, "random").values()
        if not {track_of[s] for s in ids} & trained
    ]
    if not held_out:
        raise ValueError(f"no voted {split} triplets to evaluate on; collect judgments first")
    triplets = [ids for ids, _ in held_out]
    votes = [v for _, v in held_out]
    model_odd = odd_positions(space, triplets)
    if model_odd is None:
        raise ValueError(f"some held-out snippets have no vector in {space}; run `embed`")
    scores = metrics.majority_scores(model_odd, votes)
    low, high = metrics.bootstrap_ci(scores, n_boot=BOOTSTRAP_SAMPLES)
    ceiling, ceiling_votes = metrics.human_ceiling(votes)
    pretrained = (version.config or {}).get("pretrained") if version else None
    previous = _previous_promoted(version)
    beats_ok, beats_reason = beats.availability(settings.ODDBALL_BEATS_CHECKPOINT)
    beats_mean = _agreement(embedding_services.BEATS_SPACE, triplets, votes)
    if beats_mean is not None:
        beats_status = "available"
    elif not beats_ok:
        beats_status = beats_reason
    else:
        beats_status = "no BEATs vectors yet: run `embed`"
    held_tracks = set(Track.objects.filter(split=split).values_list("id", flat=True)) - trained
    held_snippets = sorted(s for s, t in track_of.items() if t in held_tracks)
    results = {
        "model": space,
        "agreement": metrics.exact_mean(scores),
        "ci_low": low,
        "ci_high": high,
        "vote_agreement": float(metrics.vote_scores(model_odd, votes).mean()),
        "ceiling": ceiling,
        "ceiling_votes": ceiling_votes,
        "random": 1 / 3,
        "mel_stats": _agreement(embedding_services.MEL_STATS_SPACE, triplets, votes),
        "pretrained": _agreement(pretrained, triplets, votes),
        "pretrained_space": pretrained,
        "beats_mean": beats_mean,
        "beats_status": beats_status,
        "previous_promoted": _agreement(previous.space if previous else None, triplets, votes),
        "previous_promoted_space": previous.space if previous else None,
        "retrieval": {
            "model": _retrieval(space, held_snippets, track_of),
            "mel_stats": _retrieval(embedding_services.MEL_STATS_SPACE, held_snippets, track_of),
        },
        "n_triplets": len(triplets),
        "n_votes": sum(len(v) for v in votes),
        "gold": _gold_agreement(space, split),
        **_weights_comparison(version, triplets, votes, model_odd, scores, track_of),
        "accepted_judgments": Judgment.objects.filter(
            status=Judgment.Status.ACCEPTED, practice=False
        ).count(),
    }
    return Evaluation.objects.create(
        space=space, model_version=version, split=split, results=_json_safe(results)
    )


def _weights_comparison(
    version: ModelVersion | None,
    triplets: list[tuple[int, int, int]],
    votes: list[list[int]],
    model_odd: np.ndarray,
    scores: np.ndarray,
    track_of: dict[int, int],
) -> dict:
    """The version's agreement with the honest majority beside that of the newest
    equal-weights oddnet, on the held-out triplets none of whose tracks either trained on,
    with the paired difference (a bootstrap interval over those triplets) and on how many
    of them the two models choose differently: only those can tell them apart."""
    rival = (
        ModelVersion.objects.filter(name="oddnet", config__equal_weights=True)
        .order_by("-version")
        .first()
    )
    out = {
        "weighting": None if version is None else _weighting(version),
        "honest_majority_agreement": metrics.exact_mean(scores),
        "honest_majority_n": len(triplets),
        "equal_weights_space": rival.space if rival else None,
        "equal_weights_honest_majority_agreement": None,
        "reliability_weights_honest_majority_agreement": None,
        "reliability_minus_equal": None,
        "reliability_minus_equal_ci": None,
        "weightings_differ_n": None,
        "equal_weights_n": 0,
    }
    if rival is None:
        return out
    unseen = set(rival.trained_track_ids)
    keep = [i for i, t in enumerate(triplets) if not {track_of[s] for s in t} & unseen]
    odd = odd_positions(rival.space, [triplets[i] for i in keep]) if keep else None
    if odd is None:
        return out
    rival_scores = metrics.majority_scores(odd, [votes[i] for i in keep])
    difference = scores[keep] - rival_scores
    out["equal_weights_honest_majority_agreement"] = metrics.exact_mean(rival_scores)
    out["reliability_weights_honest_majority_agreement"] = metrics.exact_mean(scores[keep])
    out["reliability_minus_equal"] = metrics.exact_mean(difference)
    out["reliability_minus_equal_ci"] = list(
        metrics.bootstrap_ci(difference, n_boot=BOOTSTRAP_SAMPLES)
    )
    out["weightings_differ_n"] = int((np.asarray(odd) != model_odd[keep]).sum())
    out["equal_weights_n"] = len(keep)
    return out


def _weighting(version: ModelVersion) -> str:
    return "equal" if (version.config or {}).get("equal_weights") else "reliability"


def _json_safe(value: object) -> object:
    """NaN (e.g. no triplet with enough votes for a ceiling) is not JSON: store null."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def _gold_agreement(space: str, split: str) -> float | None:
    """How often the model finds a gold triplet's other-track snippet (checks, not taste)."""
    gold = list(
        Triplet.objects.filter(kind=Triplet.Kind.GOLD, split=split).values_list(
            "snippet_a_id", "snippet_b_id", "snippet_c_id", "gold_odd"
        )
    )
    odd = odd_positions(space, [g[:3] for g in gold]) if gold else None
    if odd is None:
        return None
    return float(np.mean(odd == np.array([g[3] for g in gold])))
