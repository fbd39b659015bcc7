"""Writes for the training app: training runs, model versions, promotion, retraining.

A run pretrains oddnet on every snippet (or reuses the pretrained model when the snippets
have not changed), fine-tunes it on human triplets, registers both as model versions,
evaluates the fine-tuned one and, by the rule in `promotion_earned`, promotes it. Runs of
the transition model ("transnet") share the queue, the claim and the heartbeat; their
training, registration and evaluation are in `training.transition_services`.
"""

import hashlib
import json
import logging
import traceback
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.models import Judgment
from annotation.selectors import judged_votes, triplet_votes
from embeddings import services as embedding_services
from embeddings.extractors import beats
from embeddings.models import Embedding, Snippet, Split
from embeddings.selectors import embedding_matrix, snippets_missing
from training import evaluation, export, metrics, nets, transition_services
from training.evaluation import model_evaluate
from training.heads import HeadConfig, ProjectionHead, head_embed, train_head
from training.models import TRANSITION_MODEL, ModelVersion, TrainingRun
from training.pretrain import PretrainConfig, TrackChunks, pretrain
from training.selectors import snippet_log_mels
from training.train import TrainConfig, TripletData, train

log = logging.getLogger(__name__)

MODEL_NAME = "oddnet"
PRETRAINED_NAME = "oddnet-pretrained"
HEAD_NAME = "beats-head"
TEACHER_TRIPLETS = 4000  # teacher-labelled triplets a distillation run trains on


class TrainingBusy(Exception):
    """A training run is already queued or running: one trains at a time."""


RUN_OPTIONS = {f.name for f in fields(TrainConfig)} | {"pretrain", "teacher", "equal_weights"}
HEAD_OPTIONS = {f.name for f in fields(HeadConfig)} - {"in_dim"}


def training_run_create(
    config: dict | None = None, reason: str = "", model_name: str = MODEL_NAME
) -> TrainingRun:
    """A queued training run; the caller enqueues `training.train_model` on commit.

    One run may be queued or running at a time, enforced by a partial unique index, so the
    beat schedule and a curator pressing the button cannot start two.
    """
    config = config or {}
    if model_name == TRANSITION_MODEL:
        transition_services.transition_options_check(config)
        return _run_add(model_name, config, reason)
    if model_name not in (MODEL_NAME, HEAD_NAME):
        raise ValueError(
            f"unknown model {model_name!r}: {MODEL_NAME}, {HEAD_NAME} or {TRANSITION_MODEL}"
        )
    unknown = set(config) - (RUN_OPTIONS if model_name == MODEL_NAME else HEAD_OPTIONS)
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
    pretrain_unknown = set(config.get("pretrain", {})) - {f.name for f in fields(PretrainConfig)}
    if pretrain_unknown:
        raise ValueError(f"unknown pretraining options: {', '.join(sorted(pretrain_unknown))}")
    teacher = config.get("teacher")
    if teacher and not Embedding.objects.filter(space=teacher).exists():
        # A teacher is any space with vectors: a registered version or beats@1.
        raise ValueError(f"unknown teacher {teacher!r}: a model version like beats-head@1")
    if model_name == HEAD_NAME:
        ok, why = beats.availability(settings.ODDBALL_BEATS_CHECKPOINT)
        if not ok:
            raise ValueError(f"BEATs is unavailable: {why}")
    return _run_add(model_name, config, reason)


def _run_add(model_name: str, config: dict, reason: str) -> TrainingRun:
    try:
        with transaction.atomic():
            return TrainingRun.objects.create(
                model_name=model_name,
                config=config,
                reason=reason[:200],
                judgments_at_start=_accepted_judgments(),
            )
    except IntegrityError as e:
        raise TrainingBusy("a training run is already queued or running") from e


def _accepted_judgments() -> int:
    return Judgment.objects.filter(status=Judgment.Status.ACCEPTED, practice=False).count()


def vote_rows(
    position: dict[int, int], equal_weights: bool = False
) -> tuple[list[tuple[int, int, int]], list[float]]:
    """Train-split votes as weighted (anchor, positive, negative) rows over `position`
    (snippet id -> row). A vote for odd k on (i, j, k) gives (i, j, k) and (j, i, k).

    The rows are every vote quality control judges (`judged_votes`); a row weighs what
    quality control gives its judgment: the listener's reliability, or 0 while the listener
    or the judgment is flagged. `equal_weights` is the baseline without quality control:
    the same rows, each weighing exactly 1; curators' decisions (exclusions, rejections)
    hold for both. Both weightings list the same rows in the same order, and training draws
    rows in proportion to their weights from its seed's random numbers, so two runs with one
    seed draw the same triplets wherever their weights agree."""
    rows, weights = [], []
    for kind in ("random", "gold"):
        for ids, votes, vote_weights in judged_votes(Split.TRAIN, kind).values():
            for odd, weight in zip(votes, vote_weights, strict=True):
                i, j = (ids[s] for s in range(3) if s != odd)
                rows += [
                    (position[i], position[j], position[ids[odd]]),
                    (position[j], position[i], position[ids[odd]]),
                ]
                weights += [1.0 if equal_weights else weight] * 2
    if not any(weights):
        raise ValueError("no accepted judgments on training tracks yet; collect some first")
    return rows, weights


def teacher_rows(
    teacher_space: str, position: dict[int, int], n: int, seed: int
) -> tuple[list[tuple[int, int, int]], list[float]]:
    """Distillation: `n` random triplets of train-split tracks, each labelled by the teacher's
    own odd-one-out decision, as rows like `vote_rows` (weight 1)."""
    rng = np.random.default_rng(seed)
    by_track: dict[int, list[int]] = {}
    train = Snippet.objects.filter(id__in=list(position), track__split=Split.TRAIN)
    for snippet_id, track_id in train.values_list("id", "track_id"):
        by_track.setdefault(track_id, []).append(snippet_id)
    tracks = sorted(by_track)
    if len(tracks) < 3:
        raise ValueError("distillation needs at least three training tracks")
    triplets = [
        tuple(int(rng.choice(by_track[t])) for t in rng.choice(tracks, 3, replace=False))
        for _ in range(n)
    ]
    odd = evaluation.odd_positions(teacher_space, triplets)
    if odd is None:
        raise ValueError(f"the teacher {teacher_space} has no vector for some snippets")
    rows = []
    for ids, k in zip(triplets, odd, strict=True):
        i, j = (ids[s] for s in range(3) if s != k)
        rows += [
            (position[i], position[j], position[ids[k]]),
            (position[j], position[i], position[ids[k]]),
        ]
    return rows, [1.0] * len(rows)


def triplet_data_build(
    log_mels: dict[int, np.ndarray],
    teacher: str | None = None,
    seed: int = 0,
    equal_weights: bool = False,
) -> tuple[TripletData, list[int], list[int]]:
    """Training data: human votes on train-split triplets (or, with `teacher`, the teacher's
    decisions on random train-split triplets); validation-split triplets with votes monitor
    the run. `equal_weights`: see `vote_rows`. Returns (data, snippet ids, trained track
    ids)."""
    snippet_ids = sorted(log_mels)
    position = {sid: i for i, sid in enumerate(snippet_ids)}
    if teacher:
        rows, weights = teacher_rows(teacher, position, TEACHER_TRIPLETS, seed)
    else:
        rows, weights = vote_rows(position, equal_weights)
    # The baseline picks its best step on validation votes it could know without quality
    # control too, or it would borrow quality control's judgment of who is honest.
    val_votes = judged_votes if equal_weights else triplet_votes
    val = list(val_votes(Split.VAL, "random").values())
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
) -> ModelVersion | None:
    """Pretrain (or reuse the pretrained model), fine-tune, register, evaluate and maybe
    promote, for one queued run. Returns the fine-tuned version.

    Idempotent: a run that already produced its version returns it. A run killed midway
    (its worker lost) resumes from its checkpoints when the task is delivered again or the
    sweep re-enqueues it; a run another worker is still alive on returns None. Failures are
    recorded on the run with their reason.
    """
    run = TrainingRun.objects.get(id=run_id)
    existing = ModelVersion.objects.filter(run=run, name=run.model_name).first()
    if existing:
        if existing.name == TRANSITION_MODEL:
            transition_services.transition_version_complete(existing)  # if killed midway
        return existing
    if run.status == TrainingRun.Status.FAILED:
        raise ValueError(f"training run {run.id} failed; start a new one")
    if not _claim(run):
        log.info("training run %s is alive on another worker; leaving it there", run.id)
        return None
    run.refresh_from_db()
    try:
        if run.model_name == HEAD_NAME:
            version = _train_head_and_register(run, progress)
        elif run.model_name == TRANSITION_MODEL:
            # Registers and evaluates before the run is done, so what the run reports
            # includes the evaluation; transnet versions are never promoted.
            version = transition_services.transition_run_train(
                run, lambda phase, extra: _reporter(run, phase, extra, progress)
            )
        else:
            version = _train_and_register(run, progress)
    except Exception as e:
        log.exception("training run %s failed", run.id)
        run.status, run.finished_at = TrainingRun.Status.FAILED, timezone.now()
        run.error = f"{type(e).__name__}: {e}\n\n{traceback.format_exc(limit=5)}"
        run.save(update_fields=["status", "finished_at", "error"])
        raise
    run.status, run.finished_at = TrainingRun.Status.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    if version.name != TRANSITION_MODEL:
        _evaluate_and_maybe_promote(version)
    return version


def _claim(run: TrainingRun) -> bool:
    """Take the run for this worker: queued, or running with a worker gone quiet. One
    conditional UPDATE, so two deliveries of one run cannot both train it."""
    now = timezone.now()
    quiet = now - timedelta(seconds=settings.ODDBALL_TRAINING_STALE_S)
    claimable = Q(status=TrainingRun.Status.QUEUED) | Q(
        Q(heartbeat_at__lt=quiet) | Q(heartbeat_at__isnull=True),
        status=TrainingRun.Status.RUNNING,
    )
    return bool(
        TrainingRun.objects.filter(claimable, id=run.id).update(
            status=TrainingRun.Status.RUNNING,
            error="",
            heartbeat_at=now,
            started_at=Coalesce(F("started_at"), now),
        )
    )


def _reporter(
    run: TrainingRun, phase: str, extra: dict, progress: Callable[[dict], None] | None
) -> Callable[[dict], None]:
    def report(record: dict) -> None:
        TrainingRun.objects.filter(id=run.id).update(
            progress={"phase": phase, **record, **extra}, heartbeat_at=timezone.now()
        )
        if progress:
            progress({"phase": phase, **record, **extra})

    return report


def _train_and_register(run: TrainingRun, progress: Callable[[dict], None] | None) -> ModelVersion:
    media = Path(settings.MEDIA_ROOT)
    log_mels = snippet_log_mels()
    teacher = run.config.get("teacher")
    equal_weights = bool(run.config.get("equal_weights"))
    skip = ("pretrain", "teacher", "equal_weights")
    options = {k: v for k, v in run.config.items() if k not in skip}
    config = TrainConfig(**options)
    data, _, track_ids = triplet_data_build(
        log_mels, teacher=teacher, seed=config.seed, equal_weights=equal_weights
    )
    pretrained = _pretrained_for(run, log_mels, progress)
    config.checkpoint_path = str(media / "runs" / f"run-{run.id}.pt")
    extra = {"steps": config.steps, "triplets": len(data.triplets)}
    result = train(
        config,
        data,
        progress=_reporter(run, "fine-tune", extra, progress),
        init_state=model_load(pretrained).state_dict(),
    )
    # Rows quality control holds out (weight 0) are listed, to keep runs paired, never drawn.
    counted = int(np.count_nonzero(data.weights))
    run_metrics = {**result.metrics, "steps": result.step, "train_triplets": counted}
    if teacher:
        run_metrics["teacher_agreement"] = _teacher_agreement(result.model, teacher, log_mels)
    return _register(
        MODEL_NAME,
        run,
        result.model,
        {
            "train": asdict(config),
            "pretrained": pretrained.space,
            "teacher": teacher,
            "equal_weights": equal_weights,
        },
        run_metrics,
        track_ids,
        log_mels,
    )


def _teacher_agreement(model: nets.OddNet, teacher: str, log_mels: dict) -> dict:
    """How often the distilled model makes the teacher's odd-one-out decision, on random
    triplets of test-split tracks it never trained on."""
    test = sorted(
        Snippet.objects.filter(id__in=list(log_mels), track__split=Split.TEST).values_list(
            "id", "track_id"
        )
    )
    by_track: dict[int, list[int]] = {}
    for snippet_id, track_id in test:
        by_track.setdefault(track_id, []).append(snippet_id)
    tracks = sorted(by_track)
    if len(tracks) < 3:
        return {"agreement": None, "triplets": 0}
    rng = np.random.default_rng(0)
    triplets = [
        tuple(int(rng.choice(by_track[t])) for t in rng.choice(tracks, 3, replace=False))
        for _ in range(1000)
    ]
    ids = sorted({s for t in triplets for s in t})
    vectors = dict(zip(ids, nets.embed(model, [log_mels[s] for s in ids]), strict=True))
    student = metrics.odd_positions(np.array([[vectors[s] for s in t] for t in triplets]), "cosine")
    taught = evaluation.odd_positions(teacher, triplets)
    return {"agreement": float(np.mean(student == taught)), "triplets": len(triplets)}


def _train_head_and_register(
    run: TrainingRun, progress: Callable[[dict], None] | None
) -> ModelVersion:
    """A projection head over frozen BEATs vectors, trained on the human triplets."""
    missing = snippets_missing(embedding_services.BEATS_SPACE)
    if missing:
        embedding_services.snippets_embed_beats(missing)
    ids, matrix = embedding_matrix(embedding_services.BEATS_SPACE)
    position = {int(s): i for i, s in enumerate(ids)}
    rows, weights = vote_rows(position)
    config = HeadConfig(in_dim=matrix.shape[1], **run.config)
    report = _reporter(run, "head", {"steps": config.steps}, progress)
    report({"step": 0})
    head, run_metrics = train_head(config, matrix, np.array(rows), np.array(weights))
    report({"step": config.steps, "loss": run_metrics["final_loss"]})
    used = {int(ids[i]) for row in rows for i in row}
    tracks = sorted(set(Snippet.objects.filter(id__in=used).values_list("track_id", flat=True)))
    vectors = head_embed(head, matrix)
    return _register_model(
        HEAD_NAME,
        run,
        head,
        {"head": asdict(config), "input_space": embedding_services.BEATS_SPACE},
        run_metrics,
        tracks,
        dict(zip((int(s) for s in ids), vectors, strict=True)),
    )


def _pretrained_for(
    run: TrainingRun, log_mels: dict[int, np.ndarray], progress: Callable[[dict], None] | None
) -> ModelVersion:
    """The pretrained oddnet this run fine-tunes: this run's own if it made one (a resumed
    run), else the newest one made on the same snippets with the same options, else a new
    one. Pretraining reads no judgments, so it is redone only when the snippets change."""
    own = ModelVersion.objects.filter(run=run, name=PRETRAINED_NAME).first()
    if own:
        return own
    config = PretrainConfig(**run.config.get("pretrain", {}))
    signature = {"snippets": sorted(log_mels), "pretrain": asdict(config)}
    fingerprint = hashlib.sha256(json.dumps(signature).encode()).hexdigest()[:16]
    latest = ModelVersion.objects.filter(name=PRETRAINED_NAME).order_by("-version").first()
    if latest and latest.metrics.get("fingerprint") == fingerprint:
        return latest
    config.checkpoint_path = str(Path(settings.MEDIA_ROOT) / "runs" / f"run-{run.id}-pretrain.pt")
    snippet_ids = sorted(log_mels)
    track_of = dict(Snippet.objects.filter(id__in=snippet_ids).values_list("id", "track_id"))
    chunks = TrackChunks(
        features=np.stack([log_mels[s] for s in snippet_ids]),
        track_of=np.array([track_of[s] for s in snippet_ids]),
    )
    extra = {"steps": config.steps, "tracks": len(set(track_of.values()))}
    result = pretrain(config, chunks, progress=_reporter(run, "pretrain", extra, progress))
    return _register(
        PRETRAINED_NAME,
        run,
        result.model,
        {"pretrain": asdict(config)},
        {**result.metrics, "steps": result.step, "fingerprint": fingerprint},
        [],  # no judgments: every track is fair game for its evaluation
        log_mels,
    )


def _register(
    name: str,
    run: TrainingRun,
    model: nets.OddNet,
    config: dict,
    run_metrics: dict,
    track_ids: list[int],
    log_mels: dict[int, np.ndarray],
) -> ModelVersion:
    """Register an oddnet: its vectors are its embeddings of every snippet's log-mel."""
    snippet_ids = sorted(log_mels)
    vectors = nets.embed(model, [log_mels[s] for s in snippet_ids])
    return _register_model(
        name,
        run,
        model,
        config,
        run_metrics,
        track_ids,
        dict(zip(snippet_ids, vectors, strict=True)),
    )


def _register_model(
    name: str,
    run: TrainingRun,
    model: torch.nn.Module,
    config: dict,
    run_metrics: dict,
    track_ids: list[int],
    vectors: dict[int, np.ndarray],
) -> ModelVersion:
    """Save a self-describing checkpoint, add the version, store its vectors and build its
    index. The version is served only once promoted."""
    media = Path(settings.MEDIA_ROOT)
    with transaction.atomic():
        number = (ModelVersion.objects.filter(name=name).aggregate(n=Max("version"))["n"] or 0) + 1
        relative = Path("models") / f"{name}-{number}.pt"
        (media / relative).parent.mkdir(parents=True, exist_ok=True)
        config_key = "head_config" if name == HEAD_NAME else "net_config"
        torch.save(
            {
                "model": model.state_dict(),
                config_key: asdict(model.config),
                "config": config,
                "metrics": run_metrics,
            },
            media / relative,
        )
        version = ModelVersion.objects.create(
            name=name,
            version=number,
            run=run,
            checkpoint=relative.as_posix(),
            config={**config, "net": asdict(model.config)},  # the architecture
            metrics=run_metrics,
            trained_track_ids=track_ids,
            n_params=sum(p.numel() for p in model.parameters()),
            size_bytes=nets.param_bytes(model),
        )
    embedding_services.embeddings_store(version.space, vectors)
    embedding_services.index_build(version.space)
    model_export(version, model)
    return version


def model_export(version: ModelVersion, model: torch.nn.Module | None = None) -> dict[str, str]:
    """Write the version's files for other programs (ONNX checked against onnxruntime,
    safetensors, and a JSON description of the front end) under media/models/<space>/."""
    model = model or model_load(version)
    folder = Path("models") / version.space.replace("@", "-")
    metadata = {
        "space": version.space,
        "embedding": "L2-normalised; compare with cosine similarity",
        "trained_on_tracks": len(version.trained_track_ids),
        "created_at": version.created_at.isoformat(),
    }
    stem = version.space.replace("@", "-")
    if version.name == HEAD_NAME:
        paths = export.export_head(model, Path(settings.MEDIA_ROOT) / folder, stem, metadata)
    else:
        paths = export.export_all(model, Path(settings.MEDIA_ROOT) / folder, stem, metadata)
    version.artifacts = {kind: (folder / p.name).as_posix() for kind, p in paths.items()}
    version.save(update_fields=["artifacts"])
    return version.artifacts


def _evaluate_and_maybe_promote(version: ModelVersion) -> None:
    """Evaluate a new version and record in its metrics whether the automatic promotion
    rule (`promotion_earned`) asks for it; the caller enqueues the promotion."""
    try:
        evaluation = model_evaluate(version)
    except ValueError as e:
        log.info("version %s not evaluated: %s", version.space, e)
        return
    # An equal-weights version is a baseline for quality control, never served.
    baseline = bool((version.config or {}).get("equal_weights"))
    if settings.ODDBALL_AUTO_PROMOTE and not baseline and promotion_earned(evaluation.results):
        version.metrics = {**version.metrics, "promote": promotion_reason(evaluation.results)}
        version.save(update_fields=["metrics"])


def promotion_earned(results: dict) -> bool:
    """The automatic promotion rule: on the same held-out triplets, the new version agrees
    with people at least as well as mel-stats, its pretrained start and the promoted
    version. Ties go to the newer version, which has seen more judgments."""
    rivals = [results.get(k) for k in ("mel_stats", "pretrained", "previous_promoted")]
    return all(results["agreement"] >= r for r in rivals if r is not None)


def promotion_reason(results: dict) -> str:
    parts = [f"agreement {results['agreement']:.3f}"]
    for key in ("mel_stats", "pretrained", "previous_promoted"):
        if results.get(key) is not None:
            parts.append(f"{key} {results[key]:.3f}")
    return ", ".join(parts) + f" on {results['n_triplets']} held-out triplets"


def model_promote(version_id: int) -> ModelVersion:
    """Serve a version (run by a worker: the caller enqueues `training.promote_model`).

    Embed every visible snippet the version has no vector for, rebuild its index, then
    swap: in one transaction the version becomes the one promoted version. Search and
    sampling read the promoted version's index, which is whole before the swap. Idempotent.
    A transnet version is refused (ValueError): it is served by its clip index instead."""
    version = ModelVersion.objects.get(id=version_id)
    if version.name == TRANSITION_MODEL:
        raise ValueError(
            f"{version.space} is a transition model: the newest transnet with a clip index "
            "answers what plays next; promotion picks the served embedding model"
        )
    missing = snippets_missing(version.space)
    if missing:
        embedding_services.embeddings_store(version.space, version_vectors(version, missing))
    embedding_services.index_build(version.space)
    with transaction.atomic():
        # One version is served at a time, whatever its kind.
        ModelVersion.objects.filter(promoted=True).exclude(id=version.id).update(promoted=False)
        ModelVersion.objects.filter(id=version.id).update(promoted=True, promoted_at=timezone.now())
    version.refresh_from_db()
    return version


def retraining_due() -> str | None:
    """Why a retraining should start now, or None: enough accepted judgments have arrived
    since the last run started (ODDBALL_RETRAIN_EVERY), and none is queued or running."""
    if TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).exists():
        return None
    # A transition run reads no judgments, so it does not reset the count.
    last = TrainingRun.objects.exclude(model_name=TRANSITION_MODEL).order_by("-created_at").first()
    since = last.judgments_at_start if last else 0
    new = _accepted_judgments() - since
    if new < settings.ODDBALL_RETRAIN_EVERY:
        return None
    return f"{new} new accepted judgments since the last run"


def training_runs_stale(max_quiet_s: float) -> list[TrainingRun]:
    """Runs whose worker has gone quiet: queued or running with no sign of life for
    `max_quiet_s`. Their queue message was lost or their worker died; the sweep sends them
    again and they resume from their checkpoints."""
    cutoff = timezone.now() - timedelta(seconds=max_quiet_s)
    quiet = TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )
    return list(quiet)


def model_load(version: ModelVersion) -> torch.nn.Module:
    """The version's model in eval mode: an OddNet, or a ProjectionHead for beats-head."""
    state = torch.load(Path(settings.MEDIA_ROOT) / version.checkpoint, weights_only=False)
    if version.name == HEAD_NAME:
        model = ProjectionHead(HeadConfig(**state["head_config"]))
    else:
        model = nets.OddNet(nets.OddNetConfig(**state["net_config"]))
    model.load_state_dict(state["model"])
    return model.eval()


def version_vectors(version: ModelVersion, snippet_ids: list[int]) -> dict[int, np.ndarray]:
    """The version's embeddings of these snippets, computed from audio (or BEATs vectors)."""
    model = model_load(version)
    if version.name == HEAD_NAME:
        embedding_services.snippets_embed_beats(snippet_ids)  # only those it lacks
        ids, matrix = embedding_matrix(embedding_services.BEATS_SPACE, snippet_ids)
        return dict(zip((int(s) for s in ids), head_embed(model, matrix), strict=True))
    log_mels = snippet_log_mels(snippet_ids=snippet_ids)
    vectors = nets.embed(model, [log_mels[s] for s in snippet_ids])
    return dict(zip(snippet_ids, vectors, strict=True))
