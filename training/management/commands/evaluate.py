"""python manage.py evaluate : agreement of a model version with people on held-out triplets,
beside every baseline; prints a summary line and then the JSON report."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import services
from training.evaluation import model_evaluate
from training.models import ModelVersion


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class Command(BaseCommand):
    help = "Evaluate a model version (default: the newest oddnet) on held-out test triplets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model-version", type=int, help="version number (default: newest)")
        parser.add_argument(
            "--name", default=services.MODEL_NAME, help="model name, e.g. oddnet-pretrained"
        )
        parser.add_argument("--mel-stats", action="store_true", help="Evaluate mel-stats alone.")

    def handle(self, *args: object, **options: object) -> None:
        version = None
        if not options["mel_stats"]:
            versions = ModelVersion.objects.filter(name=options["name"]).order_by("-version")
            if options["model_version"]:
                versions = versions.filter(version=options["model_version"])
            version = versions.first()
            if version is None:
                raise CommandError(f"no {options['name']} version to evaluate; run `train` first")
        try:
            evaluation = model_evaluate(version)
        except ValueError as e:
            raise CommandError(str(e)) from e
        r = evaluation.results
        self.stdout.write(
            f"{r['model']}: agreement {r['agreement']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            f" on {r['n_triplets']} held-out triplets ({r['n_votes']} votes); "
            f"mel-stats {_fmt(r['mel_stats'])}, pretrained {_fmt(r['pretrained'])}, "
            f"BEATs {_fmt(r['beats_mean'])} ({r['beats_status']}), "
            f"previous {_fmt(r['previous_promoted'])}, random {r['random']:.3f}, "
            f"human ceiling {_fmt(r['ceiling'])}"
        )
        self.stdout.write(json.dumps(r))
