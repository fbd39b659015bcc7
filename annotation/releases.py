"""Dataset releases: numbered, immutable snapshots of the work that counts.

Design note
-----------
A release holds exactly what `counted_judgments()` and `counted_ratings()` return (accepted,
not practice, not repeats, listeners neither flagged nor excluded), narrowed by the filters
chosen when it is cut. It is built in two streaming passes so a million votes never become
a million objects: the first asks the database for vote counts per triplet and slot (one
grouped query; min_votes and the licence filter are decided on these small counters), the
second streams the votes themselves with `values_list(...).iterator()` and writes them in
record batches (release_files.TableWriter). Everything is written into a hidden temporary folder
beside the releases and renamed into place at the end, so a failed cut leaves no half
release: the row is marked FAILED with the reason and the folder is removed.

Listener ids become pseudonyms keyed by the release's own salt (HMAC-SHA256), so one
person has unrelated pseudonyms in two releases and no release can be joined on them with
the site's own pseudonyms. No account, e-mail or address is read at all.
"""

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone

from annotation import release_files
from annotation.exports import TRANSITION_FIELDS
from annotation.models import SITE_SOURCE, AuditEntry, DatasetRelease, Triplet
from annotation.selectors import counted_judgments, counted_ratings
from embeddings.models import Snippet, Track

log = logging.getLogger(__name__)

SLOTS = "abc"
CHUNK = 5000  # rows fetched from the database per round trip
PROGRESS_EVERY_S = 1.0  # s between progress writes to the release row
TITLE_MAX, NOTES_MAX = 200, 5000  # characters
MAX_MIN_VOTES = 1000
RELEASES_DIR = "releases"  # under MEDIA_ROOT
AUDIT_ACTION = "release_cut"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class ReleaseError(Exception):
    """Filters or a request that cannot be honoured; the message says why."""


def release_filters_clean(raw: Mapping[str, object]) -> dict:
    """The filters as stored on the release, checked: min_votes (int >= 0), min_reliability
    (0-1 or None), sources and licences (lists of strings, or None for all), audio (bool)."""
    unknown = set(raw) - {"min_votes", "min_reliability", "sources", "licences", "audio"}
    if unknown:
        raise ReleaseError(f"unknown filters: {', '.join(sorted(unknown))}")
    try:
        min_votes = int(raw.get("min_votes") if raw.get("min_votes") is not None else 1)
        reliability = raw.get("min_reliability")
        reliability = None if reliability in (None, "") else float(reliability)
    except (TypeError, ValueError) as e:
        raise ReleaseError(
            f"min_votes must be a whole number, min_reliability a number: {e}"
        ) from e
    if not 0 <= min_votes <= MAX_MIN_VOTES:
        raise ReleaseError(f"min_votes must be between 0 and {MAX_MIN_VOTES}")
    if reliability is not None and not 0.0 <= reliability <= 1.0:
        raise ReleaseError("min_reliability must be between 0 and 1")
    lists = {}
    for name in ("sources", "licences"):
        value = raw.get(name)
        if isinstance(value, str):
            value = [value]
        if value is not None and not isinstance(value, list | tuple):
            raise ReleaseError(f"{name} must be a list of names")
        cleaned = sorted({str(v).strip() for v in value or () if str(v).strip()})
        lists[name] = cleaned or None
    return {
        "min_votes": min_votes,
        "min_reliability": reliability,
        "sources": lists["sources"],
        "licences": lists["licences"],
        "audio": bool(raw.get("audio", False)),
    }


def release_pseudonym(salt: str, listener_id: int) -> str:
    """A listener's name in one release: "L" and 12 hex digits of HMAC-SHA256(salt, id)."""
    digest = hmac.new(salt.encode(), str(listener_id).encode(), hashlib.sha256).hexdigest()
    return "L" + digest[:12]


def release_start(
    created_by: AbstractBaseUser | None,
    filters: Mapping[str, object],
    title: str = "",
    notes: str = "",
) -> DatasetRelease:
    """Number a new release (the next after the highest, failed ones included), store its
    filters and a fresh salt, status BUILDING, and write the curator's AuditEntry. The caller
    then runs `release_build` (the `annotation.release_cut` task or `release_cut`)."""
    clean = release_filters_clean(filters)
    for _attempt in range(5):
        try:
            with transaction.atomic():
                # Two cuts at once can read the same highest number; the unique number
                # makes the second fail and try the next one.
                top = DatasetRelease.objects.aggregate(top=Max("number"))["top"] or 0
                release = DatasetRelease.objects.create(
                    number=top + 1,
                    title=title.strip()[:TITLE_MAX],
                    notes=notes.strip()[:NOTES_MAX],
                    filters=clean,
                    salt=secrets.token_hex(32),
                    folder=f"{RELEASES_DIR}/{top + 1}",
                    created_by=created_by,
                )
                AuditEntry.objects.create(
                    actor=created_by,
                    action=AUDIT_ACTION,
                    target_type="release",
                    target_id=release.id,
                    reason=release.notes,
                    data={"number": release.number, "title": release.title, "filters": clean},
                )
            return release
        except IntegrityError:
            continue
    raise ReleaseError("Another release was being numbered at the same time; try again.")


def release_cut(
    created_by: AbstractBaseUser | None,
    filters: Mapping[str, object],
    title: str = "",
    notes: str = "",
    progress: Progress | None = None,
) -> DatasetRelease:
    """Start and build a release in this process; returns it READY, or FAILED with the
    reason in `error`."""
    release = release_start(created_by, filters, title, notes)
    return release_build(release.id, progress)


def release_build(release_id: int, progress: Progress | None = None) -> DatasetRelease:
    """Write a BUILDING release's files and mark it READY (or FAILED with the reason).
    A release that is no longer BUILDING is returned untouched, so the task is idempotent.
    Needs no transaction: it reads in streams and writes the row once at the end."""
    release = DatasetRelease.objects.get(id=release_id)
    if release.status != DatasetRelease.Status.BUILDING:
        return release
    root = Path(settings.MEDIA_ROOT) / RELEASES_DIR
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".building-{release.number}-", dir=root))
    report = _Reporter(release.id, progress)
    try:
        counts = _files_write(release, building, report)
        report("checksums", 0, 1)
        files = _checksums_write(building)
        os.rename(building, root / str(release.number))  # fails if the number's folder exists
    except Exception as e:
        log.exception("release %s failed", release.number)
        shutil.rmtree(building, ignore_errors=True)
        DatasetRelease.objects.filter(id=release.id, status=DatasetRelease.Status.BUILDING).update(
            status=DatasetRelease.Status.FAILED,
            error=f"{type(e).__name__}: {e}"[:2000],
            counts={},
            finished_at=timezone.now(),
        )
        release.refresh_from_db()
        return release
    DatasetRelease.objects.filter(id=release.id, status=DatasetRelease.Status.BUILDING).update(
        status=DatasetRelease.Status.READY,
        counts=counts,
        files=files,
        folder=f"{RELEASES_DIR}/{release.number}",
        finished_at=timezone.now(),
    )
    release.refresh_from_db()
    return release


class _Reporter:
    """Passes progress on to the caller and, at most once a second, onto the release row
    (counts["progress"] while BUILDING), where the curator page shows it."""

    def __init__(self, release_id: int, progress: Progress | None) -> None:
        self.release_id, self.progress, self.last = release_id, progress, 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S or done == total:
            self.last = now
            DatasetRelease.objects.filter(
                id=self.release_id, status=DatasetRelease.Status.BUILDING
            ).update(
                counts={
                    "progress": {"stage": stage, "done": done, "total": total, "at": time.time()}
                }
            )


@dataclass
class _Cut:
    """What one build has learned so far: per-triplet counters and the ids it touched."""

    release: DatasetRelease
    report: _Reporter
    snippets: dict[int, tuple[int, float, float]]  # id -> (track, start_s, duration_s)
    allowed_tracks: set[int] | None  # None: every licence
    votes: dict[int, list[int]] = field(default_factory=dict)  # triplet -> [a, b, c, none]
    pseudonyms: dict[int, str] = field(default_factory=dict)
    snippet_ids: set[int] = field(default_factory=set)
    track_ids: set[int] = field(default_factory=set)
    stats: dict = field(default_factory=dict)

    def pseudonym(self, listener_id: int) -> str:
        name = self.pseudonyms.get(listener_id)
        if name is None:
            name = self.pseudonyms[listener_id] = release_pseudonym(self.release.salt, listener_id)
        return name

    def tracks_pass(self, *track_ids: int) -> bool:
        return self.allowed_tracks is None or all(t in self.allowed_tracks for t in track_ids)


def _licence_allowed(licence: str, allowed: list[str]) -> bool:
    wanted = {a.casefold() for a in allowed}
    return (
        licence.strip().casefold() in wanted
        or release_files.licence_id(licence).casefold() in wanted
    )


def _files_write(release: DatasetRelease, folder: Path, report: _Reporter) -> dict:
    filters = release.filters
    allowed = None
    if filters.get("licences"):
        allowed = {
            pk
            for pk, licence in Track.objects.values_list("id", "license")
            if _licence_allowed(licence, filters["licences"])
        }
    snippets = {
        pk: (track, start, duration)
        for pk, track, start, duration in Snippet.objects.values_list(
            "id", "track_id", "start_s", "duration_s"
        ).iterator(chunk_size=CHUNK)
    }
    cut = _Cut(release, report, snippets, allowed)
    judgments = _judgments(filters)
    _votes_count(cut, judgments)
    n_votes = _votes_write(cut, judgments, folder)
    n_triplets = _triplets_write(cut, folder)
    n_ratings = _ratings_write(cut, folder)
    bundled = _audio_write(cut, folder) if filters.get("audio") else {}
    n_tracks = _tracks_write(cut, folder, bundled)
    counts = {
        "votes": n_votes,
        "triplets": n_triplets,
        "listeners": len(cut.pseudonyms),
        "tracks": n_tracks,
        "snippets": len(cut.snippet_ids),
        "ratings": n_ratings,
        "audio_files": len(bundled),
        "audio_missing": cut.stats.get("audio_missing", 0),
    }
    datasheet = release_files.release_datasheet(
        release, counts, cut.stats, _track_rows(cut, bundled)
    )
    (folder / "README.md").write_text(datasheet, encoding="utf-8")
    return counts


def _judgments(filters: dict) -> object:
    judgments = counted_judgments()
    if filters.get("min_reliability") is not None:
        judgments = judgments.filter(listener__reliability__gte=filters["min_reliability"])
    if filters.get("sources"):
        judgments = judgments.filter(source__in=filters["sources"])
    return judgments


def _votes_count(cut: _Cut, judgments: object) -> None:
    """Pass 1: vote counts per triplet and slot, for triplets whose tracks pass the licence
    filter; then drop triplets with fewer than min_votes slot votes."""
    rows = (
        judgments.values_list(
            "triplet_id", *(f"triplet__snippet_{s}_id" for s in SLOTS), "odd_slot"
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    for triplet_id, a, b, c, odd, n in rows.iterator(chunk_size=CHUNK):
        tracks = (cut.snippets[a][0], cut.snippets[b][0], cut.snippets[c][0])
        if not cut.tracks_pass(*tracks):
            continue
        counters = cut.votes.setdefault(triplet_id, [0, 0, 0, 0])
        counters[3 if odd is None else odd] += n
    least = cut.release.filters.get("min_votes", 1)
    cut.votes = {t: c for t, c in cut.votes.items() if c[0] + c[1] + c[2] >= least}


VOTE_FIELDS = (
    "triplet_id",
    "triplet__kind",
    "triplet__split",
    "triplet__gold_odd",
    *(f"triplet__snippet_{s}_id" for s in SLOTS),
    "odd_slot",
    "listener_id",
    "response_ms",
    "listen_ms",
    "plays",
    "seeks",
    "viewport",
    "language",
    "weight",
    "source",
    "source_id",
    "created_at",
)


def _slot(index: int | None) -> str | None:
    return None if index is None else SLOTS[index]


def _three(values: object) -> tuple:
    if not isinstance(values, list) or len(values) != 3:
        return (None, None, None)
    return tuple(None if v is None else int(v) for v in values)


def _votes_write(cut: _Cut, judgments: object, folder: Path) -> int:
    """Pass 2: one row per vote of the kept triplets, oldest first."""
    total = sum(map(sum, cut.votes.values()))
    writer = release_files.TableWriter(
        folder, "votes", release_files.VOTE_COLUMNS, ("parquet", "csv", "jsonl")
    )
    rows = judgments.order_by("id").values_list(*VOTE_FIELDS).iterator(chunk_size=CHUNK)
    done = 0
    cut.report("votes", 0, total)
    for row in rows:
        triplet_id, kind, split, gold, a, b, c, odd, listener_id = row[:9]
        if triplet_id not in cut.votes:
            continue
        response_ms, listen, plays, seeks, viewport, language, weight = row[9:16]
        source, source_id, created_at = row[16:]
        sa, sb, sc = cut.snippets[a], cut.snippets[b], cut.snippets[c]
        writer.write(
            (
                triplet_id, kind, split, _slot(gold), a, b, c,
                sa[0], sb[0], sc[0], sa[1], sb[1], sc[1], sa[2], sb[2], sc[2],
                "none" if odd is None else SLOTS[odd],
                None if odd is None else (a, b, c)[odd],
                cut.pseudonym(listener_id),
                response_ms, *_three(listen), *_three(plays), *_three(seeks),
                viewport, language, weight, source, source_id, created_at,
            )
        )  # fmt: skip
        done += 1
        if done % CHUNK == 0:
            cut.report("votes", done, total)
    cut.report("votes", done, total)
    return writer.close()


def ceiling_share(counts: tuple[int, int, int]) -> tuple[float, int]:
    """Leave-one-out agreement of one triplet's votes with the majority of the others, as
    training.metrics.human_ceiling defines it (a k-way tie scores 1/k): (sum of scores,
    votes scored). Computed from the three slot counts; triplets with fewer than 3 votes
    score nothing. Here because annotation may not import training (STYLE: one direction)."""
    if sum(counts) < 3:
        return (0.0, 0)
    total = 0.0
    for slot, n in enumerate(counts):
        if n == 0:
            continue
        others = list(counts)
        others[slot] -= 1
        top = max(others)
        tied = sum(1 for o in others if o == top)
        total += n * ((others[slot] == top) / tied)
    return (total, sum(counts))


def _triplets_write(cut: _Cut, folder: Path) -> int:
    """One row per kept triplet with its vote counts, majority and agreement; gathers the
    datasheet's agreement figures on the way."""
    writer = release_files.TableWriter(
        folder, "triplets", release_files.TRIPLET_COLUMNS, ("parquet", "csv")
    )
    stats = cut.stats
    stats.update(agreement_sum=0.0, agreement_n=0, ceiling_sum=0.0, ceiling_n=0, kinds={})
    stats.update(gold_votes=0, gold_right=0)
    if cut.votes:
        triplets = Triplet.objects.filter(id__gte=min(cut.votes), id__lte=max(cut.votes))
        fields = ("id", "kind", "split", "gold_odd", "source", "snippet_a_id", "snippet_b_id")
        rows = triplets.order_by("id").values_list(*fields, "snippet_c_id")
        for pk, kind, split, gold, source, a, b, c in rows.iterator(chunk_size=CHUNK):
            counters = cut.votes.get(pk)
            if counters is None:
                continue
            slots = tuple(counters[:3])
            n = sum(slots)
            top = max(slots)
            majority = (
                None if n == 0 else ("tie" if slots.count(top) > 1 else SLOTS[slots.index(top)])
            )
            agreement = top / n if n else None
            stats["kinds"][kind] = stats["kinds"].get(kind, 0) + 1
            if kind == Triplet.Kind.GOLD and gold is not None:
                stats["gold_votes"] += n
                stats["gold_right"] += slots[gold]
            elif n >= 3:
                stats["agreement_sum"] += agreement
                stats["agreement_n"] += 1
                score, scored = ceiling_share(slots)
                stats["ceiling_sum"] += score
                stats["ceiling_n"] += scored
            tracks = [cut.snippets[s][0] for s in (a, b, c)]
            cut.snippet_ids.update((a, b, c))
            cut.track_ids.update(tracks)
            writer.write(
                (pk, kind, split, _slot(gold), source, a, b, c, *tracks, *slots, counters[3], n,
                 majority, agreement)
            )  # fmt: skip
    return writer.close()


RATING_FIELDS = {
    **{c.name: TRANSITION_FIELDS[c.name] for c in release_files.RATING_COLUMNS},
    "listener": "listener_id",
}


def _ratings_write(cut: _Cut, folder: Path) -> int:
    """One row per counted transition rating. Ratings are collected here only (source
    oddball), so a sources filter without "oddball" leaves them all out."""
    writer = release_files.TableWriter(
        folder, "ratings", release_files.RATING_COLUMNS, ("parquet", "csv", "jsonl")
    )
    filters = cut.release.filters
    cut.stats["rating_kinds"] = {}
    if filters.get("sources") and SITE_SOURCE not in filters["sources"]:
        return writer.close()
    ratings = counted_ratings()
    if filters.get("min_reliability") is not None:
        ratings = ratings.filter(listener__reliability__gte=filters["min_reliability"])
    names = list(RATING_FIELDS)
    at = {name: i for i, name in enumerate(names)}
    rows = ratings.order_by("id").values_list(*RATING_FIELDS.values()).iterator(chunk_size=CHUNK)
    for row in rows:
        row = list(row)
        if not cut.tracks_pass(row[at["track_x"]], row[at["track_y"]]):
            continue
        cut.track_ids.update((row[at["track_x"]], row[at["track_y"]]))
        key = f"{row[at['task_kind']]} {row[at['proposed_by']] or ''}".strip()
        cut.stats["rating_kinds"][key] = cut.stats["rating_kinds"].get(key, 0) + 1
        row[at["listener"]] = cut.pseudonym(row[at["listener"]])
        mask = row[at["mask"]]
        row[at["mask"]] = None if mask is None else json.dumps(mask)
        writer.write(tuple(row))
    return writer.close()


def _audio_write(cut: _Cut, folder: Path) -> dict[int, str]:
    """audio.zip: the snippet files of redistributable tracks; returns {snippet: name}."""
    redistributable = {
        pk
        for pk, licence in Track.objects.filter(id__in=cut.track_ids).values_list("id", "license")
        if release_files.licence_redistributable(licence)
    }
    snippets = Snippet.objects.filter(id__in=cut.snippet_ids, track_id__in=redistributable)
    rows = list(snippets.order_by("id").values_list("id", "audio"))
    bundled: dict[int, str] = {}
    missing = 0
    media = Path(settings.MEDIA_ROOT)
    # Ogg is compressed already: storing beats deflating it again.
    with zipfile.ZipFile(folder / "audio.zip", "w", zipfile.ZIP_STORED) as bundle:
        for done, (pk, audio) in enumerate(rows, 1):
            path = media / audio
            if not audio or not path.is_file():
                missing += 1
                continue
            name = f"audio/{pk}{path.suffix}"
            bundle.write(path, name)
            bundled[pk] = name
            if done % 100 == 0:
                cut.report("audio", done, len(rows))
        bundle.writestr("LICENCES.md", release_files.audio_licences(_track_rows(cut, bundled)))
    cut.stats["audio_missing"] = missing
    return bundled


def _track_rows(cut: _Cut, bundled: dict[int, str]) -> list[tuple]:
    """The release's tracks in TRACK_COLUMNS order, e-mail addresses taken out of the text."""
    fields = ("id", "title", "license", "attribution", "source", "genre", "split", "duration_s")
    rows = []
    for pk, title, licence, attribution, source, genre, split, duration in (
        Track.objects.filter(id__in=cut.track_ids).order_by("id").values_list(*fields)
    ):
        rows.append(
            (
                pk,
                release_files.redact(title),
                licence,
                release_files.redact(attribution),
                release_files.redact(source),
                genre,
                split,
                duration,
                release_files.licence_redistributable(licence),
            )
        )
    return rows


def _tracks_write(cut: _Cut, folder: Path, bundled: dict[int, str]) -> int:
    tracks = release_files.TableWriter(folder, "tracks", release_files.TRACK_COLUMNS, ("csv",))
    for row in _track_rows(cut, bundled):
        tracks.write(row)
    snippets = release_files.TableWriter(
        folder, "snippets", release_files.SNIPPET_COLUMNS, ("csv",)
    )
    fields = ("id", "track_id", "position", "start_s", "duration_s", "loudness_lufs", "gain_db")
    rows = Snippet.objects.filter(id__in=cut.snippet_ids).order_by("id").values_list(*fields)
    for row in rows.iterator(chunk_size=CHUNK):
        snippets.write((*row, bundled.get(row[0])))
    snippets.close()
    return tracks.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _checksums_write(folder: Path) -> list[dict]:
    """SHA256SUMS (the format `sha256sum -c` checks) and the release's file list."""
    files = [
        {"name": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(folder.iterdir())
    ]
    sums = folder / "SHA256SUMS"
    sums.write_text("".join(f"{f['sha256']}  {f['name']}\n" for f in files), encoding="utf-8")
    return [*files, {"name": sums.name, "bytes": sums.stat().st_size, "sha256": _sha256(sums)}]
