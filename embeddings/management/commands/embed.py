"""python manage.py embed : compute missing vectors and rebuild the vector index."""

import json

from django.core.management.base import BaseCommand, CommandParser

from embeddings.queue import tasks_run
from embeddings.selectors import snippets_missing
from embeddings.services import MEL_STATS_SPACE
from embeddings.tasks import build_index, embed_mel_stats

BATCH = 32  # snippets per task: small enough to spread over workers, large enough to amortise


class Command(BaseCommand):
    help = "Compute the mel-stats vector of every snippet that lacks one, then build the index."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH, help="Snippets per task.")

    def handle(self, *args: object, **options: object) -> None:
        missing = snippets_missing(MEL_STATS_SPACE)
        batch = int(options["batch"])
        chunks = [(missing[i : i + batch],) for i in range(0, len(missing), batch)]
        stored = sum(tasks_run(embed_mel_stats, chunks, desc="embed mel-stats"))
        index = tasks_run(build_index, [(MEL_STATS_SPACE,)], desc="index")[0]
        self.stdout.write(json.dumps({"space": MEL_STATS_SPACE, "stored": stored, "index": index}))
