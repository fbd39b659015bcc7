"""python manage.py make_tasks : create odd-one-out triplets (random and gold)."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.services import triplets_make
from embeddings.models import Snippet

TRIPLETS_PER_SNIPPET = 2  # default count: enough for ~3 votes each from a modest crowd


class Command(BaseCommand):
    help = "Create odd-one-out triplets within each split, with a share of gold triplets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--triplets",
            type=int,
            default=None,
            help=f"How many (default {TRIPLETS_PER_SNIPPET} per snippet).",
        )
        parser.add_argument("--gold-share", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        count = options["triplets"]
        if count is None:
            count = TRIPLETS_PER_SNIPPET * Snippet.objects.filter(hidden=False).count()
        try:
            made = triplets_make(count, options["gold_share"], options["seed"])
        except ValueError as e:
            raise CommandError(str(e)) from e
        self.stdout.write(json.dumps({"triplets": made}))
