"""Celery adapters for training: take ids, call a service, enqueue what follows."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from embeddings.selectors import clips_missing
from training import services, transition_services
from training.models import ModelVersion
from training.selectors import transition_version_newest

log = logging.getLogger(__name__)


@shared_task(name="training.train_model", queue="train", acks_late=True)
def train_model(run_id: int) -> int | None:
    """Execute one queued training run; returns the fine-tuned ModelVersion id (None when
    another worker has the run). When the automatic promotion rule chose the new version,
    its promotion follows."""
    version = services.training_run_execute(run_id)
    if version is None:
        return None
    if version.metrics.get("promote") and not version.promoted:
        transaction.on_commit(lambda: promote_model.delay(version.id))
    return version.id


@shared_task(name="training.promote_model", queue="embed", acks_late=True)
def promote_model(version_id: int) -> int:
    """Complete a version's vectors and index, then make it the served version."""
    return services.model_promote(version_id).id


@shared_task(name="training.retrain_if_due", queue="train")
def retrain_if_due() -> int | None:
    """Beat: start a retraining when enough new judgments have arrived. Returns the run id."""
    reason = services.retraining_due()
    if reason is None:
        return None
    try:
        run = services.training_run_create(reason=reason)
    except services.TrainingBusy:
        return None
    transaction.on_commit(lambda: train_model.delay(run.id))
    return run.id


@shared_task(name="training.complete_transition_version", queue="embed", acks_late=True)
def complete_transition_version(version_id: int) -> int:
    """Give a transnet version the clip vectors, index and files it lacks (idempotent)."""
    transition_services.transition_version_complete(ModelVersion.objects.get(id=version_id))
    return version_id


@shared_task(name="training.sweep", queue="train")
def sweep() -> list[int]:
    """Beat: send again the runs whose worker went quiet (lost message, killed worker), and
    have the newest transnet embed the clips of tracks imported since it was trained, so
    they can be proposed as what plays next. Returns the ids of the runs sent again."""
    stale = services.training_runs_stale(settings.ODDBALL_TRAINING_STALE_S)
    for run in stale:
        log.warning("training run %s went quiet; sending it again", run.id)
        train_model.delay(run.id)
    newest = transition_version_newest()
    if newest is not None and clips_missing(newest.space):
        complete_transition_version.delay(newest.id)
    return [run.id for run in stale]
