"""python manage.py import_judgments FILE --format bliss|tagatune : bring in existing
odd-one-out judgments, mapped onto imported tracks; rows that cannot be mapped are skipped and
reported. How songs, snippets, splits and ids are decided: annotation/imports.py."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotation.imports import COLUMNS, JudgmentImportError, judgments_import, song_map_read


class Command(BaseCommand):
    help = (
        "Import odd-one-out judgments from a bliss-rs survey CSV (song1, song2, song3, "
        "picked_song, person_id) or a MagnaTagATune comparisons file, as judgments of their "
        "own source (kept out of training unless ODDBALL_TRAIN_IMPORTED). Prints one JSON "
        "summary line; re-importing a file adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", required=True, choices=sorted(COLUMNS))
        parser.add_argument(
            "--source", default=None, help="Name of the dataset (default: the format's name)."
        )
        parser.add_argument(
            "--map",
            type=Path,
            default=None,
            dest="map_file",
            help="CSV song_id,track: a track id, file name, source path or title per song. "
            "Without it songs are matched by file name, then source, then title.",
        )
        parser.add_argument(
            "--report", type=Path, default=None, help="Write every skipped row and why (CSV)."
        )
        parser.add_argument(
            "--keep-mixed-splits",
            action="store_true",
            help="Keep rows whose tracks lie in different splits (in the train split if any "
            "track is a training track, else validation) instead of skipping them.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, write nothing.")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        report_path: Path | None = options["report"]
        try:
            mapping = song_map_read(options["map_file"]) if options["map_file"] else None
            report = report_path.open("w", newline="", encoding="utf-8") if report_path else None
            try:
                summary = judgments_import(
                    path,
                    options["format"],
                    options["source"],
                    mapping,
                    dry_run=options["dry_run"],
                    keep_mixed_splits=options["keep_mixed_splits"],
                    report=report,
                    progress=True,
                )
            finally:
                if report:
                    report.close()
        except JudgmentImportError as e:
            if report_path and report_path.is_file():
                report_path.unlink()  # a report of a file that was not imported would mislead
            raise CommandError(f"{path.name}: {e}; nothing was imported") from e
        except OSError as e:
            raise CommandError(f"cannot read or write a file: {e}") from e
        self.stdout.write(json.dumps(summary.as_dict()))
