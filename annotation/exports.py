"""Dataset export: every judgment as one row per vote, plus a datasheet. Practice-round
answers are kept in the database but are not votes, so they are not exported."""

from pathlib import Path

import pandas as pd
from django.utils import timezone

from annotation.models import Judgment, Listener, Triplet
from annotation.selectors import EXPORT_COLUMNS, judgment_export_rows
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


def dataset_export(out: Path) -> dict:
    """Write judgments.parquet, judgments.csv and README.md into `out`; returns the counts."""
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame.from_records(judgment_export_rows(), columns=EXPORT_COLUMNS)
    frame.to_parquet(out / "judgments.parquet", index=False)
    frame.to_csv(out / "judgments.csv", index=False)
    counts = {
        "judgments": len(frame),
        "triplets": int(frame["triplet_id"].nunique()) if len(frame) else 0,
        "listeners": int(frame["listener"].nunique()) if len(frame) else 0,
        "tracks": Track.objects.count(),
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
        "",
        "## Columns",
        "",
        "| column | meaning |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {note} |" for name, note in COLUMN_NOTES.items()]
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "import pandas as pd",
        'votes = pd.read_parquet("judgments.parquet")',
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
