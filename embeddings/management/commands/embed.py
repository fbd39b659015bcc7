"""python manage.py embed : compute missing vectors and rebuild the vector index."""

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from embeddings.extractors import beats
from embeddings.models import ClipEmbedding
from embeddings.queue import tasks_run
from embeddings.selectors import clip_index_path, clips_missing, snippets_missing
from embeddings.services import BEATS_SPACE, MEL_STATS_SPACE
from embeddings.tasks import (
    build_clip_index,
    build_index,
    embed_beats,
    embed_clips_mel_stats,
    embed_mel_stats,
)

BATCH = 32  # snippets per task: small enough to spread over workers, large enough to amortise


class Command(BaseCommand):
    help = (
        "Compute the mel-stats vector (and the BEATs vector, when a checkpoint is configured) "
        "of every snippet that lacks one, and mel-stats of clip openings and endings, then "
        "build the indexes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH, help="Snippets per task.")

    def handle(self, *args: object, **options: object) -> None:
        missing = snippets_missing(MEL_STATS_SPACE)
        batch = int(options["batch"])
        chunks = [(missing[i : i + batch],) for i in range(0, len(missing), batch)]
        stored = sum(tasks_run(embed_mel_stats, chunks, desc="embed mel-stats"))
        index = tasks_run(build_index, [(MEL_STATS_SPACE,)], desc="index")[0]
        result = {"space": MEL_STATS_SPACE, "stored": stored, "index": index}
        tracks = [(t,) for t in clips_missing(MEL_STATS_SPACE)]
        result["clip_vectors"] = sum(tasks_run(embed_clips_mel_stats, tracks, desc="embed clips"))
        stale = result["clip_vectors"] or not clip_index_path(MEL_STATS_SPACE).is_file()
        if stale and ClipEmbedding.objects.filter(space=MEL_STATS_SPACE).exists():
            tasks_run(build_clip_index, [(MEL_STATS_SPACE,)], desc="clip index")
        ok, reason = beats.availability(settings.ODDBALL_BEATS_CHECKPOINT)
        if ok:
            missing = snippets_missing(BEATS_SPACE)
            # BEATs takes about 1.4 s per 15 s snippet on a core: smaller tasks spread better.
            chunks = [(missing[i : i + 8],) for i in range(0, len(missing), 8)]
            result["beats"] = sum(tasks_run(embed_beats, chunks, desc="embed BEATs"))
            tasks_run(build_index, [(BEATS_SPACE,)], desc="index")
        else:
            result["beats"] = f"unavailable: {reason}"
        self.stdout.write(json.dumps(result))
