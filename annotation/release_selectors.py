"""Reads of dataset releases: the list, one release, its files on disk, and its votes as
they are in its votes.parquet (never the database: a release is what was cut)."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as ds
from django.conf import settings
from django.db.models import QuerySet

from annotation.models import DatasetRelease
from embeddings.models import Track

DATASHEET = "README.md"


def releases_ready() -> QuerySet[DatasetRelease]:
    """Releases researchers may take, newest first."""
    return DatasetRelease.objects.filter(status=DatasetRelease.Status.READY).order_by("-number")


def releases_all(limit: int = 50) -> QuerySet[DatasetRelease]:
    """Every release, building and failed ones included, for the curators' page."""
    return DatasetRelease.objects.select_related("created_by").order_by("-number")[:limit]


MAX_NUMBER = 2**31 - 1  # DatasetRelease.number is a PositiveIntegerField


def release_ready(number: int) -> DatasetRelease | None:
    """A finished release by number; None for any other number, however large."""
    if not 0 < number <= MAX_NUMBER:
        return None
    return releases_ready().filter(number=number).first()


def releases_stale(quiet_s: float) -> list[int]:
    """Ids of releases still BUILDING with no progress for `quiet_s` seconds (or, before any
    progress, started that long ago): their message was lost or their worker died."""
    now = time.time()
    stale = []
    building = DatasetRelease.objects.filter(status=DatasetRelease.Status.BUILDING)
    for release_id, counts, created_at in building.values_list("id", "counts", "created_at"):
        at = (counts or {}).get("progress", {}).get("at", created_at.timestamp())
        if now - at >= quiet_s:
            stale.append(release_id)
    return stale


def releases_building() -> bool:
    return DatasetRelease.objects.filter(status=DatasetRelease.Status.BUILDING).exists()


def release_file(release: DatasetRelease, name: str) -> Path | None:
    """The path of one of the release's recorded files, or None. Only names in
    `release.files` are served, so no request can reach another path."""
    if name not in {entry["name"] for entry in release.files}:
        return None
    path = Path(settings.MEDIA_ROOT) / release.folder / name
    return path if path.is_file() else None


def release_datasheet(release: DatasetRelease) -> str:
    path = release_file(release, DATASHEET)
    return path.read_text(encoding="utf-8") if path else ""


def licences_in_use() -> list[str]:
    """The distinct licence strings of the tracks, for the cut form."""
    return sorted(set(Track.objects.exclude(license="").values_list("license", flat=True)))


def sources_in_use() -> list[str]:
    from annotation.models import Judgment

    return sorted(set(Judgment.objects.values_list("source", flat=True).distinct()))


@dataclass
class VotePage:
    count: int
    rows: list[dict]


VOTE_FILTERS = ("triplet_id", "listener", "split", "answer")


def release_votes_page(
    release: DatasetRelease, filters: dict[str, object], page: int, page_size: int
) -> VotePage:
    """One page of the release's votes (file order), filtered by equality on the columns in
    VOTE_FILTERS, read with a pyarrow dataset filter in record batches: a page never loads
    the whole file."""
    path = release_file(release, "votes.parquet")
    if path is None:
        return VotePage(0, [])
    dataset = ds.dataset(path, format="parquet")
    expression = None
    for name in VOTE_FILTERS:
        if filters.get(name) is not None:
            term = ds.field(name) == filters[name]
            expression = term if expression is None else expression & term
    # One thread keeps the batches in file order, so pages do not overlap.
    scanner = dataset.scanner(filter=expression, use_threads=False)
    count = scanner.count_rows()
    offset = (page - 1) * page_size
    return VotePage(count, list(_rows_from(scanner.to_batches(), offset, page_size)))


def _rows_from(batches: Iterator, offset: int, size: int) -> Iterator[dict]:
    skipped = 0
    left = size
    for batch in batches:
        if left <= 0:
            return
        if skipped + batch.num_rows <= offset:
            skipped += batch.num_rows
            continue
        start = max(0, offset - skipped)
        skipped += batch.num_rows
        part = batch.slice(start, left)
        left -= part.num_rows
        yield from part.to_pylist()
