"""Dataset export: every judgment as one row per vote, every transition rating as one row
per rating, plus a datasheet. Practice-round answers are kept in the database but are not
votes, so they are not exported.

`export_dataset` (dataset_export) writes the working export; numbered dataset releases
are annotation/releases.py, their files annotation/release_files.py.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from django.utils import timezone

from annotation.models import Judgment, Listener, Triplet
from annotation.selectors import EXPORT_COLUMNS, counted_ratings, judgment_export_rows
from embeddings.models import Track

COLUMN_NOTES = {
    "judgment_id": "id of the vote",
    "triplet_id": "id of the triplet voted on",
    "triplet_kind": "random (three tracks) or gold (two snippets of one track, one of another)",
    "split": "train / val / test: the split of all three tracks",
    "gold_odd_slot": "gold triplets: slot (0=a, 1=b, 2=c) of the other track's snippet",
    "snippet_a": "snippet id in slot a (b, c likewise)",
    "track_a": "track id of the snippet in slot a (b, c likewise)",
    "start_s_a": "offset of snippet a in its track, seconds (b, c likewise)",
    "duration_s_a": "length of snippet a, seconds (b, c likewise)",
    "answer": 'slot chosen as the odd one out: a, b, c, or none for "can\'t tell"',
    "odd_snippet": "snippet id chosen as odd (empty for none)",
    "listener": "pseudonym of the listener",
    "response_ms": "milliseconds from first play to answer",
    "listen_ms_a": "milliseconds the listener played snippet a (b, c likewise)",
    "plays_a": "times snippet a was started (b, c likewise; empty when not recorded)",
    "seeks_a": "times the listener moved within snippet a (b, c likewise; empty when not recorded)",
    "viewport": "phone or desktop (empty when not recorded)",
    "language": "language of the listening page, e.g. en or de",
    "status": "accepted or rejected by quality control / curators",
    "weight": "weight the judgment carries in training",
    "created_at": "time of the answer, UTC",
}


TRANSITION_NOTES = {
    "rating_id": "id of the rating",
    "task_id": "id of the transition task rated",
    "task_kind": "model (proposed by a model), random (a control) or true (the track's own "
    "continuation: a check that should sound seamless)",
    "proposed_by": "the embedding space that proposed the pair (kind model)",
    "split": "train / val / test: the split of both tracks",
    "style": "hard_cut, crossfade (equal power) or overlay (both under a mix mask)",
    "track_x": "track id of clip X, which plays first (y likewise)",
    "clip_x": "clip id of X (y likewise)",
    "x_seam_s": "the seam in track X, seconds from its start",
    "y_seam_s": "the seam in track Y, seconds from its start, before any beat shift",
    "beat_shift_s": "seconds Y was delayed (negative: advanced) to meet X's beats",
    "aligned": "whether Y was shifted onto X's beats",
    "seam_s": "the seam in the rendering, seconds from its start",
    "duration_s": "length of the rendering, seconds",
    "crossfade_s": "crossfade length, seconds (crossfade only)",
    "mask": "overlay only: Y's share of the mix, JSON list, one value per 1/mask_rate_hz s",
    "mask_rate_hz": "mask values per second",
    "gain_x_db": "loudness gain applied to X, dB (y likewise)",
    "rendering_sha256": "SHA-256 of the rendered Ogg file",
    "rating": "1 (jarring) to 5 (seamless, as if one piece)",
    "broke_at_s": "where the listener tapped 'it broke here', seconds into the rendering",
    "listener": "pseudonym of the listener",
    "response_ms": "milliseconds from first play to answer",
    "listen_ms": "milliseconds the rendering was played",
    "status": "accepted or rejected by quality control / curators",
    "weight": "weight the rating carries in training",
    "created_at": "time of the rating, UTC",
}
TRANSITION_FIELDS = {
    "rating_id": "id",
    "task_id": "task_id",
    "task_kind": "task__kind",
    "proposed_by": "task__proposed_by",
    "split": "task__split",
    "style": "task__style",
    "track_x": "task__clip_x__track_id",
    "clip_x": "task__clip_x_id",
    "track_y": "task__clip_y__track_id",
    "clip_y": "task__clip_y_id",
    "x_seam_s": "task__rendering__x_seam_s",
    "y_seam_s": "task__rendering__y_seam_s",
    "beat_shift_s": "task__rendering__beat_shift_s",
    "aligned": "task__rendering__aligned",
    "seam_s": "task__rendering__seam_s",
    "duration_s": "task__rendering__duration_s",
    "crossfade_s": "task__rendering__crossfade_s",
    "mask": "task__rendering__mask",
    "mask_rate_hz": "task__rendering__mask_rate_hz",
    "gain_x_db": "task__rendering__gain_x_db",
    "gain_y_db": "task__rendering__gain_y_db",
    "rendering_sha256": "task__rendering__sha256",
    "rating": "rating",
    "broke_at_s": "broke_at_s",
    "listener": "listener__pseudonym",
    "response_ms": "response_ms",
    "listen_ms": "listen_ms",
    "status": "status",
    "weight": "weight",
    "created_at": "created_at",
}


def transition_export_rows() -> Iterator[tuple]:
    """One tuple per transition rating, in TRANSITION_FIELDS order, oldest first."""
    rows = counted_ratings().order_by("id").values_list(*TRANSITION_FIELDS.values())
    mask = list(TRANSITION_FIELDS).index("mask")
    for row in rows.iterator(chunk_size=2000):
        row = list(row)
        row[mask] = None if row[mask] is None else json.dumps(row[mask])
        yield tuple(row)


def dataset_export(out: Path) -> dict:
    """Write judgments and transition ratings (Parquet and CSV) and README.md into `out`;
    returns the counts."""
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame.from_records(judgment_export_rows(), columns=EXPORT_COLUMNS)
    frame.to_parquet(out / "judgments.parquet", index=False)
    frame.to_csv(out / "judgments.csv", index=False)
    ratings = pd.DataFrame.from_records(transition_export_rows(), columns=list(TRANSITION_FIELDS))
    ratings.to_parquet(out / "transitions.parquet", index=False)
    ratings.to_csv(out / "transitions.csv", index=False)
    counts = {
        "judgments": len(frame),
        "triplets": int(frame["triplet_id"].nunique()) if len(frame) else 0,
        "listeners": int(frame["listener"].nunique()) if len(frame) else 0,
        "tracks": Track.objects.count(),
        "transition_ratings": len(ratings),
    }
    (out / "README.md").write_text(_datasheet(counts), encoding="utf-8")
    return counts


def _datasheet(counts: dict) -> str:
    lines = [
        "# Oddball judgments",
        "",
        f"Exported {timezone.now():%Y-%m-%d %H:%M} UTC.",
        "",
        "Volunteers heard three 10–20 s snippets of different tracks and chose the one that",
        'sounds least like the other two ("which one is the odd one out?"), or "can\'t tell".',
        "The two snippets not chosen form the similar pair: each vote is a training triplet",
        "(anchor, positive, negative). Gold triplets hold two snippets of one track and check",
        "listeners rather than taste.",
        "",
        "## Counts",
        "",
        f"- votes: {counts['judgments']}",
        f"- triplets with votes: {counts['triplets']} (of {Triplet.objects.count()} made)",
        f"- listeners: {counts['listeners']} (of {Listener.objects.count()})",
        f"- accepted votes: {Judgment.objects.filter(status=Judgment.Status.ACCEPTED).count()}",
        "",
        "## Files",
        "",
        "- `judgments.parquet`, `judgments.csv`: one row per vote, the same columns.",
        "- `transitions.parquet`, `transitions.csv`: one row per transition rating "
        f"({counts['transition_ratings']} ratings).",
        "",
        "## Columns of the judgments",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {note} |" for name, note in COLUMN_NOTES.items()]
    lines += [
        "",
        "## Columns of the transition ratings",
        "",
        "Listeners heard clip X's ending flow into clip Y's opening, rendered in one style,",
        "and rated how seamless it was. The seam, the style and the overlay's mix mask are",
        "kept with each rating, so the ratings can train a transition or mashup model.",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {note} |" for name, note in TRANSITION_NOTES.items()]
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import pandas as pd",
        'votes = pd.read_parquet("judgments.parquet")',
        'ratings = pd.read_parquet("transitions.parquet")',
        "```",
        "",
        "## Tracks: licence and attribution",
        "",
        "| track | title | licence | attribution | source |",
        "|---|---|---|---|---|",
    ]
    for track in Track.objects.order_by("id"):
        attribution = " ".join(track.attribution.split())[:300].replace("|", "/")
        lines.append(
            f"| {track.id} | {track.title.replace('|', '/')} | {track.license.replace('|', '/')} "
            f"| {attribution} | {track.source.replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"
