"""Reads for the training app."""

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import torch
from django.conf import settings
from django.db.models import Count, F, Sum

from annotation.models import Judgment
from annotation.selectors import counted_ratings
from embeddings.audio import DEFAULT_SNIPPET_S
from embeddings.models import Snippet
from embeddings.services import snippet_analysis_audio
from training import nets
from training.models import TRANSITION_MODEL, Evaluation, ModelVersion, TrainingRun


def snippet_log_mels(
    seconds: float = DEFAULT_SNIPPET_S, snippet_ids: list[int] | None = None
) -> dict[int, np.ndarray]:
    """Log-mels (n_mels, T) of every visible snippet (or of `snippet_ids`), all cut or
    wrapped to `seconds` so they stack into one training tensor."""
    frames = nets.seconds_to_frames(seconds)
    out = {}
    snippets = Snippet.objects.filter(hidden=False).order_by("id")
    if snippet_ids is not None:
        snippets = snippets.filter(id__in=snippet_ids)
    for snippet in snippets:
        wave = torch.from_numpy(snippet_analysis_audio(snippet))
        mel = nets.log_mel(wave).numpy()
        if mel.shape[1] < frames:  # short tracks give shorter snippets: wrap around
            mel = np.tile(mel, (1, int(np.ceil(frames / mel.shape[1]))))
        out[snippet.id] = np.ascontiguousarray(mel[:, :frames], dtype=np.float32)
    return out


def dashboard_rows() -> list[dict]:
    """The newest agreement evaluation of each embedding model version, oldest first (the
    transition model's are in `transition_rows`)."""
    return _newest_evaluations(ModelVersion.objects.exclude(name=TRANSITION_MODEL))


def transition_rows() -> list[dict]:
    """The newest evaluation of each transition model version, newest first."""
    return _newest_evaluations(ModelVersion.objects.filter(name=TRANSITION_MODEL))[::-1]


def _newest_evaluations(versions: object) -> list[dict]:
    versions = list(versions.order_by("created_at"))
    newest: dict[int, Evaluation] = {}
    for evaluation in Evaluation.objects.filter(model_version__in=versions).order_by("created_at"):
        newest[evaluation.model_version_id] = evaluation
    return [{"version": v, "evaluation": newest.get(v.id)} for v in versions]


@dataclass(frozen=True)
class RatedTransition:
    """The accepted ratings of one rendered pair, clip X's ending into clip Y."""

    clip_x_id: int
    clip_y_id: int
    x_track_id: int
    y_track_id: int
    x_seam_s: float  # s into X's track: X's end
    y_seam_s: float  # s into Y's track where Y came in: Y's start, or X's end if Y goes on
    mean: float  # mean rating (1 jarring … 5 seamless), weighted by each rating's weight
    ratings: int


def rated_transitions(split: str, before: datetime | None = None) -> list[RatedTransition]:
    """Accepted ratings of `split`'s transition tasks (made before `before`, if given),
    averaged per pair and seam; the seams are the ones the renderings used."""
    ratings = counted_ratings().filter(task__split=split, task__rendering__isnull=False)
    if before is not None:
        ratings = ratings.filter(created_at__lte=before)
    rows = (
        ratings.values(
            "task__clip_x_id",
            "task__clip_y_id",
            "task__clip_x__track_id",
            "task__clip_y__track_id",
            "task__rendering__x_seam_s",
            "task__rendering__y_seam_s",
        )
        .annotate(total=Sum(F("rating") * F("weight")), weights=Sum("weight"), n=Count("id"))
        .filter(weights__gt=0)
        .order_by("task__clip_x_id", "task__clip_y_id")
    )
    return [
        RatedTransition(
            clip_x_id=r["task__clip_x_id"],
            clip_y_id=r["task__clip_y_id"],
            x_track_id=r["task__clip_x__track_id"],
            y_track_id=r["task__clip_y__track_id"],
            x_seam_s=r["task__rendering__x_seam_s"],
            y_seam_s=r["task__rendering__y_seam_s"],
            mean=r["total"] / r["weights"],
            ratings=r["n"],
        )
        for r in rows
    ]


def retraining_status() -> dict:
    """What the beat rule sees: new accepted judgments since the last run, the threshold,
    and the queued or running run if there is one."""
    # A transition run reads no judgments, so it does not reset the count.
    last = TrainingRun.objects.exclude(model_name=TRANSITION_MODEL).order_by("-created_at").first()
    accepted = Judgment.objects.filter(status=Judgment.Status.ACCEPTED, practice=False).count()
    since = accepted - (last.judgments_at_start if last else 0)
    return {
        "new_judgments": since,
        "threshold": settings.ODDBALL_RETRAIN_EVERY,
        "active": TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).first(),
    }


def training_runs_recent(limit: int = 10) -> list[TrainingRun]:
    return list(TrainingRun.objects.order_by("-created_at")[:limit])


def transition_version_newest() -> ModelVersion | None:
    """The newest transnet version: the one whose clip index answers what plays next."""
    return ModelVersion.objects.filter(name=TRANSITION_MODEL).order_by("-version").first()


def served_version() -> ModelVersion | None:
    """The promoted version: its index is the one search and sampling read. None until a
    version has been promoted (then mel-stats serves)."""
    return ModelVersion.objects.filter(promoted=True).first()
