"""python manage.py import_audio PATH... : import audio files and folders as tracks."""

import json
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from embeddings import audio
from embeddings.models import Track
from embeddings.queue import tasks_run
from embeddings.services import manifest_find
from embeddings.tasks import import_file


def audio_files(paths: list[str]) -> list[Path]:
    """Files named directly, plus every supported audio file under named folders.

    A symlink named like audio is listed even when it leads nowhere (or to itself), so the
    import reports it rather than skipping it in silence; folders are searched, not listed.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if (p.is_file() or (p.is_symlink() and not p.is_dir()))
                and p.suffix.lower() in audio.SUPPORTED_SUFFIXES
            )
        elif path.exists() or path.is_symlink():
            found.append(path)
        else:
            raise CommandError(f"{raw}: no such file or folder")
    return found


class Command(BaseCommand):
    help = "Import audio files and folders (Ogg Vorbis, Opus, MP3, FLAC, WAV) and cut snippets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", help="Audio files or folders.")
        parser.add_argument("--license", default=None, help="Licence for every file.")
        parser.add_argument("--attribution", default=None, help="Attribution for every file.")
        parser.add_argument("--source", default=None, help="Where the files come from.")
        parser.add_argument("--genre", default=None, help="Genre label for every file.")
        parser.add_argument(
            "--snippet-seconds",
            type=float,
            default=audio.DEFAULT_SNIPPET_S,
            help=f"Snippet length, {audio.MIN_SNIPPET_S:.0f}-{audio.MAX_SNIPPET_S:.0f} s.",
        )
        parser.add_argument(
            "--require-approval",
            action="store_true",
            help="Import as pending: not served until a curator approves them on /curate/ "
            "(the default when ODDBALL_REQUIRE_APPROVAL is on).",
        )

    def handle(self, *args: object, **options: object) -> None:
        snippet_s = float(options["snippet_seconds"])
        if not audio.MIN_SNIPPET_S <= snippet_s <= audio.MAX_SNIPPET_S:
            raise CommandError("--snippet-seconds must be between 10 and 20")
        files = audio_files(options["paths"])
        if not files:
            raise CommandError("no audio files found")
        overrides = {
            k: options[k]
            for k in ("license", "attribution", "source", "genre")
            if options[k] is not None
        }
        jobs = []
        for path in files:
            meta = manifest_find(path)
            for key, value in overrides.items():
                setattr(meta, key, value)
            # absolute(), not resolve(): a symlink loop is reported by the import.
            jobs.append((str(path.absolute()), asdict(meta), snippet_s))
        # None leaves it to ODDBALL_REQUIRE_APPROVAL where the import runs (maybe a worker).
        status = Track.Status.PENDING if options["require_approval"] else None
        outcomes = tasks_run(import_file, jobs, desc="import", status=status)
        counts = {"imported": 0, "exists": 0, "failed": 0}
        for outcome in outcomes:
            counts[outcome["status"]] += 1
            if outcome["status"] == "failed":
                self.stderr.write(f"skipped {outcome['path']}: {outcome['reason']}")
        snippets = sum(len(o["snippet_ids"]) for o in outcomes)
        self.stdout.write(json.dumps({**counts, "snippets": snippets, "files": len(files)}))
