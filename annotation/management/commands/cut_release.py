"""python manage.py cut_release [--min-votes N] [--min-reliability X] [--sources a,b]
[--licences L ...] [--audio] [--title T] [--notes N] : cut a numbered dataset release."""

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotation.releases import ReleaseError, release_cut


def _names(raw: str | None) -> list[str] | None:
    return [n.strip() for n in raw.split(",") if n.strip()] if raw else None


class Command(BaseCommand):
    help = (
        "Cut a numbered, immutable dataset release of the work that counts into "
        "MEDIA_ROOT/releases/<number>/ and print it as JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--min-votes", type=int, default=1, help="Per triplet (default 1).")
        parser.add_argument("--min-reliability", type=float, default=None)
        parser.add_argument("--sources", default=None, help="Comma-separated, e.g. oddball,bliss.")
        parser.add_argument(
            "--licences",
            nargs="+",
            default=None,
            help="Licences allowed: identifiers (CC0-1.0 CC-BY-3.0) or whole licence strings.",
        )
        parser.add_argument("--audio", action="store_true", help="Also write audio.zip.")
        parser.add_argument("--title", default="")
        parser.add_argument("--notes", default="")

    def handle(self, *args: object, **options: object) -> None:
        filters = {
            "min_votes": options["min_votes"],
            "min_reliability": options["min_reliability"],
            "sources": _names(options["sources"]),
            "licences": options["licences"],
            "audio": options["audio"],
        }
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=stage, unit="row", file=self.stderr)
            bar.total = total
            bar.update(done - bar.n)

        try:
            release = release_cut(None, filters, options["title"], options["notes"], progress)
        except ReleaseError as e:
            raise CommandError(str(e)) from e
        finally:
            for bar in bars.values():
                bar.close()
        out = {
            "number": release.number,
            "status": release.status,
            "folder": release.folder,
            "counts": release.counts,
            "error": release.error,
        }
        self.stdout.write(json.dumps(out))
        if release.status != release.Status.READY:
            raise CommandError(f"release {release.number} failed: {release.error}")
