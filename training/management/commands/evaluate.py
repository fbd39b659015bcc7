"""python manage.py evaluate : agreement of a model version with people on held-out triplets."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import services
from training.models import ModelVersion


class Command(BaseCommand):
    help = "Evaluate a model version (default: the newest) on held-out test triplets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model-version", type=int, help="oddnet version number (default: the newest)"
        )
        parser.add_argument("--mel-stats", action="store_true", help="Evaluate mel-stats alone.")

    def handle(self, *args: object, **options: object) -> None:
        version = None
        if not options["mel_stats"]:
            versions = ModelVersion.objects.filter(name=services.MODEL_NAME).order_by("-version")
            if options["model_version"]:
                versions = versions.filter(version=options["model_version"])
            version = versions.first()
            if version is None:
                raise CommandError("no model version to evaluate; run `train` first")
        try:
            evaluation = services.model_evaluate(version)
        except ValueError as e:
            raise CommandError(str(e)) from e
        r = evaluation.results
        ceiling = "n/a" if r["ceiling"] is None else f"{r['ceiling']:.3f}"
        self.stdout.write(
            f"{r['model']}: agreement {r['agreement']:.3f} "
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] on {r['n_triplets']} held-out triplets "
            f"({r['n_votes']} votes); mel-stats {r['mel_stats']:.3f}, random {r['random']:.3f}, "
            f"human ceiling {ceiling}"
        )
        self.stdout.write(json.dumps(r))
