"""python manage.py train : pretrain (or reuse) and fine-tune oddnet on the accepted
judgments, register the versions, evaluate, and promote when the rule says so."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from training import services
from training.models import ModelVersion, TrainingRun
from training.pretrain import PretrainConfig
from training.tasks import promote_model, train_model
from training.train import TrainConfig

POLL_S = 1.0


class Command(BaseCommand):
    help = "Train oddnet on accepted judgments (pretrained on every snippet first)."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults, pre = TrainConfig(), PretrainConfig()
        parser.add_argument("--steps", type=int, default=defaults.steps)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--pretrain-steps", type=int, default=pre.steps)
        parser.add_argument(
            "--model",
            choices=[services.MODEL_NAME, services.HEAD_NAME],
            default=services.MODEL_NAME,
            help="oddnet, or a projection head over frozen BEATs vectors (needs a checkpoint)",
        )
        parser.add_argument(
            "--teacher",
            help="distil oddnet from a registered model, e.g. beats-head@1, instead of votes",
        )

    def handle(self, *args: object, **options: object) -> None:
        config = {k: options[k] for k in ("steps", "batch_size", "lr", "seed")}
        if options["model"] == services.MODEL_NAME:
            config["pretrain"] = {"steps": options["pretrain_steps"], "seed": options["seed"]}
            if options["teacher"]:
                config["teacher"] = options["teacher"]
        elif options["teacher"]:
            raise CommandError("--teacher distils oddnet; it does not apply to a head")
        try:
            run = services.training_run_create(
                config, reason="manage.py train", model_name=options["model"]
            )
        except (ValueError, services.TrainingBusy) as e:
            raise CommandError(str(e)) from e
        bars: dict[str, tqdm] = {}

        def progress(record: dict) -> None:
            phase = record.get("phase", "train")
            if phase not in bars:
                bars[phase] = tqdm(total=record.get("steps"), desc=phase, unit="step")
            bar = bars[phase]
            bar.update(int(record.get("step", 0)) - bar.n)
            if "loss" in record:
                bar.set_postfix(loss=f"{record['loss']:.3f}")

        if settings.CELERY_TASK_ALWAYS_EAGER:
            try:
                version = services.training_run_execute(run.id, progress)
            except ValueError as e:
                raise CommandError(str(e)) from e
            if version.metrics.get("promote"):
                promote_model.delay(version.id)  # in-process: runs now
                version.refresh_from_db()
        else:
            transaction.on_commit(lambda: train_model.delay(run.id))
            version = self._wait(run, progress)
        for bar in bars.values():
            bar.close()
        self.stdout.write(
            json.dumps(
                {
                    "model": version.space,
                    **version.metrics,
                    "size_bytes": version.size_bytes,
                    "promoted": version.promoted,
                }
            )
        )

    def _wait(self, run: TrainingRun, progress: object) -> ModelVersion:
        """Follow a run on a worker through its database row, the system of record."""
        while True:
            run.refresh_from_db()
            if run.progress:
                progress(run.progress)
            if run.status == TrainingRun.Status.DONE:
                return ModelVersion.objects.get(run=run, name=run.model_name)
            if run.status == TrainingRun.Status.FAILED:
                raise CommandError(f"training run {run.id} failed: {run.error.splitlines()[0]}")
            time.sleep(POLL_S)
