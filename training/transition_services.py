"""Writes for the transition model, "transnet": train it on whole tracks and on people's
ratings, register it with its files, clip vectors and index, and evaluate it on held-out
tracks. Runs are created and claimed by `training.services`, which calls in here.

Design note: which tracks each step reads
-----------------------------------------
Training reads the approved train-split tracks with a whole-track copy, and the accepted
ratings of train-split transition tasks. The validation split stays out of training (as for
oddnet) and the test split is held out. Evaluation scores the seams of test-split clips,
each ranked among candidates from tracks no version trains on: the test split's clips and
the validation split's as extra distractors. A test split alone is too small to fill 100
candidates per seam (the same-track share is capped at 20): the corpus folders without
versions of one piece put about 6 tracks, 80 openings, in it. Unseen validation tracks are
distractors as fair as test tracks, and only test-split seams are scored.

A run reads the tracks and ratings that existed when it was created, so a run resumed after
its worker died trains on the same data and ends where an unbroken one would.
"""

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet

from embeddings import services as embedding_services
from embeddings.extractors import mel_stats
from embeddings.models import Clip, ClipEmbedding, Split, Track
from embeddings.selectors import clip_index_path, clips_missing
from training import export, nets
from training.models import TRANSITION_MODEL, Evaluation, ModelVersion, TrainingRun
from training.selectors import rated_transitions
from training.transition_metrics import (
    N_CANDIDATES,
    build_candidates,
    candidates_possible,
    evaluate_transitions,
    spearman,
)
from training.transition_net import (
    ClipConfig,
    RatedPairs,
    TrackClips,
    TransitionData,
    TransitionNet,
    TransitionTrainConfig,
    clips_at,
    embed_openings,
    frame_features,
    held_out,
    load_transition_model,
    predict_next,
    train_transitions,
)

log = logging.getLogger(__name__)

TRANSITION_OPTIONS = {f.name for f in fields(TransitionTrainConfig)} - {"checkpoint_path"}
GOOD_MEAN, BAD_MEAN = 4.0, 2.0  # mean ratings that make a pair an extra positive, negative
MIN_SPEARMAN_PAIRS = 3  # fewer rated pairs give no correlation (null)
EVALUATION_SEED = 0  # candidates and random picks; fixed, so versions meet the same test

Reporter = Callable[[str, dict], Callable[[dict], None]]  # (phase, extra) -> report(record)


@dataclass(frozen=True)
class Windows:
    """The frame grid a version reads: window length and ending and opening lengths."""

    window_s: float
    ending: int
    opening: int

    @classmethod
    def from_settings(cls) -> "Windows":
        window_s = ClipConfig.window_s
        edge = max(1, round(settings.ODDBALL_CLIP_EDGE_S / window_s))
        return cls(window_s, edge, edge)

    def clip_config(self, with_stats: bool) -> ClipConfig:
        return ClipConfig(
            ending_s=self.ending * self.window_s,
            opening_s=self.opening * self.window_s,
            window_s=self.window_s,
            mel_stats=with_stats,
        )

    def seam(self, seconds: float) -> int:
        """The window an ending stops at: whole windows only, so it never passes `seconds`."""
        return int(np.floor(seconds / self.window_s + 1e-6))

    def start(self, seconds: float) -> int:
        return round(seconds / self.window_s)


def _approved(split: str | list[str]) -> QuerySet[Track]:
    splits = [split] if isinstance(split, str) else split
    return (
        Track.objects.filter(split__in=splits, status=Track.Status.APPROVED)
        .exclude(analysis="")
        .order_by("id")
    )


def transition_options_check(config: dict) -> None:
    """Refuse unknown options, and a run with nothing to train on (ValueError)."""
    unknown = set(config) - TRANSITION_OPTIONS
    if unknown:
        raise ValueError(f"unknown transition training options: {', '.join(sorted(unknown))}")
    if not _approved(Split.TRAIN).exists():
        raise ValueError(
            "no approved train-split track has a whole-track copy to train the transition "
            "model on; import audio first (`import_audio PATH`)"
        )


def _track_frames(tracks: list[Track], windows: Windows, report: Callable) -> dict:
    """Frame features (W, 128) of each track's whole analysis copy, by track id."""
    frames = {}
    for i, track in enumerate(tracks, 1):
        wave = embedding_services.track_analysis_audio(track)
        frames[track.id] = frame_features(wave, windows.window_s)
        report({"step": i})
    return frames


def _rated_pairs(
    position: dict[int, int], windows: Windows, run: TrainingRun
) -> tuple[RatedPairs | None, dict]:
    """Train-split pairs people rated well (mean >= 4) or badly (<= 2), between training
    tracks, in window units for `TransitionData`; and their counts."""
    rows, good = [], []
    rated = rated_transitions(Split.TRAIN, before=run.created_at)
    for pair in rated:
        if pair.x_track_id not in position or pair.y_track_id not in position:
            continue
        if BAD_MEAN < pair.mean < GOOD_MEAN:
            continue
        rows.append(
            (
                position[pair.x_track_id],
                windows.seam(pair.x_seam_s),
                position[pair.y_track_id],
                windows.start(pair.y_seam_s),
            )
        )
        good.append(pair.mean >= GOOD_MEAN)
    counts = {"rated_pairs": len(rated), "rated_good": sum(good)}
    counts["rated_bad"] = len(good) - counts["rated_good"]
    if not rows:
        return None, counts
    table = np.array(rows, dtype=np.int64)
    return RatedPairs(table[:, :2], table[:, 2:], np.array(good)), counts


def transition_run_train(run: TrainingRun, reporter: Reporter) -> ModelVersion:
    """Train transnet for one claimed run, register it and evaluate it; the version.

    Needs no lock: `training.services._claim` gave this worker the run. Raises ValueError
    when there is nothing to train on."""
    windows = Windows.from_settings()
    config = TransitionTrainConfig(**run.config)
    config.checkpoint_path = str(Path(settings.MEDIA_ROOT) / "runs" / f"run-{run.id}.pt")
    tracks = list(_approved(Split.TRAIN).filter(created_at__lte=run.created_at))
    if not tracks:
        raise ValueError("no approved train-split track has a whole-track copy to train on")
    frames = _track_frames(tracks, windows, reporter("frames", {"steps": len(tracks)}))
    position = {t.id: i for i, t in enumerate(tracks)}
    rated, rated_counts = _rated_pairs(position, windows, run)
    data = TransitionData(
        frames=[frames[t.id] for t in tracks],
        ending_windows=windows.ending,
        opening_windows=windows.opening,
        rated=rated,
    )
    extra = {"steps": config.steps, "tracks": len(tracks)}
    result = train_transitions(config, data, progress=reporter("transitions", extra))
    run_metrics = {
        **result.metrics,
        **rated_counts,
        "steps": result.step,
        "train_tracks": len(tracks),
        "train_seconds": result.history[-1]["seconds"] if result.history else 0.0,
    }
    version = _register(run, result.model, config, windows, run_metrics, sorted(position))
    transition_version_complete(version, result.model, frames, reporter)
    try:
        transition_evaluate(version, reporter("evaluation", {}))
    except ValueError as e:
        log.info("version %s not evaluated: %s", version.space, e)
        version.metrics = {**version.metrics, "evaluation": None, "not_evaluated": str(e)}
        version.save(update_fields=["metrics"])
    return version


def _register(
    run: TrainingRun,
    model: TransitionNet,
    config: TransitionTrainConfig,
    windows: Windows,
    run_metrics: dict,
    track_ids: list[int],
) -> ModelVersion:
    """Save a self-describing checkpoint (what `load_transition_model` reads) and add the
    version, numbered after the newest transnet."""
    media = Path(settings.MEDIA_ROOT)
    train_config = {k: v for k, v in asdict(config).items() if k != "checkpoint_path"}
    with transaction.atomic():
        latest = ModelVersion.objects.filter(name=TRANSITION_MODEL).aggregate(n=Max("version"))
        number = (latest["n"] or 0) + 1
        relative = Path("models") / f"{TRANSITION_MODEL}-{number}.pt"
        (media / relative).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "model": model.state_dict(),
                "net_config": asdict(model.config),
                "config": train_config,
                "metrics": run_metrics,
            },
            media / relative,
        )
        return ModelVersion.objects.create(
            name=TRANSITION_MODEL,
            version=number,
            run=run,
            checkpoint=relative.as_posix(),
            config={"train": train_config, "net": asdict(model.config), "windows": asdict(windows)},
            metrics=run_metrics,
            trained_track_ids=track_ids,
            n_params=sum(p.numel() for p in model.parameters()),
            size_bytes=nets.param_bytes(model),
        )


def transition_model_load(version: ModelVersion) -> TransitionNet:
    """The version's TransitionNet in eval mode."""
    return load_transition_model(str(Path(settings.MEDIA_ROOT) / version.checkpoint))


def _windows_of(version: ModelVersion) -> Windows:
    return Windows(**version.config["windows"])


def transition_version_complete(
    version: ModelVersion,
    model: TransitionNet | None = None,
    frames: dict[int, np.ndarray] | None = None,
    reporter: Reporter | None = None,
) -> None:
    """Give the version everything it serves with, where missing (idempotent): the ending
    and opening vectors of every clip of a track with a whole-track copy, the FAISS index
    of its openings, and its ONNX and safetensors files. `frames` by track id saves
    decoding the tracks they cover again."""
    model = model or transition_model_load(version)
    windows, frames = _windows_of(version), frames or {}
    missing = list(Track.objects.filter(id__in=clips_missing(version.space)).order_by("id"))
    report = reporter("clips", {"steps": len(missing)}) if reporter else (lambda record: None)
    for i, track in enumerate(missing, 1):
        if track.id not in frames:
            wave = embedding_services.track_analysis_audio(track)
            frames[track.id] = frame_features(wave, windows.window_s)
        vectors = _clip_vectors(model, windows, list(track.clips.all()), frames[track.id])
        embedding_services.clip_embeddings_store(version.space, vectors)
        report({"step": i})
    has_openings = ClipEmbedding.objects.filter(space=version.space, part="opening").exists()
    if has_openings and (missing or not clip_index_path(version.space).is_file()):
        embedding_services.clip_index_build(version.space)
    if not version.artifacts:
        _export(version, model, windows)


def _clip_vectors(
    model: TransitionNet, windows: Windows, clips: list[Clip], frames: np.ndarray
) -> dict[tuple[int, str], np.ndarray]:
    """Each clip's ending as the model's prediction of what follows, and its opening as
    the model embeds candidates, keyed (clip id, part); edges that do not fit are left out."""
    endings, openings = [], []
    for clip in clips:
        end, start = windows.seam(clip.end_s), windows.start(clip.start_s)
        if windows.ending <= end <= len(frames):
            endings.append((clip.id, frames[end - windows.ending : end]))
        if start + windows.opening <= len(frames):
            openings.append((clip.id, frames[start : start + windows.opening]))
    out = {}
    for part, rows, embed in (
        (ClipEmbedding.Part.ENDING, endings, predict_next),
        (ClipEmbedding.Part.OPENING, openings, embed_openings),
    ):
        if rows:
            vectors = embed(model, np.stack([f for _, f in rows]))
            out |= {(cid, part.value): v for (cid, _), v in zip(rows, vectors, strict=True)}
    return out


def _export(version: ModelVersion, model: TransitionNet, windows: Windows) -> None:
    folder = Path("models") / version.space.replace("@", "-")
    metadata = {
        "space": version.space,
        "embedding": "L2-normalised; score a transition by the cosine of the two vectors",
        "trained_on_tracks": len(version.trained_track_ids),
        "created_at": version.created_at.isoformat(),
    }
    paths = export.export_transition(
        model,
        Path(settings.MEDIA_ROOT) / folder,
        version.space.replace("@", "-"),
        metadata,
        windows=(windows.ending, windows.opening),
    )
    version.artifacts = {kind: (folder / p.name).as_posix() for kind, p in paths.items()}
    version.save(update_fields=["artifacts"])


def transition_evaluate(
    version: ModelVersion, progress: Callable[[dict], None] | None = None
) -> Evaluation:
    """Evaluate a transnet version on held-out tracks (see the module note) beside the
    mel-stats nearest neighbour and chance, with the Spearman correlation of its score and
    of the mel-stats score with people's mean rating of test-split pairs. Stores and returns
    the Evaluation, and keeps a summary in the version's metrics.

    Raises ValueError when there is no test-split clip with a continuation to score."""
    model, windows = transition_model_load(version), _windows_of(version)
    trained = set(version.trained_track_ids)
    tracks = [t for t in _approved([Split.TEST, Split.VAL]) if t.id not in trained]
    test_ids = {t.id for t in tracks if t.split == Split.TEST}
    if not test_ids:
        raise ValueError("no approved test-split track with a whole-track copy to evaluate on")
    spans: dict[int, list[tuple[float, float]]] = {t.id: [] for t in tracks}
    for track_id, start, duration in Clip.objects.filter(track__in=tracks).values_list(
        "track_id", "start_s", "duration_s"
    ):
        spans[track_id].append((start, start + duration))
    pairs = [
        p
        for p in rated_transitions(Split.TEST)
        if p.x_track_id in test_ids and p.y_track_id in test_ids
    ]
    edges = _PairEdges(windows, pairs)
    report = progress or (lambda record: None)
    clips: list[TrackClips] = []
    for i, track in enumerate(tracks, 1):
        wave = embedding_services.track_analysis_audio(track)
        clips.append(clips_at(wave, np.array(spans[track.id]), windows.clip_config(True)))
        edges.collect(track.id, wave, clips[-1].frames)
        report({"step": i, "steps": len(tracks)})
    ids = [t.id for t in tracks]
    held = held_out(clips, ids, seam_tracks=test_ids)
    n = min(N_CANDIDATES, candidates_possible(held.seams))
    if n < 2:
        raise ValueError("too few held-out clips to rank a continuation among candidates")
    candidates = build_candidates(held.seams, np.random.default_rng(EVALUATION_SEED), n=n)
    summary = evaluate_transitions(
        candidates,
        predict_next(model, held.endings),
        embed_openings(model, held.pool),
        held.ending_stats,
        held.pool_stats,
        held.ending_edge,
        held.pool_edge,
        np.random.default_rng(EVALUATION_SEED + 1),
    )
    results = {
        "space": version.space,
        **summary,
        "held_out_tracks": len(test_ids),
        "distractor_tracks": len(tracks) - len(test_ids),
        "pool": len(held.pool),
        "spearman": edges.spearman(model, held.pool_stats),
    }
    evaluation = Evaluation.objects.create(
        space=version.space, model_version=version, split=Split.TEST, results=_json_safe(results)
    )
    version.metrics = {**version.metrics, "evaluation": transition_summary(evaluation.results)}
    version.save(update_fields=["metrics"])
    return evaluation


class _PairEdges:
    """The frames and mel-stats of each rated pair's ending and opening, gathered while
    the held-out tracks are read once."""

    def __init__(self, windows: Windows, pairs: list) -> None:
        self.windows, self.pairs = windows, pairs
        self.endings: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # by pair index
        self.openings: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def collect(self, track_id: int, wave: np.ndarray, frames: np.ndarray) -> None:
        w, per = self.windows, round(self.windows.window_s * mel_stats.SAMPLE_RATE)
        for i, pair in enumerate(self.pairs):
            if pair.x_track_id == track_id:
                end = w.seam(pair.x_seam_s)
                if w.ending <= end <= len(frames):
                    audio = wave[(end - w.ending) * per : end * per]
                    self.endings[i] = (frames[end - w.ending : end], mel_stats.extract(audio))
            if pair.y_track_id == track_id:
                start = w.start(pair.y_seam_s)
                if start + w.opening <= len(frames):
                    audio = wave[start * per : (start + w.opening) * per]
                    self.openings[i] = (frames[start : start + w.opening], mel_stats.extract(audio))

    def spearman(self, model: TransitionNet, pool_stats: np.ndarray) -> dict:
        """Spearman's rho of people's mean rating with the model's score (cosine of X's
        prediction and Y's opening) and with the mel-stats score (minus the distance of
        the two, standardised like the baseline's candidates), per rated pair."""
        both = [i for i in range(len(self.pairs)) if i in self.endings and i in self.openings]
        out = {"model": None, "melstats": None, "n": len(both)}
        out["ratings"] = sum(self.pairs[i].ratings for i in both)
        if len(both) < MIN_SPEARMAN_PAIRS:
            return out
        predicted = predict_next(model, np.stack([self.endings[i][0] for i in both]))
        opened = embed_openings(model, np.stack([self.openings[i][0] for i in both]))
        mean, std = pool_stats.mean(axis=0), np.maximum(pool_stats.std(axis=0), 1e-6)
        e = (np.stack([self.endings[i][1] for i in both]) - mean) / std
        o = (np.stack([self.openings[i][1] for i in both]) - mean) / std
        human = np.array([self.pairs[i].mean for i in both])
        out["model"] = spearman(np.sum(predicted * opened, axis=1), human)
        out["melstats"] = spearman(-np.linalg.norm(e - o, axis=1), human)
        return out


def transition_summary(results: dict) -> dict:
    """The headline figures of a transition evaluation, for a version's metrics and the
    `train --transitions` output."""
    return {
        "recall_at_1": {k: results[k]["recall_at_1"] for k in ("model", "melstats", "chance")},
        "recall_at_10": {k: results[k]["recall_at_10"] for k in ("model", "melstats", "chance")},
        "mean_rank": {k: results[f"{k}_mean_rank"] for k in ("model", "melstats")},
        "cosine_median": {
            "true": results["cosine_true"]["quantiles"]["0.5"],
            "random": results["cosine_random"]["quantiles"]["0.5"],
        },
        "spearman": results["spearman"],
        "seams": results["seams"],
        "candidates": results["candidates"],
        "held_out_tracks": results["held_out_tracks"],
    }


def _json_safe(value: object) -> object:
    """NaN (a constant score) is not JSON: store null."""
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
