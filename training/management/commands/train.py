"""python manage.py train : train oddnet on the accepted judgments and register a version."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from training import services
from training.models import ModelVersion, TrainingRun
from training.tasks import train_model
from training.train import TrainConfig

POLL_S = 1.0


class Command(BaseCommand):
    help = "Train oddnet with a triplet loss on accepted judgments; registers a ModelVersion."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = TrainConfig()
        parser.add_argument("--steps", type=int, default=defaults.steps)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--seed", type=int, default=defaults.seed)

    def handle(self, *args: object, **options: object) -> None:
        config = {k: options[k] for k in ("steps", "batch_size", "lr", "seed")}
        run = services.training_run_create(config)
        bar = tqdm(total=config["steps"], desc="train oddnet", unit="step")
        if settings.CELERY_TASK_ALWAYS_EAGER:

            def progress(record: dict) -> None:
                bar.update(int(record["step"]) - bar.n)
                bar.set_postfix(loss=f"{record['loss']:.3f}")

            try:
                version = services.training_run_execute(run.id, progress)
            except ValueError as e:
                raise CommandError(str(e)) from e
        else:
            transaction.on_commit(lambda: train_model.delay(run.id))
            version = self._wait(run, bar)
        bar.close()
        self.stdout.write(
            json.dumps(
                {"model": version.space, **version.metrics, "size_bytes": version.size_bytes}
            )
        )

    def _wait(self, run: TrainingRun, bar: tqdm) -> ModelVersion:
        """Follow a run on a worker through its database row, the system of record."""
        while True:
            run.refresh_from_db()
            step = int(run.progress.get("step", 0))
            bar.update(step - bar.n)
            if run.status == TrainingRun.Status.DONE:
                return ModelVersion.objects.get(run=run)
            if run.status == TrainingRun.Status.FAILED:
                raise CommandError(f"training run {run.id} failed: {run.error.splitlines()[0]}")
            time.sleep(POLL_S)
