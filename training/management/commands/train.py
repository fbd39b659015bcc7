"""python manage.py train : pretrain (or reuse) and fine-tune oddnet on the accepted
judgments, register the versions, evaluate, and promote when the rule says so. With
--transitions: train the transition model on whole tracks and rated transitions, register
it with its clip vectors and index, and evaluate it on held-out tracks."""

import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from training import services
from training.models import TRANSITION_MODEL, ModelVersion, TrainingRun
from training.pretrain import PretrainConfig
from training.tasks import promote_model, train_model
from training.train import TrainConfig
from training.transition_net import TransitionTrainConfig

POLL_S = 1.0


class Command(BaseCommand):
    help = (
        "Train oddnet on accepted judgments (pretrained on every snippet first), or with "
        "--transitions the transition model on whole tracks and rated transitions."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults, pre, trans = TrainConfig(), PretrainConfig(), TransitionTrainConfig()
        both = "(default {} for oddnet, {} with --transitions)"
        parser.add_argument("--steps", type=int, help=both.format(defaults.steps, trans.steps))
        parser.add_argument(
            "--batch-size", type=int, help=both.format(defaults.batch_size, trans.batch_size)
        )
        parser.add_argument("--lr", type=float, help=both.format(defaults.lr, trans.lr))
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
        parser.add_argument(
            "--equal-weights",
            action="store_true",
            help="baseline without quality control: every answer (flagged ones too) weighs 1; "
            "never promoted",
        )
        parser.add_argument(
            "--transitions",
            action="store_true",
            help="train the transition model (transnet) instead: what should play next",
        )

    def handle(self, *args: object, **options: object) -> None:
        given = {k: options[k] for k in ("steps", "batch_size", "lr") if options[k] is not None}
        if options["transitions"]:
            if options["teacher"] or options["equal_weights"]:
                raise CommandError("--teacher and --equal-weights apply to oddnet, not transitions")
            model_name, config = TRANSITION_MODEL, {**given, "seed": options["seed"]}
        else:
            model_name = options["model"]
            config = {**_oddnet_defaults(), **given, "seed": options["seed"]}
            if model_name == services.MODEL_NAME:
                pretrain = {"steps": options["pretrain_steps"], "seed": options["seed"]}
                config["pretrain"] = pretrain
                if options["teacher"]:
                    config["teacher"] = options["teacher"]
                if options["equal_weights"]:
                    config["equal_weights"] = True
            elif options["teacher"] or options["equal_weights"]:
                raise CommandError("--teacher and --equal-weights apply to oddnet, not to a head")
        try:
            run = services.training_run_create(
                config, reason="manage.py train", model_name=model_name
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
        summary = {"model": version.space, **version.metrics, "size_bytes": version.size_bytes}
        if version.name == TRANSITION_MODEL:
            summary["artifacts"] = sorted(version.artifacts)
        else:
            summary["promoted"] = version.promoted
        self.stdout.write(json.dumps(summary))

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


def _oddnet_defaults() -> dict:
    """oddnet's step, batch and rate defaults, which its runs have always recorded."""
    defaults = TrainConfig()
    return {"steps": defaults.steps, "batch_size": defaults.batch_size, "lr": defaults.lr}
