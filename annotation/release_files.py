"""The files of a dataset release (annotation/releases.py): each file's columns, their Arrow
types and what they mean; a streaming table writer; licence rules; the datasheet.

The writers, the datasheet's column dictionary and the API's output serializer all read the
column lists here, so the three cannot drift apart.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.utils import timezone

# Each release file is described once here: its columns, their Arrow types and what they
# mean. The writers, the datasheet's column dictionary and the API's output serializer all
# read these lists, so the three cannot drift apart.


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    note: str


WRITE_BATCH = 20_000  # rows buffered per file before a record batch is written

# Licences whose terms let anyone hand the audio on, as the identifier a licence string
# starts with ("CC-BY-3.0 (Kevin MacLeod, FMA)" -> CC-BY-3.0). Public domain, CC0, MIT and
# CC-BY / CC-BY-SA only ask for attribution (and ShareAlike), which the datasheet and the
# bundle's README carry. Left out on purpose: NonCommercial and NoDerivatives (a snippet is
# an excerpt, loudness-adjusted: a derivative, and a dataset's users may be commercial),
# the GPL family (it asks for the "preferred form for modification" of what is passed on,
# which for a recording we do not have), and anything unknown or blank.
REDISTRIBUTABLE = re.compile(
    r"^(CC0\b|PUBLIC DOMAIN\b|EXPAT\b|MIT\b|EXPAT/MIT\b|CC-BY-(SA-)?\d(\.\d)?\b)(?![.\d]*-N[CD])",
    re.IGNORECASE,
)


def licence_redistributable(licence: str) -> bool:
    """Whether a track's licence string lets a release include its audio."""
    return bool(REDISTRIBUTABLE.match(licence.strip()))


def licence_id(licence: str) -> str:
    """The identifier a licence string starts with: "GPL-2+ (Wesnoth; ...)" -> "GPL-2+"."""
    return re.split(r"\s*[(;]", licence.strip(), maxsplit=1)[0].strip()


INT, FLOAT, TEXT, BOOL = pa.int64(), pa.float64(), pa.string(), pa.bool_()
TIME = pa.timestamp("us", tz="UTC")


def _per_slot(name: str, type_: pa.DataType, note: str) -> list[Column]:
    return [Column(f"{name}_{slot}", type_, f"{note} (slot {slot})") for slot in "abc"]


VOTE_COLUMNS = [
    Column("triplet_id", INT, "id of the triplet voted on (rows of triplets.parquet)"),
    Column("triplet_kind", TEXT, "random (three tracks) or gold (two snippets of one track)"),
    Column("split", TEXT, "train / val / test: the split of all three tracks"),
    Column("gold_odd", TEXT, "gold triplets: the slot (a, b, c) of the other track's snippet"),
    *_per_slot("snippet", INT, "snippet id"),
    *_per_slot("track", INT, "track id of the snippet"),
    *_per_slot("start_s", FLOAT, "offset of the snippet in its track, s"),
    *_per_slot("duration_s", FLOAT, "length of the snippet, s"),
    Column("answer", TEXT, "slot chosen as the odd one out: a, b, c, or none (can't tell)"),
    Column("odd_snippet", INT, "snippet id chosen as odd (empty for none)"),
    Column("listener", TEXT, "listener pseudonym, salted for this release only"),
    Column("response_ms", INT, "ms from first play to answer (empty when imported)"),
    *_per_slot("listen_ms", INT, "ms the listener played the snippet (empty when imported)"),
    *_per_slot("plays", INT, "times the snippet was started (empty when not recorded)"),
    *_per_slot("seeks", INT, "times the listener moved within the snippet (empty if unknown)"),
    Column("viewport", TEXT, "phone or desktop (empty when not recorded)"),
    Column("language", TEXT, "language of the listening page, e.g. en or de"),
    Column("weight", FLOAT, "weight of the vote in training (the listener's reliability)"),
    Column("source", TEXT, "oddball (collected here) or the name of an imported data set"),
    Column("source_id", TEXT, "the row's id in its source data set (imported votes only)"),
    Column("created_at", TIME, "time of the answer, UTC"),
]
TRIPLET_COLUMNS = [
    Column("triplet_id", INT, "id of the triplet"),
    Column("triplet_kind", TEXT, "random or gold"),
    Column("split", TEXT, "train / val / test"),
    Column("gold_odd", TEXT, "gold triplets: the slot of the other track's snippet"),
    Column("source", TEXT, "oddball or the imported data set the triplet came from"),
    *_per_slot("snippet", INT, "snippet id"),
    *_per_slot("track", INT, "track id of the snippet"),
    *_per_slot("votes", INT, "votes naming this slot the odd one"),
    Column("votes_none", INT, 'answers "can\'t tell"'),
    Column("n_votes", INT, 'votes naming a slot (votes_a + votes_b + votes_c; no "can\'t tell")'),
    Column("majority", TEXT, "the slot most votes named; tie when the top is shared; empty: none"),
    Column("agreement", FLOAT, "share of n_votes for the top slot (empty when n_votes is 0)"),
]
RATING_COLUMNS = [
    Column("task_id", INT, "id of the transition task rated"),
    Column(
        "task_kind",
        TEXT,
        "model (proposed by a model), random (a control) or true (the "
        "track's own continuation: a check that should sound seamless)",
    ),
    Column("proposed_by", TEXT, "the embedding space that proposed the pair (kind model)"),
    Column("split", TEXT, "train / val / test: the split of both tracks"),
    Column("style", TEXT, "hard_cut, crossfade (equal power) or overlay (under a mix mask)"),
    Column("track_x", INT, "track of clip X, which plays first"),
    Column("clip_x", INT, "clip id of X"),
    Column("track_y", INT, "track of clip Y, which follows"),
    Column("clip_y", INT, "clip id of Y"),
    Column("x_seam_s", FLOAT, "the seam in track X, s from its start"),
    Column("y_seam_s", FLOAT, "the seam in track Y, s from its start, before any beat shift"),
    Column("beat_shift_s", FLOAT, "s Y was delayed (negative: advanced) to meet X's beats"),
    Column("aligned", BOOL, "whether Y was shifted onto X's beats"),
    Column("seam_s", FLOAT, "the seam in the rendering, s from its start"),
    Column("duration_s", FLOAT, "length of the rendering, s"),
    Column("crossfade_s", FLOAT, "crossfade length, s (crossfade only)"),
    Column(
        "mask", TEXT, "overlay only: Y's share of the mix, a JSON list, one per 1/mask_rate_hz s"
    ),
    Column("mask_rate_hz", FLOAT, "mask values per second"),
    Column("gain_x_db", FLOAT, "loudness gain applied to X, dB"),
    Column("gain_y_db", FLOAT, "loudness gain applied to Y, dB"),
    Column("rendering_sha256", TEXT, "SHA-256 of the rendered Ogg file"),
    Column("rating", INT, "1 (jarring) to 5 (seamless, as if one piece)"),
    Column("broke_at_s", FLOAT, "where the listener tapped 'it broke here', s into the rendering"),
    Column("listener", TEXT, "listener pseudonym, salted for this release only"),
    Column("response_ms", INT, "ms from first play to answer"),
    Column("listen_ms", INT, "ms the rendering was played"),
    Column("weight", FLOAT, "weight of the rating in training"),
    Column("created_at", TIME, "time of the rating, UTC"),
]
TRACK_COLUMNS = [
    Column("track_id", INT, "id of the track"),
    Column("title", TEXT, "title"),
    Column("licence", TEXT, "licence as imported"),
    Column("attribution", TEXT, "attribution to carry with any use (e-mail addresses removed)"),
    Column("source", TEXT, "where the recording comes from"),
    Column("genre", TEXT, "genre label where one was given"),
    Column("split", TEXT, "train / val / test"),
    Column("duration_s", FLOAT, "length of the track, s"),
    Column("redistributable", BOOL, "whether its licence lets us hand out its audio"),
]
SNIPPET_COLUMNS = [
    Column("snippet_id", INT, "id of the snippet"),
    Column("track_id", INT, "its track"),
    Column("position", INT, "order within the track"),
    Column("start_s", FLOAT, "offset in the track, s"),
    Column("duration_s", FLOAT, "length, s"),
    Column("loudness_lufs", FLOAT, "integrated loudness before normalisation, LUFS"),
    Column("gain_db", FLOAT, "gain applied to reach -18 LUFS, dB"),
    Column("audio", TEXT, "its file in audio.zip (empty when not bundled)"),
]


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


class TableWriter:
    """Writes one table as Parquet, CSV and/or JSON Lines, a batch of rows at a time, so a
    million rows never sit in memory together. Rows are tuples in `columns` order."""

    def __init__(self, folder: Path, stem: str, columns: list[Column], kinds: tuple[str, ...]):
        self.columns = columns
        self.schema = pa.schema([pa.field(c.name, c.type) for c in columns])
        self.names = [c.name for c in columns]
        self.rows: list[tuple] = []
        self.count = 0
        self.parquet = (
            pq.ParquetWriter(folder / f"{stem}.parquet", self.schema)
            if "parquet" in kinds
            else None
        )
        self.csv = pa_csv.CSVWriter(folder / f"{stem}.csv", self.schema) if "csv" in kinds else None
        self.jsonl = (
            (folder / f"{stem}.jsonl").open("w", encoding="utf-8") if "jsonl" in kinds else None
        )

    def write(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        columns = zip(*self.rows, strict=True)
        arrays = [pa.array(v, type=c.type) for v, c in zip(columns, self.columns, strict=True)]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        if self.parquet:
            self.parquet.write_batch(batch)
        if self.csv:
            self.csv.write_batch(batch)
        if self.jsonl:
            self.jsonl.writelines(
                json.dumps(dict(zip(self.names, row, strict=True)), default=_json_default) + "\n"
                for row in self.rows
            )
        self.count += len(self.rows)
        self.rows = []

    def close(self) -> int:
        """Flush and close every file; returns the rows written."""
        self.flush()
        for out in (self.parquet, self.csv, self.jsonl):
            if out is not None:
                out.close()
        return self.count


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def redact(text: str) -> str:
    """Free text with e-mail addresses taken out: releases carry none (issue 7, privacy)."""
    return EMAIL.sub("[e-mail removed]", text or "")


def _cell(text: object) -> str:
    return " ".join(str(text if text is not None else "").split()).replace("|", "/")[:300]


def audio_licences(tracks: list[tuple]) -> str:
    """LICENCES.md inside audio.zip: the licence and attribution of every bundled track."""
    lines = ["# Licences of the audio in this bundle", ""]
    lines += [
        f"- track {t[0]}, {_cell(t[1])}: {_cell(t[2])}. {_cell(t[3])}" for t in tracks if t[8]
    ]
    return "\n".join(lines) + "\n"


FILE_NOTES = {
    "votes": "one row per vote (Parquet, CSV and JSON Lines hold the same rows)",
    "triplets": "one row per triplet: its snippets, votes per slot, majority and agreement",
    "ratings": "one row per transition rating (Parquet, CSV, JSON Lines)",
    "tracks": "the tracks of the release with licence and attribution (CSV)",
    "snippets": "the snippets of the release: offsets, loudness, file in audio.zip (CSV)",
}
LOAD_PANDAS = """```python
import pandas as pd

votes = pd.read_parquet("votes.parquet")
triplets = pd.read_parquet("triplets.parquet")
ratings = pd.read_parquet("ratings.parquet")
tracks = pd.read_csv("tracks.csv")
snippets = pd.read_csv("snippets.csv")
# the similar pair of each vote: the two slots not chosen (answer "none" has none)
voted = votes[votes["answer"] != "none"]
```"""
LOAD_HF = """```python
from datasets import load_dataset

votes = load_dataset("parquet", data_files={"votes": "votes.parquet"})["votes"]
triplets = load_dataset("parquet", data_files={"triplets": "triplets.parquet"})["triplets"]
```"""


def _figure(total: float, n: int, unit: str) -> str:
    return f"{total / n:.3f} (over {n} {unit})" if n else "not available (too few votes)"


def _or(value: object, default: str) -> object:
    return default if value is None else value


def release_datasheet(release: object, counts: dict, stats: dict, tracks: list[tuple]) -> str:
    """README.md of a release: what was asked, how it was sampled, filters, counts,
    agreement and the human ceiling, biases, columns, loading, licences."""
    f = release.filters
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.get("kinds", {}).items())) or "no"
    rating_kinds = stats.get("rating_kinds", {})
    proposed = ", ".join(f"{n} {k}" for k, n in sorted(rating_kinds.items())) or "none"
    lines = [
        f"# Oddball dataset release {release.number}"
        + (f": {release.title}" if release.title else ""),
        "",
        f"Cut {timezone.now():%Y-%m-%d %H:%M} UTC. Cite it as *Oddball dataset release "
        f"{release.number}*; a release never changes: a new cut gets a new number.",
        "",
    ]
    if release.notes:
        lines += ["## Notes from the curators", "", release.notes, ""]
    lines += [
        "## What was asked",
        "",
        "1. **Odd one out.** Volunteers heard three 10-20 s snippets A, B, C of different",
        '   tracks and answered "which one sounds least like the other two?" (the feel: mood,',
        '   timbre, rhythm, texture, not the genre), or "can\'t tell". The two snippets not',
        "   chosen are the similar pair: each vote is a triplet (anchor, positive, negative).",
        "   Slots a, b, c are the triplet's own; each listener saw them in a random order.",
        "2. **Transition smoothness.** The end of clip X flowing into the start of clip Y, as a",
        '   hard cut, an equal-power crossfade or an overlay under a mix mask: "how seamless is',
        '   this, as if it were one piece?", 1 (jarring) to 5 (seamless).',
        "",
        "On this site an answer unlocks only once every snippet has played for a few seconds.",
        "",
        "## How the triplets were sampled",
        "",
        "Triplets are drawn within one split (train, validation, test: fixed per track at",
        "import), so held-out figures rest on whole triplets of unseen tracks. *random*",
        "triplets take three different tracks chosen uniformly and one snippet of each;",
        "*gold* triplets take two snippets of one track and one of another in a random slot:",
        "they check listeners, not taste (`gold_odd` is their answer). Triplets are served",
        "least-voted first. No model chose these triplets: the generator (make_tasks) draws",
        "them at random, and a triplet records no proposer. Imported triplets (source other",
        "than oddball) were sampled by their own data set.",
        f"In this release: {kinds} triplets.",
        "",
        "Transition tasks are *model* (a transition model's top candidates; `proposed_by`",
        "names the model version's space), *random* (a control) or *true* (a track's own",
        f"continuation). Ratings in this release by kind and proposer: {proposed}.",
        "",
        "## Filters of this cut",
        "",
        "- Work that counts only: accepted, not practice, not repeats, by listeners neither",
        "  flagged nor excluded by quality control or a curator.",
        f"- At least {f.get('min_votes', 1)} votes naming a slot per triplet.",
        f"- Listener reliability at least: {_or(f.get('min_reliability'), 'any')}.",
        f"- Sources: {', '.join(f['sources']) if f.get('sources') else 'all'}.",
        f"- Licences: {', '.join(f['licences']) if f.get('licences') else 'all'}"
        " (a triplet is in only if all three tracks pass; a rating, if both do).",
        f"- Audio bundle: {'yes' if f.get('audio') else 'no'}.",
        "",
        "## Counts",
        "",
    ]
    lines += [f"- {name.replace('_', ' ')}: {value}" for name, value in counts.items()]
    lines += [
        "",
        "## Agreement and the human ceiling",
        "",
        "On random triplets with at least 3 votes naming a slot:",
        "",
        "- mean agreement (share of votes for the top slot): "
        + _figure(stats.get("agreement_sum", 0.0), stats.get("agreement_n", 0), "triplets"),
        "- human ceiling (how often one vote matches the majority of the *other* votes on",
        "  its triplet, a k-way tie scoring 1/k; the figure a model's agreement is read",
        "  against; computed as training/metrics.py's human_ceiling defines it): "
        + _figure(stats.get("ceiling_sum", 0.0), stats.get("ceiling_n", 0), "votes"),
        "- chance: 0.333",
        "- gold triplets, share of votes naming the other track's snippet: "
        + _figure(stats.get("gold_right", 0), stats.get("gold_votes", 0), "votes"),
        "",
        "## Known biases",
        "",
        "- The listeners are self-selected volunteers, not a sample of any population; the",
        "  page is in English and German.",
        "- The music is what was imported: in the shared corpus mostly game soundtracks",
        "  (orchestral, rock, themed), some classical and jazz. Some pieces exist in two",
        "  versions (a stem and its mix, a fast variant) that may sit in different splits.",
        "- Snippets are loudness-matched (-18 LUFS), so loudness says little here.",
        "- Quality control removes listeners who answer before listening, always pick one",
        "  position or disagree with gold and consensus; `weight` is their estimated",
        "  reliability. Filtering on reliability favours listeners who agree with the crowd.",
        "- Demonstrations and benchmarks fill a database with a simulated crowd; a release",
        "  cut from such a database holds simulated votes, which look like any others.",
        "- Pseudonyms are salted per release, but the same vote in two releases can still be",
        "  matched by its triplet, time and answer.",
        "",
        "## Files",
        "",
    ]
    lines += [f"- `{stem}.*`: {note}" for stem, note in FILE_NOTES.items()]
    lines += [
        "- `audio.zip` (when bundled): `audio/<snippet_id>.ogg` for tracks whose licence lets",
        "  us hand the audio on (public domain, CC0, MIT, CC-BY, CC-BY-SA; not GPL, NC or",
        "  ND), with `LICENCES.md`.",
        "- `SHA256SUMS`: check the files with `sha256sum -c SHA256SUMS`.",
        "",
    ]
    for title, columns in (
        ("votes", VOTE_COLUMNS),
        ("triplets", TRIPLET_COLUMNS),
        ("ratings", RATING_COLUMNS),
        ("tracks", TRACK_COLUMNS),
        ("snippets", SNIPPET_COLUMNS),
    ):
        lines += [f"## Columns of {title}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.note} |" for c in columns]
        lines.append("")
    lines += [
        "## Loading",
        "",
        "### pandas",
        "",
        "In the release's folder:",
        "",
        LOAD_PANDAS,
        "",
        "### Hugging Face datasets",
        "",
        LOAD_HF,
        "",
        "## Tracks: licence and attribution",
        "",
        "Carry each track's licence and attribution with anything you publish from it.",
        "",
        "| track | title | licence | attribution | audio may be bundled |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t[0]} | {_cell(t[1])} | {_cell(t[2])} | {_cell(t[3])} | {'yes' if t[8] else 'no'} |"
        for t in tracks
    ]
    return "\n".join(lines) + "\n"
