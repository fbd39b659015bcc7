"""python manage.py export_dataset --out DIR : write every judgment with a datasheet."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from annotation.exports import dataset_export


class Command(BaseCommand):
    help = "Export every judgment as judgments.parquet, judgments.csv and a README.md datasheet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="Folder to write into.")

    def handle(self, *args: object, **options: object) -> None:
        counts = dataset_export(Path(options["out"]))
        self.stdout.write(json.dumps({"out": options["out"], **counts}))
