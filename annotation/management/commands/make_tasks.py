"""python manage.py make_tasks : create odd-one-out triplets (random and gold) and
transition tasks (model-proposed, random and true continuations), rendered by workers."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.services import triplets_make
from annotation.tasks import render_transition
from annotation.transition_services import transition_shares_parse, transition_tasks_make
from embeddings.models import Snippet
from embeddings.queue import tasks_run
from embeddings.selectors import proposer_space

TRIPLETS_PER_SNIPPET = 2  # default count: enough for ~3 votes each from a modest crowd


class Command(BaseCommand):
    help = (
        "Create odd-one-out triplets within each split, with a share of gold triplets; with "
        "--transitions, also transition tasks, and render them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--triplets",
            type=int,
            default=None,
            help=f"How many (default {TRIPLETS_PER_SNIPPET} per snippet).",
        )
        parser.add_argument("--gold-share", type=float, default=0.1)
        parser.add_argument("--transitions", type=int, default=0, help="Transition tasks.")
        parser.add_argument(
            "--shares",
            default=None,
            help="Kinds of transition task, e.g. model=0.5,random=0.3,true=0.2 "
            "(default ODDBALL_TRANSITION_SHARES).",
        )
        parser.add_argument(
            "--proposer",
            default=None,
            help="Space whose clip index proposes pairs (default: newest transnet, else "
            "mel-stats).",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        count = options["triplets"]
        if count is None:
            count = TRIPLETS_PER_SNIPPET * Snippet.objects.filter(hidden=False).count()
        try:
            made = triplets_make(count, options["gold_share"], options["seed"])
            shares = transition_shares_parse(options["shares"]) if options["shares"] else None
        except ValueError as e:
            raise CommandError(str(e)) from e
        result: dict = {"triplets": made}
        if options["transitions"]:
            proposer = options["proposer"] or proposer_space()
            tasks = transition_tasks_make(
                options["transitions"], shares, proposer, seed=options["seed"]
            )
            tasks_run(render_transition, [(t.id,) for t in tasks], desc="render transitions")
            kinds = [t.kind for t in tasks]
            result["transitions"] = {k: kinds.count(k) for k in ("model", "random", "true")}
            result["proposer"] = proposer
        self.stdout.write(json.dumps(result))
