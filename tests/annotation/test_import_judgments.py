"""import_judgments: bliss and TagATune files become judgments of their own source, rows that
cannot be mapped are reported, and imported work stays out of training and quality control
unless an operator lets it in."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import SITE_SOURCE, AuditEntry, Judgment, Listener, Triplet
from annotation.quality_services import quality_update
from annotation.selectors import (
    counted_judgments,
    judged_votes,
    judgment_export_rows,
    triplet_votes,
)
from annotation.services import Answer, assignment_next, judgment_submit
from embeddings.models import Split, Track
from tests.factories import listener_make, track_make, triplet_make

pytestmark = pytest.mark.django_db

BLISS_HEADER = "song1, song2, song3, picked_song, person_id"


def song_track(song: str, split: str = "train", **fields: object) -> Track:
    """A track of three snippets whose source path names the survey's song id."""
    return track_make(split, snippets=3, source=f"github:survey/audio/{song}.ogg", **fields)


def middle(track: Track) -> int:
    return track.snippets.get(position=1).id


def run(path: Path, *args: str) -> dict:
    out = io.StringIO()
    call_command("import_judgments", str(path), *args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def songs() -> dict[str, Track]:
    tracks = {s: song_track(s) for s in ("s1", "s2", "s3", "s4", "s5")}
    tracks["s6"] = song_track("s6", split="test")
    tracks["s7"] = song_track("s7", status=Track.Status.REJECTED)
    song_track("twice")
    song_track("twice")
    return tracks


@pytest.fixture
def survey(tmp_path: Path) -> Path:
    return write(
        tmp_path / "survey.csv",
        [
            BLISS_HEADER,
            "s1,s2,s3,s3,alice",  # 1: good, odd slot c
            "s2,s4,s5,s2,bob",  # 2: good, odd slot a
            "s1,s2,s3,s1,bob",  # 3: good, the triplet of row 1 again
            "s1,s2,nope,s1,alice",  # 4: unknown song
            "s1,s1,s2,s1,alice",  # 5: duplicate songs
            "s1,s2,s3,s9,alice",  # 6: picked song not among the three
            "s1,s2",  # 7: missing columns
            "s1,s2,s3,,carol",  # 8: blank value
            "s1,s2,s6,s1,alice",  # 9: a test track among training tracks
            "s1,s2,s7,s1,alice",  # 10: a rejected track
            "s1,s2,twice,s1,alice",  # 11: two tracks match
        ],
    )


def test_a_bliss_survey_imports_its_good_rows_and_reports_the_others(songs, survey, tmp_path):
    report = tmp_path / "skipped.csv"
    summary = run(survey, "--format", "bliss", "--report", str(report))

    assert (summary["rows"], summary["imported"], summary["already_present"]) == (11, 3, 0)
    assert (summary["listeners_created"], summary["triplets_created"]) == (2, 2)
    assert {reason: s["first"] for reason, s in summary["skipped"].items()} == {
        "unknown song": [4],
        "duplicate songs": [5],
        "picked song not among the three": [6],
        "missing columns": [7],
        "blank value": [8],
        "tracks in different splits": [9],
        "track rejected, hidden or without snippets": [10],
        "ambiguous song": [11],
    }
    with report.open(newline="") as f:
        skipped = {int(r["row"]): r for r in csv.DictReader(f)}
    assert sorted(skipped) == [4, 5, 6, 7, 8, 9, 10, 11]
    assert skipped[4]["reason"] == "unknown song" and skipped[4]["song3"] == "nope"
    assert skipped[9]["detail"] == "train train test"

    s1, s2, s3, s4, s5 = (middle(songs[s]) for s in ("s1", "s2", "s3", "s4", "s5"))
    got = {
        j.source_id: (j.triplet.snippet_ids(), j.odd_slot, j.listener.source_id)
        for j in Judgment.objects.select_related("triplet", "listener")
    }
    assert got == {
        "1": ((s1, s2, s3), 2, "alice"),
        "2": ((s2, s4, s5), 0, "bob"),
        "3": ((s1, s2, s3), 0, "bob"),
    }
    for judgment in Judgment.objects.all():
        assert (judgment.source, judgment.status, judgment.weight) == ("bliss", "accepted", 1.0)
        assert judgment.assignment is None and judgment.response_ms is None
    for triplet in Triplet.objects.all():
        assert (triplet.source, triplet.active, triplet.split) == ("bliss", False, "train")
    assert Triplet.objects.get(snippet_a=s1).votes == 2
    assert set(Listener.objects.values_list("source", "source_id", "review")) == {
        ("bliss", "alice", "ok"),
        ("bliss", "bob", "ok"),
    }


def test_importing_the_same_file_again_adds_nothing(songs, survey):
    run(survey, "--format", "bliss")
    counts = (Judgment.objects.count(), Listener.objects.count(), Triplet.objects.count())
    again = run(survey, "--format", "bliss")
    assert (again["imported"], again["already_present"]) == (0, 3)
    assert (again["listeners_created"], again["triplets_created"]) == (0, 0)
    assert (Judgment.objects.count(), Listener.objects.count(), Triplet.objects.count()) == counts


def test_another_file_under_the_same_source_is_reported_as_a_conflict(songs, survey, tmp_path):
    run(survey, "--format", "bliss")
    other = write(tmp_path / "other.csv", [BLISS_HEADER, "s3,s4,s5,s4,carol"])
    summary = run(other, "--format", "bliss")
    assert summary["skipped"] == {"source id used by another judgment": {"rows": 1, "first": [1]}}
    assert Judgment.objects.count() == 3
    assert run(other, "--format", "bliss", "--source", "bliss-2")["imported"] == 1


def test_a_dry_run_counts_but_writes_nothing(songs, survey):
    summary = run(survey, "--format", "bliss", "--dry-run")
    assert (summary["imported"], summary["listeners_created"], summary["dry_run"]) == (3, 2, True)
    assert not Judgment.objects.exists()
    assert not Listener.objects.exists()
    assert not Triplet.objects.exists()


def test_a_file_of_another_format_fails_cleanly_and_imports_nothing(songs, tmp_path):
    tagatune = write(tmp_path / "comparisons.csv", ['"clip1_id"\t"clip2_id"\t"clip3_id"'])
    with pytest.raises(CommandError, match="not a bliss file: no column song1"):
        run(tagatune, "--format", "bliss")


def test_a_file_unreadable_half_way_imports_nothing(songs, tmp_path):
    path = tmp_path / "broken.csv"
    good = b"s1,s2,s3,s3,alice\n" * 3000  # several batches are written before the bad row
    path.write_bytes(BLISS_HEADER.encode() + b"\n" + good + b"s1,s2,s3,\xff\xfe,bob\n")
    report = tmp_path / "skipped.csv"
    with pytest.raises(CommandError, match="nothing was imported"):
        run(path, "--format", "bliss", "--report", str(report))
    assert not Judgment.objects.exists()
    assert not report.exists()


def test_kept_mixed_splits_join_train_when_any_track_trains_else_validation(tmp_path):
    for song, split in (("t1", "train"), ("t2", "train"), ("v1", "val"), ("v2", "val")):
        song_track(song, split=split)
    song_track("x1", split="test")
    survey = write(tmp_path / "s.csv", [BLISS_HEADER, "t1,t2,x1,x1,p", "v1,v2,x1,v1,p"])
    summary = run(survey, "--format", "bliss", "--keep-mixed-splits")
    assert summary["imported"] == 2
    assert sorted(Triplet.objects.values_list("split", flat=True)) == ["train", "val"]


def test_a_map_names_tracks_by_id_or_title_and_leaves_other_songs_unknown(tmp_path):
    a, b, c = (track_make("val", snippets=2) for _ in range(3))
    mapping = write(
        tmp_path / "map.csv", ["song_id,track", f"101,{a.id}", f"102,{b.title}", f"103,{c.id}"]
    )
    survey = write(tmp_path / "s.csv", [BLISS_HEADER, "101,102,103,102,p", "101,102,104,101,p"])
    summary = run(survey, "--format", "bliss", "--map", str(mapping))
    assert summary["imported"] == 1
    assert summary["skipped"] == {"unknown song": {"rows": 1, "first": [2]}}
    judgment = Judgment.objects.get()
    # Two snippets: the later of the two middles stands for the song.
    assert judgment.triplet.snippet_ids() == tuple(t.snippets.get(position=1).id for t in (a, b, c))
    assert (judgment.odd_slot, judgment.triplet.split) == (1, "val")


def test_tagatune_rows_become_one_judgment_per_vote_by_one_anonymous_listener(tmp_path):
    tracks = []
    for n in range(1, 5):
        track = track_make("train", snippets=1)
        Track.objects.filter(id=track.id).update(file_name=f"artist-album-0{n}-song-30-59.mp3")
        tracks.append(track)
    header = [f"clip{i}_{w}" for w in ("id", "numvotes", "mp3_path") for i in (1, 2, 3)]

    def line(ids: tuple, votes: tuple) -> str:
        paths = [f"f/artist-album-0{n}-song-30-59.mp3" for n in ids]
        return "\t".join(f'"{v}"' for v in (*[i * 11 for i in ids], *votes, *paths))

    comparisons = write(
        tmp_path / "comparisons_final.csv",
        [
            "\t".join(f'"{h}"' for h in header),
            line((1, 2, 3), (1, 0, 3)),
            line((2, 3, 4), (0, 2, 0)),
            line((1, 3, 4), (0, 0, 0)),
            line((1, 2, 4), ("x", 1, 1)),
        ],
    )
    summary = run(comparisons, "--format", "tagatune")
    assert (summary["rows"], summary["judgments_read"], summary["imported"]) == (4, 6, 6)
    assert {r: s["first"] for r, s in summary["skipped"].items()} == {
        "no votes": [3],
        "bad vote count": [4],
    }
    (listener,) = Listener.objects.all()
    assert (listener.source, listener.source_id) == ("tagatune", "anonymous")
    votes = dict(Judgment.objects.values_list("source_id", "odd_slot"))
    assert votes == {"1:11:1": 0, "1:33:1": 2, "1:33:2": 2, "1:33:3": 2, "2:33:1": 1, "2:33:2": 1}
    assert run(comparisons, "--format", "tagatune")["already_present"] == 6


def site_answers(n: int = 3) -> list[Judgment]:
    listener = listener_make()
    for _ in range(n):
        triplet_make()
    out = []
    while (assignment := assignment_next(listener)) is not None:
        out.append(judgment_submit(listener, Answer(assignment.id, "A", 13000, [5000] * 3)))
    return [r.judgment for r in out]


def test_imported_judgments_count_but_train_only_when_the_setting_lets_them(
    songs, survey, settings
):
    site = site_answers()
    run(survey, "--format", "bliss")
    imported = set(Judgment.objects.exclude(source=SITE_SOURCE).values_list("id", flat=True))
    assert set(counted_judgments().values_list("id", flat=True)) == imported | {j.id for j in site}
    assert len(list(judgment_export_rows())) == 6  # imported rows have no listening times

    def voted(votes: dict) -> int:
        return sum(len(v) for _, v, _ in votes.values())

    settings.ODDBALL_TRAIN_IMPORTED = False
    assert voted(triplet_votes(Split.TRAIN)) == voted(judged_votes("train", "random")) == 3
    settings.ODDBALL_TRAIN_IMPORTED = True
    assert voted(triplet_votes(Split.TRAIN)) == voted(judged_votes("train", "random")) == 6


def test_quality_control_leaves_imported_listeners_and_judgments_alone(settings, tmp_path):
    settings.ODDBALL_QUALITY_MIN_ANSWERS = 3
    site = site_answers()
    for song in ("q1", "q2", "q3"):
        song_track(song)
    # Twelve answers in a row for the first song: a site listener doing this is flagged.
    survey = write(tmp_path / "s.csv", [BLISS_HEADER] + ["q1,q2,q3,q1,same"] * 12)
    run(survey, "--format", "bliss")

    report = quality_update()

    assert report.listeners == 1
    assert Listener.objects.get(id=site[0].listener_id).quality_at is not None
    imported = Listener.objects.get(source="bliss")
    assert (imported.review, imported.reliability, imported.signals) == ("ok", 1.0, {})
    assert imported.quality_at is None
    assert set(Judgment.objects.filter(source="bliss").values_list("status", "weight")) == {
        ("accepted", 1.0)
    }
    assert not AuditEntry.objects.filter(target_type="listener", target_id=imported.id).exists()
