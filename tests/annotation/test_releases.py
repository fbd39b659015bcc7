"""Dataset releases: what a cut holds and leaves out, its files, numbers and checksums."""

import hashlib
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from annotation import release_files
from annotation.models import Assignment, AuditEntry, DatasetRelease, Judgment, Listener, Triplet
from annotation.releases import ceiling_share, release_cut, release_pseudonym, release_start
from embeddings.models import Track
from tests.factories import (
    assignment_make,
    listener_make,
    track_make,
    transition_assignment_make,
    user_make,
)
from training.metrics import human_ceiling

pytestmark = pytest.mark.django_db


def track_with(licence: str) -> Track:
    track = track_make(snippets=1)
    Track.objects.filter(id=track.id).update(license=licence)
    return track


def triplet_of(*licences: str, kind: str = "random") -> Triplet:
    """A triplet over three new tracks with these licences (CC0 by default)."""
    licences = licences or ("CC0-1.0",) * 3
    snippets = [track_with(lic).snippets.get() for lic in licences]
    return Triplet.objects.create(
        snippet_a=snippets[0],
        snippet_b=snippets[1],
        snippet_c=snippets[2],
        split="train",
        kind=kind,
        gold_odd=0 if kind == "gold" else None,
    )


def vote(triplet: Triplet, listener: Listener | None = None, odd: int | None = 0, **fields):
    """A counted judgment (through an assignment) unless `fields` say otherwise."""
    listener = listener or listener_make()
    assignment = assignment_make(listener, triplet)
    return Judgment.objects.create(
        assignment=assignment,
        triplet=triplet,
        listener=listener,
        odd_slot=odd,
        response_ms=9000,
        listen_ms=[5000, 5000, 5000],
        **fields,
    )


def imported_vote(triplet: Triplet, source: str, row: str) -> Judgment:
    listener = listener_make(source=source, source_id=f"person-{row}")
    return Judgment.objects.create(
        triplet=triplet, listener=listener, odd_slot=1, source=source, source_id=row
    )


def folder(release: DatasetRelease) -> Path:
    return Path(settings.MEDIA_ROOT) / release.folder


def votes_of(release: DatasetRelease) -> pd.DataFrame:
    return pd.read_parquet(folder(release) / "votes.parquet")


def test_a_release_holds_every_counted_vote_with_the_documented_columns():
    triplet = triplet_of()
    for odd in (0, 0, 1, None):
        vote(triplet, odd=odd)
    release = release_cut(user_make("curator"), {})
    assert release.status == DatasetRelease.Status.READY, release.error
    votes = votes_of(release)
    assert list(votes.columns) == [c.name for c in release_files.VOTE_COLUMNS]
    assert sorted(votes["answer"]) == ["a", "a", "b", "none"]
    assert set(votes["triplet_id"]) == {triplet.id}
    triplets = pd.read_parquet(folder(release) / "triplets.parquet")
    assert list(triplets.columns) == [c.name for c in release_files.TRIPLET_COLUMNS]
    (row,) = triplets.to_dict("records")
    assert (row["votes_a"], row["votes_b"], row["votes_c"], row["votes_none"]) == (2, 1, 0, 1)
    assert (row["n_votes"], row["majority"]) == (3, "a")
    assert row["agreement"] == pytest.approx(2 / 3)
    assert release.counts["votes"] == 4 and release.counts["triplets"] == 1
    assert release.finished_at is not None


def test_csv_and_json_lines_hold_the_same_rows_as_the_parquet():
    triplet = triplet_of()
    vote(triplet, odd=2)
    vote(triplet, odd=None)
    release = release_cut(None, {})
    parquet = votes_of(release)
    csv = pd.read_csv(folder(release) / "votes.csv")
    jsonl = pd.read_json(folder(release) / "votes.jsonl", lines=True)
    for other in (csv, jsonl):
        assert list(other.columns) == list(parquet.columns)
        assert list(other["listener"]) == list(parquet["listener"])
        assert list(other["snippet_c"]) == list(parquet["snippet_c"])


def test_flagged_excluded_rejected_practice_and_repeated_work_never_appears():
    triplet = triplet_of()
    kept = vote(triplet)
    vote(triplet, status=Judgment.Status.FLAGGED)
    vote(triplet, status=Judgment.Status.REJECTED)
    vote(triplet, practice=True)
    vote(triplet, listener_make(review=Listener.Review.FLAGGED))
    vote(triplet, listener_make(review=Listener.Review.EXCLUDED))
    first = vote(triplet)
    repeat = Assignment.objects.create(
        triplet=triplet,
        listener=first.listener,
        order="bca",
        repeat_of=first.assignment,
        expires_at=first.assignment.expires_at,
    )
    Judgment.objects.create(assignment=repeat, triplet=triplet, listener=first.listener, odd_slot=2)
    release = release_cut(None, {"min_votes": 0})
    votes = votes_of(release)
    salt = release.salt
    assert sorted(votes["listener"]) == sorted(
        release_pseudonym(salt, j.listener_id) for j in (kept, first)
    )
    assert list(votes["answer"]) == ["a", "a"]


def test_min_votes_keeps_only_triplets_with_enough_votes_naming_a_slot():
    busy, quiet, undecided = triplet_of(), triplet_of(), triplet_of()
    for _ in range(3):
        vote(busy)
    vote(quiet)
    for _ in range(3):
        vote(undecided, odd=None)
    release = release_cut(None, {"min_votes": 3})
    assert set(votes_of(release)["triplet_id"]) == {busy.id}
    everything = release_cut(None, {"min_votes": 0})
    assert set(votes_of(everything)["triplet_id"]) == {busy.id, quiet.id, undecided.id}


def test_min_reliability_leaves_out_less_reliable_listeners():
    triplet = triplet_of()
    steady = listener_make(reliability=0.9)
    shaky = listener_make(reliability=0.3)
    vote(triplet, steady)
    vote(triplet, shaky)
    release = release_cut(None, {"min_reliability": 0.5})
    assert list(votes_of(release)["listener"]) == [release_pseudonym(release.salt, steady.id)]


def test_sources_choose_between_site_votes_and_imported_sets():
    triplet = triplet_of()
    vote(triplet)
    imported_vote(triplet, "bliss", "r1")
    imported_vote(triplet, "tagatune", "r2")
    site = votes_of(release_cut(None, {"sources": ["oddball"]}))
    assert list(site["source"]) == ["oddball"]
    bliss = votes_of(release_cut(None, {"sources": ["bliss"]}))
    assert list(bliss["source"]) == ["bliss"] and list(bliss["source_id"]) == ["r1"]
    assert bliss["response_ms"].isna().all() and bliss["listen_ms_a"].isna().all()
    both = votes_of(release_cut(None, {"sources": ["bliss", "oddball"]}))
    assert sorted(both["source"]) == ["bliss", "oddball"]


def test_a_triplet_is_in_only_if_all_its_tracks_pass_the_licence_filter():
    open_one = triplet_of("CC-BY-3.0 (Kevin MacLeod, FMA)", "CC0-1.0", "CC0-1.0")
    mixed = triplet_of("CC0-1.0", "GPL-2+ (Wesnoth; tag license=GPL)", "CC0-1.0")
    vote(open_one)
    vote(mixed)
    task_open = transition_assignment_make(listener_make()).task
    release = release_cut(None, {"licences": ["CC0-1.0", "CC-BY-3.0"]})
    assert set(votes_of(release)["triplet_id"]) == {open_one.id}
    tracks = pd.read_csv(folder(release) / "tracks.csv")
    assert set(tracks["track_id"]) == {s.track_id for s in _snippets(open_one)}
    assert "GPL" not in " ".join(tracks["licence"])
    assert task_open  # no ratings here; ratings are filtered in test_ratings_follow_filters


def test_ratings_follow_the_reliability_and_licence_filters():
    from annotation.models import TransitionRating

    def rate(listener: Listener, licence: str) -> TransitionRating:
        assignment = transition_assignment_make(listener)
        task = assignment.task
        Track.objects.filter(id__in=[task.clip_x.track_id, task.clip_y.track_id]).update(
            license=licence
        )
        return TransitionRating.objects.create(
            assignment=assignment,
            task=task,
            listener=listener,
            rating=4,
            response_ms=1,
            listen_ms=1,
        )

    kept = rate(listener_make(reliability=0.9), "CC0-1.0")
    rate(listener_make(reliability=0.1), "CC0-1.0")
    rate(listener_make(reliability=0.9), "GPL-3+")
    release = release_cut(None, {"min_reliability": 0.5, "licences": ["CC0-1.0"]})
    ratings = pd.read_parquet(folder(release) / "ratings.parquet")
    assert list(ratings.columns) == [c.name for c in release_files.RATING_COLUMNS]
    assert list(ratings["task_id"]) == [kept.task_id]
    only_imported = release_cut(None, {"sources": ["bliss"]})
    assert only_imported.counts["ratings"] == 0


def _snippets(triplet: Triplet) -> list:
    return [triplet.snippet_a, triplet.snippet_b, triplet.snippet_c]


def test_numbers_are_consecutive_and_a_release_never_changes():
    triplet = triplet_of()
    vote(triplet)
    first = release_cut(None, {})
    before = {p.name: p.read_bytes() for p in folder(first).iterdir()}
    vote(triplet)
    second = release_cut(None, {})
    assert (first.number, second.number) == (1, 2)
    assert {p.name: p.read_bytes() for p in folder(first).iterdir()} == before
    assert len(votes_of(first)) == 1 and len(votes_of(second)) == 2


def test_a_listener_has_different_pseudonyms_in_two_releases():
    listener = listener_make()
    vote(triplet_of(), listener)
    one, two = release_cut(None, {}), release_cut(None, {})
    assert votes_of(one)["listener"][0] != votes_of(two)["listener"][0]
    assert re.fullmatch(r"L[0-9a-f]{12}", votes_of(one)["listener"][0])
    assert listener.pseudonym not in set(votes_of(one)["listener"])


def test_the_checksums_match_the_files_and_the_recorded_list():
    vote(triplet_of())
    release = release_cut(None, {})
    root = folder(release)
    recorded = {f["name"]: f for f in release.files}
    assert {"votes.parquet", "votes.csv", "votes.jsonl", "triplets.parquet", "README.md"} <= set(
        recorded
    )
    sums = (root / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(recorded) - 1  # every file but SHA256SUMS itself
    for line in sums:
        digest, name = line.split("  ")
        data = (root / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest == recorded[name]["sha256"]
        assert recorded[name]["bytes"] == len(data)


def test_the_pandas_snippet_in_the_datasheet_runs_in_the_release_folder(monkeypatch):
    vote(triplet_of(), odd=1)
    release = release_cut(None, {})
    readme = (folder(release) / "README.md").read_text()
    section = readme.split("### pandas", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(folder(release))
    scope: dict = {}
    exec(code, scope)  # the datasheet's own example, run as a reader would
    assert len(scope["votes"]) == 1 and len(scope["voted"]) == 1
    assert list(scope["triplets"]["triplet_id"]) == list(scope["votes"]["triplet_id"])


def test_the_datasheet_reports_filters_counts_ceiling_and_every_licence():
    triplet = triplet_of("CC-BY-SA-4.0", "CC0-1.0", "CC0-1.0")
    for odd in (0, 0, 0, 1):
        vote(triplet, odd=odd)
    release = release_cut(None, {"min_votes": 2}, title="Spring", notes="First cut.")
    readme = (folder(release) / "README.md").read_text()
    assert "# Oddball dataset release 1: Spring" in readme and "First cut." in readme
    assert "At least 2 votes" in readme
    ceiling = human_ceiling([[0, 0, 0, 1]])[0]
    assert "human ceiling" in readme and f"{ceiling:.3f} (over 4 votes)" in readme
    assert "CC-BY-SA-4.0" in readme and "Artist" in readme
    assert 'load_dataset("parquet"' in readme


@pytest.mark.parametrize("votes", [[0, 0, 0], [0, 1, 2], [0, 0, 1, 1], [2, 2, 1, 0, 2]])
def test_the_ceiling_from_counts_matches_training_metrics(votes):
    counts = tuple(votes.count(s) for s in range(3))
    total, n = ceiling_share(counts)
    assert total / n == pytest.approx(human_ceiling([votes])[0]) and n == len(votes)


def test_the_audio_bundle_holds_only_redistributable_tracks():
    free = triplet_of("CC-BY-3.0 (Kevin MacLeod, FMA)", "Public Domain (Mark 1.0)", "CC0-1.0")
    gpl = triplet_of("GPL-2 (Hedgewars)", "CC-BY-NC-4.0", "CC0-1.0")
    for triplet in (free, gpl):
        vote(triplet)
        for snippet in _snippets(triplet):
            path = Path(settings.MEDIA_ROOT) / snippet.audio.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"OggS" + bytes(snippet.id))
    release = release_cut(None, {"audio": True})
    with zipfile.ZipFile(folder(release) / "audio.zip") as bundle:
        names = set(bundle.namelist())
    wanted = {s.id for s in _snippets(free)} | {gpl.snippet_c_id}
    assert names == {f"audio/{pk}.ogg" for pk in wanted} | {"LICENCES.md"}
    assert release.counts["audio_files"] == 4
    snippets = pd.read_csv(folder(release) / "snippets.csv").set_index("snippet_id")
    assert pd.isna(snippets.loc[gpl.snippet_a_id, "audio"])


def test_a_failed_cut_leaves_no_folder_and_says_why(monkeypatch):
    vote(triplet_of())

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("annotation.releases._checksums_write", broken)  # the disk boundary
    release = release_cut(None, {})
    assert release.status == DatasetRelease.Status.FAILED
    assert "disk full" in release.error
    assert list((Path(settings.MEDIA_ROOT) / "releases").iterdir()) == []


def test_starting_a_cut_writes_an_audit_entry_and_rejects_bad_filters():
    from annotation.releases import ReleaseError

    curator = user_make("curator")
    release = release_start(curator, {"min_votes": "2"}, title="T", notes="why")
    entry = AuditEntry.objects.get(target_type="release", target_id=release.id)
    assert (entry.actor, entry.action, entry.reason) == (curator, "release_cut", "why")
    assert entry.data["filters"]["min_votes"] == 2
    for bad in ({"min_votes": -1}, {"min_reliability": 2}, {"colour": "red"}, {"min_votes": "x"}):
        with pytest.raises(ReleaseError):
            release_start(curator, bad)


def test_the_command_cuts_a_release_and_prints_a_json_line(capsys):
    vote(triplet_of())
    call_command("cut_release", "--min-votes", "1", "--title", "cmd", "--sources", "oddball")
    out = capsys.readouterr().out.strip().splitlines()[-1]
    release = DatasetRelease.objects.get()
    assert f'"number": {release.number}' in out and '"status": "ready"' in out
    assert release.filters["sources"] == ["oddball"]


def test_the_task_builds_a_started_release():
    from annotation.tasks import release_cut as task

    vote(triplet_of())
    release = release_start(None, {})
    assert task.delay(release.id).get() == "ready"
    release.refresh_from_db()
    assert release.status == DatasetRelease.Status.READY


def test_the_sweep_sends_again_a_release_left_building_and_leaves_a_fresh_one():
    from annotation.tasks import sweep_releases

    vote(triplet_of())
    lost = release_start(None, {})
    DatasetRelease.objects.filter(id=lost.id).update(
        created_at=timezone.now() - timedelta(minutes=10)
    )
    fresh = release_start(None, {})
    assert sweep_releases() == [lost.id]
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == DatasetRelease.Status.READY
    assert fresh.status == DatasetRelease.Status.BUILDING
