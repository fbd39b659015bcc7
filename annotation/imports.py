"""Importing existing odd-one-out judgments: the bliss-rs survey CSV (`song1, song2, song3,
picked_song, person_id`) and the MagnaTagATune comparisons file (`clip1_id` ... `clip3_id`,
`clip1_numvotes` ... `clip3_numvotes`, optional `clip1_mp3_path` ...; tab-separated, quoted).
`judgments_import` is the service, `manage.py import_judgments` its command.

Design note: what a row becomes, and why.
- Songs to tracks. With a map (a CSV `song_id,track`) the map alone decides: a song missing
  from it is unknown. A `track` of digits only is a track id; anything else is matched as a
  song id is below. Without a map a song id is compared, ignoring case, with each track's
  file name (whole, without its extension, and without a further ".hq"), then with its
  source (whole, its last path component, that without its extension), then with its
  title. The first of these three levels where anything matches decides; two tracks there
  make the song ambiguous. A song id is tried whole and, when it is a path, by its file name
  and stem; a TagATune clip also by its mp3 path. Track ids are never guessed without a map:
  a survey's song "12" is not track 12.
- Snippet. A song is heard as its track's middle visible snippet by position (the later of
  two middles): the survey asked about whole songs, and the middle is the excerpt least
  likely to be an intro or a fade-out. A track rejected or hidden by a curator, or without
  a visible snippet, maps nowhere.
- Splits. Triplets are drawn within one split (DESIGN.md, Agreement). A row whose tracks lie
  in different splits is skipped, unless `keep_mixed_splits`: then it joins the train split
  when any track is a training track (evaluation reads only test triplets, and training
  marks all three tracks as trained, so evaluation leaves out every test triplet that shares
  one), else the validation split (validation triplets are watched, never trained on).
- Triplet. One per source and set of three snippets, inactive (never served), kind random.
- Listener. One per source and person id. TagATune names nobody: all of a source's votes
  are by one listener whose source id is "anonymous".
- Ids. A bliss judgment's source_id is its row number (1 = the first record after the
  header; blank lines are not records); a TagATune row of vote counts becomes one judgment
  per vote, "<row>:<clip id>:<k>", k = 1..votes. A source_id already stored with the same
  person, snippets and answer is "already present" (re-importing adds nothing); with
  anything else it is a conflict (most likely another file imported under the same source
  name), and the row is skipped.
"""

import csv
import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from annotation.models import SITE_SOURCE, Judgment, Listener, Triplet
from embeddings.models import Snippet, Split, Track

COLUMNS = {
    "bliss": ("song1", "song2", "song3", "picked_song", "person_id"),
    "tagatune": tuple(f"clip{i}_{what}" for what in ("id", "numvotes") for i in (1, 2, 3)),
}
ANONYMOUS = "anonymous"  # source_id of the one listener of a source that names no person
FIRST_ROWS = 5  # row numbers per skip reason in the summary
BATCH = 1000  # judgments per INSERT
MAX_VOTES = 1000  # per clip and row; more is a broken file, not a game round
EXTENSION = re.compile(r"\.[a-z0-9]{1,5}$")

# Why a row was skipped.
MISSING = "missing columns"
BLANK = "blank value"
DUPLICATE = "duplicate songs"
PICKED = "picked song not among the three"
BAD_VOTES = "bad vote count"
NO_VOTES = "no votes"
UNKNOWN = "unknown song"
AMBIGUOUS = "ambiguous song"
UNAVAILABLE = "track rejected, hidden or without snippets"
SAME_TRACK = "songs on the same track"
MIXED = "tracks in different splits"
CONFLICT = "source id used by another judgment"


class JudgmentImportError(ValueError):
    """The file (or map, or source name) cannot be imported at all; nothing was."""


class _Unmapped(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason, self.detail = reason, detail


@dataclass
class Row:
    """One data row: its number, raw fields, songs and the votes it holds, or why not."""

    number: int
    fields: dict
    songs: tuple[str, ...] = ()
    hints: tuple[str, ...] = ("", "", "")  # other names of each song (TagATune mp3 paths)
    votes: list[tuple[str, int, str]] = field(default_factory=list)  # (source_id, odd, person)
    reason: str = ""
    detail: str = ""


@dataclass
class ImportSummary:
    file: str
    format: str
    source: str
    dry_run: bool
    rows: int = 0
    judgments_read: int = 0
    imported: int = 0
    already_present: int = 0
    listeners_created: int = 0
    triplets_created: int = 0
    skipped: dict[str, dict] = field(default_factory=dict)  # reason: {rows, first}

    def skip(self, reason: str, number: int) -> None:
        entry = self.skipped.setdefault(reason, {"rows": 0, "first": []})
        entry["rows"] += 1
        if len(entry["first"]) < FIRST_ROWS:
            entry["first"].append(number)

    def as_dict(self) -> dict:
        return asdict(self)


def _parse(number: int, raw: dict, fmt: str) -> Row:
    row = Row(number, raw)
    needed = COLUMNS[fmt]
    if any(raw.get(c) is None for c in needed):
        row.reason = MISSING
        return row
    values = {c: raw[c].strip() for c in needed}
    if blank := [c for c in needed if not values[c]]:
        row.reason, row.detail = BLANK, ", ".join(blank)
        return row
    row.songs = tuple(values[c] for c in needed[:3])
    if len(set(row.songs)) < 3:
        row.reason = DUPLICATE
    elif fmt == "bliss":
        if values["picked_song"] not in row.songs:
            row.reason, row.detail = PICKED, values["picked_song"]
        else:
            odd = row.songs.index(values["picked_song"])
            row.votes = [(str(number), odd, values["person_id"])]
    else:
        try:
            counts = [int(values[c]) for c in needed[3:]]
        except ValueError:
            counts = [-1]
        row.hints = tuple((raw.get(f"clip{i}_mp3_path") or "").strip() for i in (1, 2, 3))
        if min(counts) < 0 or max(counts) > MAX_VOTES:
            row.reason = BAD_VOTES
        elif sum(counts) == 0:
            row.reason = NO_VOTES
        for odd, n in enumerate(counts if not row.reason else []):
            row.votes += [
                (f"{number}:{row.songs[odd]}:{k}", odd, ANONYMOUS) for k in range(1, n + 1)
            ]
    return row


def _rows(f: TextIO, fmt: str) -> tuple[list[str], Iterator[Row]]:
    """The header and the parsed data rows of an open file; JudgmentImportError when the
    header lacks the format's columns. Tab-separated when the header holds a tab."""
    first = f.readline()
    if not first.strip():
        raise JudgmentImportError("the file is empty")
    delimiter = "\t" if "\t" in first else ","
    names = [n.strip() for n in next(csv.reader([first], delimiter=delimiter))]
    if missing := [c for c in COLUMNS[fmt] if c not in names]:
        raise JudgmentImportError(
            f"not a {fmt} file: no column {', '.join(missing)} "
            f"(its columns: {', '.join(names[:12])})"
        )
    reader = csv.DictReader(f, fieldnames=names, delimiter=delimiter, skipinitialspace=True)
    return names, (_parse(n, raw, fmt) for n, raw in enumerate(reader, start=1))


def _names(value: str) -> set[str]:
    """The forms of a name a song id may take: whole, last path component, without an
    extension, without a further ".hq" (the shared corpus's high-quality files)."""
    whole = value.strip().casefold()
    last = re.split(r"[/\\:]", whole)[-1]
    stem = EXTENSION.sub("", last)
    return {n for n in (whole, last, stem, stem.removesuffix(".hq")) if n}


class Songs:
    """Songs of a file resolved to tracks and to the snippet that stands for each (see the
    design note). Reads every track once; snippets per track as needed."""

    def __init__(self, mapping: dict[str, str] | None) -> None:
        self.mapping = mapping
        self.levels: list[dict[str, set[int]]] = [{}, {}, {}]  # file name, source, title
        self.tracks: dict[int, tuple[str, bool]] = {}  # id: (split, usable)
        rows = Track.objects.values_list(
            "id", "file_name", "source", "title", "split", "status", "hidden"
        )
        for track_id, file_name, source, title, split, status, hidden in rows.iterator():
            names = (_names(file_name), _names(source), {title.strip().casefold()} - {""})
            for level, keys in zip(self.levels, names, strict=True):
                for key in keys:
                    level.setdefault(key, set()).add(track_id)
            self.tracks[track_id] = (split, status != Track.Status.REJECTED and not hidden)
        self.cache: dict[tuple[str, str], tuple[int, int, str] | _Unmapped] = {}

    def snippet(self, song: str, hint: str = "") -> tuple[int, int, str]:
        """(snippet id, track id, split) of a song; raises _Unmapped with the reason."""
        key = (song, hint)
        if key not in self.cache:
            try:
                self.cache[key] = self._resolve(song, hint)
            except _Unmapped as e:
                self.cache[key] = e
        found = self.cache[key]
        if isinstance(found, _Unmapped):
            raise found
        return found

    def _resolve(self, song: str, hint: str) -> tuple[int, int, str]:
        if self.mapping is None:
            track_id = self._match([song, hint], song)
        elif (target := self.mapping.get(song)) is None:
            raise _Unmapped(UNKNOWN, f"{song} is not in the map")
        elif target.isdigit():
            track_id = int(target)
            if track_id not in self.tracks:
                raise _Unmapped(UNKNOWN, f"{song}: no track {target}")
        else:
            track_id = self._match([target], f"{song} ({target})")
        split, usable = self.tracks[track_id]
        snippets = Snippet.objects.filter(track_id=track_id, hidden=False).order_by("position")
        ids = list(snippets.values_list("id", flat=True)) if usable else []
        if not ids:
            raise _Unmapped(UNAVAILABLE, f"{song}: track {track_id}")
        return ids[len(ids) // 2], track_id, split

    def _match(self, names: list[str], label: str) -> int:
        keys = set().union(*(_names(n) for n in names if n))
        for level in self.levels:
            found = set().union(*(level.get(k, set()) for k in keys))
            if len(found) == 1:
                return found.pop()
            if found:
                raise _Unmapped(AMBIGUOUS, f"{label}: tracks {sorted(found)[:5]}")
        raise _Unmapped(UNKNOWN, label)


def song_map_read(path: Path) -> dict[str, str]:
    """A map file (CSV with columns song_id and track) as {song id: track}."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            reader.fieldnames = [n.strip() for n in reader.fieldnames or []]
            if not {"song_id", "track"} <= set(reader.fieldnames):
                raise JudgmentImportError(f"{path.name}: a map needs the columns song_id,track")
            out: dict[str, str] = {}
            for raw in reader:
                song, track = ((raw.get(c) or "").strip() for c in ("song_id", "track"))
                if song and track and out.setdefault(song, track) != track:
                    raise JudgmentImportError(f"{path.name}: song {song} is mapped twice")
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise JudgmentImportError(f"{path.name}: cannot read the map: {e}") from e


def _split(splits: set[str], keep_mixed: bool) -> str | None:
    if len(splits) == 1:
        return splits.pop()
    if not keep_mixed:
        return None
    return Split.TRAIN if Split.TRAIN in splits else Split.VAL


class _Importer:
    """The writes of one import: listeners, triplets and judgments of one source."""

    def __init__(self, source: str, songs: Songs, keep_mixed: bool, summary: ImportSummary):
        self.source, self.songs, self.keep_mixed, self.summary = source, songs, keep_mixed, summary
        self.listeners = dict(
            Listener.objects.filter(source=source)
            .exclude(source_id="")
            .values_list("source_id", "id")
        )
        self.triplets: dict[frozenset, tuple[int, tuple[int, int, int]]] = {}
        for tid, *ids in Triplet.objects.filter(source=source).values_list(
            "id", "snippet_a_id", "snippet_b_id", "snippet_c_id"
        ):
            self.triplets.setdefault(frozenset(ids), (tid, tuple(ids)))
        # What each stored row says: (person, its three snippets, the odd snippet).
        self.known: dict[str, tuple[str, frozenset, int | None]] = {}
        stored = Judgment.objects.filter(source=source).exclude(source_id="")
        for sid, person, a, b, c, odd in stored.values_list(
            "source_id",
            "listener__source_id",
            "triplet__snippet_a_id",
            "triplet__snippet_b_id",
            "triplet__snippet_c_id",
            "odd_slot",
        ).iterator():
            self.known[sid] = (
                person,
                frozenset((a, b, c)),
                None if odd is None else (a, b, c)[odd],
            )
        self.pending: list[Judgment] = []
        self.votes: Counter[int] = Counter()

    def add(self, row: Row) -> str:
        """Import the row's votes; returns why the row was skipped, or ""."""
        try:
            picks = [self.songs.snippet(s, h) for s, h in zip(row.songs, row.hints, strict=True)]
        except _Unmapped as e:
            row.detail = e.detail
            return e.reason
        snippets = [p[0] for p in picks]
        if len({p[1] for p in picks}) < 3:
            return SAME_TRACK
        split = _split({p[2] for p in picks}, self.keep_mixed)
        if split is None:
            row.detail = " ".join(p[2] for p in picks)
            return MIXED
        key = frozenset(snippets)
        signatures = [(sid, odd, (person, key, snippets[odd])) for sid, odd, person in row.votes]
        if any(self.known.get(sid, sig) != sig for sid, _, sig in signatures):
            row.detail = ", ".join(
                sid for sid, _, sig in signatures if self.known.get(sid, sig) != sig
            )
            return CONFLICT
        triplet_id, order = self._triplet(key, snippets, split)
        for sid, odd, sig in signatures:
            if sid in self.known:
                self.summary.already_present += 1
                continue
            self.known[sid] = sig
            self.pending.append(
                Judgment(
                    triplet_id=triplet_id,
                    listener_id=self._listener(sig[0]),
                    odd_slot=order.index(snippets[odd]),
                    status=Judgment.Status.ACCEPTED,
                    weight=1.0,
                    source=self.source,
                    source_id=sid,
                )
            )
            self.votes[triplet_id] += 1
        if len(self.pending) >= BATCH:
            self.flush()
        return ""

    def _triplet(self, key: frozenset, snippets: list[int], split: str) -> tuple[int, tuple]:
        if key not in self.triplets:
            a, b, c = snippets
            triplet = Triplet.objects.create(
                snippet_a_id=a,
                snippet_b_id=b,
                snippet_c_id=c,
                kind=Triplet.Kind.RANDOM,
                split=split,
                active=False,  # never served: its answers were given elsewhere
                source=self.source,
            )
            self.triplets[key] = (triplet.id, (a, b, c))
            self.summary.triplets_created += 1
        return self.triplets[key]

    def _listener(self, person: str) -> int:
        if person not in self.listeners:
            listener = Listener.objects.create(
                token=secrets.token_urlsafe(32),
                pseudonym="L" + secrets.token_hex(6),
                consented_at=timezone.now(),
                source=self.source,
                source_id=person,
            )
            self.listeners[person] = listener.id
            self.summary.listeners_created += 1
        return self.listeners[person]

    def flush(self) -> None:
        Judgment.objects.bulk_create(self.pending)
        self.summary.imported += len(self.pending)
        self.pending = []

    def finish(self) -> None:
        self.flush()
        for triplet_id, n in self.votes.items():
            Triplet.objects.filter(id=triplet_id).update(votes=F("votes") + n)


def judgments_import(
    path: Path,
    fmt: str,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
    *,
    dry_run: bool = False,
    keep_mixed_splits: bool = False,
    report: TextIO | None = None,
    progress: bool = False,
) -> ImportSummary:
    """Import the odd-one-out judgments of a bliss or TagATune file as accepted judgments of
    `source` (default: the format's name), by the songs' tracks (`mapping`: {song id:
    track}, see the design note). Rows that cannot be mapped are skipped, counted in the
    summary and written to `report` (CSV: row, reason, detail, then the row's own columns).

    Streams the file and runs in one transaction: a file that is not of the format raises
    JudgmentImportError and imports nothing; `dry_run` rolls everything back after counting.
    Idempotent: rows already imported under `source` are counted, not added again. One
    import per source at a time (a concurrent one fails on the unique source ids).
    """
    if fmt not in COLUMNS:
        raise JudgmentImportError(f"unknown format {fmt}: one of {', '.join(COLUMNS)}")
    source = (source or fmt).strip()
    if not source or source == SITE_SOURCE or len(source) > 40:
        raise JudgmentImportError(f"the source must be 1-40 characters and not {SITE_SOURCE!r}")
    summary = ImportSummary(str(path), fmt, source, dry_run)
    try:
        with path.open("rb") as f:
            total = max(0, sum(1 for _ in f) - 1)
        with path.open(newline="", encoding="utf-8-sig") as f, transaction.atomic():
            names, rows = _rows(f, fmt)
            writer = csv.writer(report) if report is not None else None
            if writer:
                writer.writerow(["row", "reason", "detail", *names])
            importer = _Importer(source, Songs(mapping), keep_mixed_splits, summary)
            for row in tqdm(rows, total=total, unit="row", disable=not progress):
                summary.rows += 1
                summary.judgments_read += len(row.votes)
                reason = row.reason or importer.add(row)
                if reason:
                    summary.skip(reason, row.number)
                    if writer:
                        writer.writerow(
                            [row.number, reason, row.detail, *(row.fields.get(n) for n in names)]
                        )
            importer.finish()
            if dry_run:
                transaction.set_rollback(True)
    except (UnicodeDecodeError, csv.Error) as e:
        raise JudgmentImportError(f"not a readable {fmt} file: {e}") from e
    return summary
