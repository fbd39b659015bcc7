"""Celery adapters for training."""

from celery import shared_task

from training import services


@shared_task(name="training.train_model", queue="train", acks_late=True)
def train_model(run_id: int) -> int:
    """Execute one queued training run; returns the registered ModelVersion id."""
    return services.training_run_execute(run_id).id
