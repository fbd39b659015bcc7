"""Reads for the training app."""

import numpy as np
import torch
from django.conf import settings

from annotation.models import Judgment
from embeddings.audio import DEFAULT_SNIPPET_S
from embeddings.models import Snippet
from embeddings.services import snippet_analysis_audio
from training import nets
from training.models import Evaluation, ModelVersion, TrainingRun


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
    """The newest evaluation of each model version (and of mel-stats alone), oldest first."""
    newest: dict[int, Evaluation] = {}
    for evaluation in Evaluation.objects.filter(model_version__isnull=False).order_by("created_at"):
        newest[evaluation.model_version_id] = evaluation
    return [
        {"version": version, "evaluation": newest.get(version.id)}
        for version in ModelVersion.objects.order_by("created_at")
    ]


def retraining_status() -> dict:
    """What the beat rule sees: new accepted judgments since the last run, the threshold,
    and the queued or running run if there is one."""
    last = TrainingRun.objects.order_by("-created_at").first()
    accepted = Judgment.objects.filter(status=Judgment.Status.ACCEPTED, practice=False).count()
    since = accepted - (last.judgments_at_start if last else 0)
    return {
        "new_judgments": since,
        "threshold": settings.ODDBALL_RETRAIN_EVERY,
        "active": TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).first(),
    }


def training_runs_recent(limit: int = 10) -> list[TrainingRun]:
    return list(TrainingRun.objects.order_by("-created_at")[:limit])


def served_version() -> ModelVersion | None:
    """The promoted version: its index is the one search and sampling read. None until a
    version has been promoted (then mel-stats serves)."""
    return ModelVersion.objects.filter(promoted=True).first()
