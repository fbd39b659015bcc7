"""Writes for the training app: training runs, model versions, embeddings, evaluations."""

import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Judgment, Triplet
from annotation.selectors import triplet_votes
from embeddings import services as embedding_services
from embeddings.models import Snippet, Split
from embeddings.selectors import embedding_matrix
from training import metrics, nets
from training.models import Evaluation, ModelVersion, TrainingRun
from training.selectors import snippet_log_mels
from training.train import TrainConfig, TripletData, train

log = logging.getLogger(__name__)

MODEL_NAME = "oddnet"
BOOTSTRAP_SAMPLES = 2000


def training_run_create(config: dict | None = None) -> TrainingRun:
    """A queued training run; the caller enqueues `training.train_model` on commit."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(config or {}) - known
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
    return TrainingRun.objects.create(model_name=MODEL_NAME, config=config or {})


def triplet_data_build(log_mels: dict[int, np.ndarray]) -> tuple[TripletData, list[int], list[int]]:
    """Training data from accepted judgments: train-split votes become weighted triplets
    (each vote for odd k on (i, j, k) gives (i, j, k) and (j, i, k)); validation-split
    triplets with votes monitor the run. Returns (data, snippet ids, trained track ids)."""
    snippet_ids = sorted(log_mels)
    position = {sid: i for i, sid in enumerate(snippet_ids)}
    rows, weights = [], []
    for kind in ("random", "gold"):
        for ids, votes, vote_weights in triplet_votes(Split.TRAIN, kind).values():
            for odd, weight in zip(votes, vote_weights, strict=True):
                i, j = (ids[s] for s in range(3) if s != odd)
                rows += [
                    (position[i], position[j], position[ids[odd]]),
                    (position[j], position[i], position[ids[odd]]),
                ]
                weights += [weight, weight]
    if not rows:
        raise ValueError("no accepted judgments on training tracks yet; collect some first")
    val = list(triplet_votes(Split.VAL, "random").values())
    data = TripletData(
        features=np.stack([log_mels[s] for s in snippet_ids]),
        triplets=np.array(rows, dtype=np.int64),
        weights=np.array(weights, dtype=np.float32),
        val_triplets=np.array([[position[s] for s in ids] for ids, _, _ in val], dtype=np.int64)
        if val
        else None,
        val_answers=[votes for _, votes, _ in val] if val else None,
    )
    used = {snippet_ids[i] for i in np.unique(data.triplets)}
    tracks = sorted(set(Snippet.objects.filter(id__in=used).values_list("track_id", flat=True)))
    return data, snippet_ids, tracks


def training_run_execute(
    run_id: int, progress: Callable[[dict], None] | None = None
) -> ModelVersion:
    """Train oddnet for one queued run, register the version, embed every snippet with it.

    Idempotent: a run that already produced a version returns it. A run killed midway
    resumes from its checkpoint. Failures are recorded on the run with their reason.
    """
    run = TrainingRun.objects.get(id=run_id)
    existing = ModelVersion.objects.filter(run=run).first()
    if existing:
        return existing
    run.status, run.started_at, run.error = TrainingRun.Status.RUNNING, timezone.now(), ""
    run.save(update_fields=["status", "started_at", "error"])
    try:
        version = _train_and_register(run, progress)
    except Exception as e:
        log.exception("training run %s failed", run.id)
        run.status, run.finished_at = TrainingRun.Status.FAILED, timezone.now()
        run.error = f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=5)}"
        run.save(update_fields=["status", "finished_at", "error"])
        raise
    run.status, run.finished_at = TrainingRun.Status.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return version


def _train_and_register(run: TrainingRun, progress: Callable[[dict], None] | None) -> ModelVersion:
    media = Path(settings.MEDIA_ROOT)
    log_mels = snippet_log_mels()
    data, snippet_ids, track_ids = triplet_data_build(log_mels)
    config = TrainConfig(**run.config)
    config.checkpoint_path = str(media / "runs" / f"run-{run.id}.pt")

    def report(record: dict) -> None:
        TrainingRun.objects.filter(id=run.id).update(
            progress={**record, "steps": config.steps, "triplets": len(data.triplets)}
        )
        if progress:
            progress(record)

    result = train(config, data, progress=report)
    with transaction.atomic():
        number = (
            ModelVersion.objects.filter(name=MODEL_NAME).aggregate(n=Max("version"))["n"] or 0
        ) + 1
        relative = Path("models") / f"{MODEL_NAME}-{number}.pt"
        (media / relative).parent.mkdir(parents=True, exist_ok=True)
        # Self-describing: the weights, both configs, the step and the metrics.
        torch.save(
            {
                "model": result.model.state_dict(),
                "net_config": asdict(result.model.config),
                "config": asdict(config),
                "step": result.step,
                "metrics": result.metrics,
            },
            media / relative,
        )
        version = ModelVersion.objects.create(
            name=MODEL_NAME,
            version=number,
            run=run,
            checkpoint=relative.as_posix(),
            config={"train": asdict(config), "net": asdict(result.model.config)},
            metrics={**result.metrics, "steps": result.step, "train_triplets": len(data.triplets)},
            trained_track_ids=track_ids,
            n_params=sum(p.numel() for p in result.model.parameters()),
            size_bytes=nets.param_bytes(result.model),
        )
    vectors = nets.embed(result.model, [log_mels[s] for s in snippet_ids])
    embedding_services.embeddings_store(version.space, dict(zip(snippet_ids, vectors, strict=True)))
    embedding_services.index_build(version.space)
    return version


def model_load(version: ModelVersion) -> nets.OddNet:
    state = torch.load(Path(settings.MEDIA_ROOT) / version.checkpoint, weights_only=False)
    model = nets.OddNet(nets.OddNetConfig(**state["net_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def _odd_positions(space: str, triplets: list[tuple[int, int, int]]) -> np.ndarray:
    ids, matrix = embedding_matrix(space)
    if space == embedding_services.MEL_STATS_SPACE:
        # The training-free baseline compares standardised features, as the index does.
        matrix = (matrix - matrix.mean(0)) / np.maximum(matrix.std(0), 1e-6)
        metric = "euclidean"
    else:
        metric = "cosine"
    row = {int(s): i for i, s in enumerate(ids)}
    missing = {s for t in triplets for s in t} - set(row)
    if missing:
        raise ValueError(f"{len(missing)} snippets have no vector in {space}; run `embed`")
    batch = matrix[[[row[s] for s in t] for t in triplets]]
    return metrics.odd_positions(batch, metric=metric)


def model_evaluate(version: ModelVersion | None = None, split: str = Split.TEST) -> Evaluation:
    """Agreement of a model version (or mel-stats alone) with people on held-out triplets.

    Held out means: triplets of `split` none of whose tracks the version trained on.
    Reports agreement with the majority and with single votes, a bootstrap 95% interval,
    the random, mel-stats and human-ceiling references on the same triplets, and the counts.
    """
    space = version.space if version else embedding_services.MEL_STATS_SPACE
    trained = set(version.trained_track_ids) if version else set()
    voted = triplet_votes(split, "random")
    track_of = dict(Snippet.objects.values_list("id", "track_id"))
    held_out = [
        (ids, votes) for ids, votes, _ in voted.values() if not {track_of[s] for s in ids} & trained
    ]
    if not held_out:
        raise ValueError(f"no voted {split} triplets to evaluate on; collect judgments first")
    triplets = [ids for ids, _ in held_out]
    votes = [v for _, v in held_out]
    model_odd = _odd_positions(space, triplets)
    scores = metrics.majority_scores(model_odd, votes)
    low, high = metrics.bootstrap_ci(scores, n_boot=BOOTSTRAP_SAMPLES)
    mel_odd = _odd_positions(embedding_services.MEL_STATS_SPACE, triplets)
    ceiling, ceiling_votes = metrics.human_ceiling(votes)
    results = {
        "model": space,
        "agreement": float(scores.mean()),
        "ci_low": low,
        "ci_high": high,
        "vote_agreement": float(metrics.vote_scores(model_odd, votes).mean()),
        "random": 1 / 3,
        "mel_stats": float(metrics.majority_scores(mel_odd, votes).mean()),
        "ceiling": ceiling,
        "ceiling_votes": ceiling_votes,
        "n_triplets": len(triplets),
        "n_votes": sum(len(v) for v in votes),
        "gold": _gold_agreement(space, split),
        "accepted_judgments": Judgment.objects.filter(status=Judgment.Status.ACCEPTED).count(),
    }
    # NaN (no triplet with enough votes for a ceiling) is not JSON: store null instead.
    results = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in results.items()}
    return Evaluation.objects.create(
        space=space, model_version=version, split=split, results=results
    )


def _gold_agreement(space: str, split: str) -> float | None:
    """How often the model finds a gold triplet's other-track snippet (checks, not taste)."""
    gold = list(
        Triplet.objects.filter(kind=Triplet.Kind.GOLD, split=split).values_list(
            "snippet_a_id", "snippet_b_id", "snippet_c_id", "gold_odd"
        )
    )
    if not gold:
        return None
    odd = _odd_positions(space, [g[:3] for g in gold])
    return float(np.mean(odd == np.array([g[3] for g in gold])))
