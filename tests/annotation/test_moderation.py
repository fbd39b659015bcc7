"""Curator services: each changes a state, never deletes, and leaves one audit entry."""

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from annotation import moderation
from annotation.models import (
    Assignment,
    AuditEntry,
    Judgment,
    Listener,
    SnippetReport,
    TransitionTask,
    Triplet,
)
from annotation.roles import role_group
from annotation.selectors import counted_judgments
from annotation.services import assignment_next, triplets_make
from embeddings.models import Clip, Snippet, Track
from embeddings.services import TrackMeta, track_import
from tests.factories import listener_make, track_make, triplet_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator():
    user = get_user_model().objects.create_user("cura", password="x")
    user.groups.add(role_group("curator"))
    return user


def judgment_make(listener: Listener, triplet: Triplet, odd_slot: int = 0, **fields) -> Judgment:
    assignment = Assignment.objects.create(
        triplet=triplet,
        listener=listener,
        order="abc",
        expires_at=timezone.now() + timedelta(minutes=5),
        answered_at=timezone.now(),
    )
    return Judgment.objects.create(
        assignment=assignment,
        triplet=triplet,
        listener=listener,
        odd_slot=odd_slot,
        response_ms=9000,
        listen_ms=[5000, 5000, 5000],
        **fields,
    )


def exported_listeners(out: Path) -> list[str]:
    call_command("export_dataset", "--out", str(out))
    with (out / "judgments.csv").open(newline="", encoding="utf-8") as f:
        return [row["listener"] for row in csv.DictReader(f)]


def test_excluding_a_listener_drops_their_rows_from_the_export_and_restoring_brings_them_back(
    curator, tmp_path
):
    triplet = triplet_make()
    spammer, honest = listener_make(), listener_make()
    judgment_make(spammer, triplet)
    judgment_make(honest, triplet, odd_slot=1)
    assert sorted(exported_listeners(tmp_path / "1")) == sorted(
        [spammer.pseudonym, honest.pseudonym]
    )

    moderation.listener_exclude(spammer, curator, "always answers A")
    assert exported_listeners(tmp_path / "2") == [honest.pseudonym]

    listener = moderation.listener_restore(spammer, curator, "checked by ear: fine")
    assert listener.review == Listener.Review.TRUSTED
    assert sorted(exported_listeners(tmp_path / "3")) == sorted(
        [spammer.pseudonym, honest.pseudonym]
    )
    entries = AuditEntry.objects.filter(target_type="listener", target_id=spammer.id)
    assert [(e.action, e.reason, e.actor) for e in entries.order_by("id")] == [
        ("listener_exclude", "always answers A", curator),
        ("listener_restore", "checked by ear: fine", curator),
    ]
    assert entries.order_by("id").first().data == {
        "field": "review",
        "from": "ok",
        "to": "excluded",
    }
    assert Judgment.objects.count() == 2  # nothing was deleted


def test_excluding_needs_a_reason_and_changes_nothing_without_one(curator):
    listener = listener_make()
    with pytest.raises(moderation.ModerationError, match="reason"):
        moderation.listener_exclude(listener, curator, "   ")
    listener.refresh_from_db()
    assert listener.review == Listener.Review.OK
    assert not AuditEntry.objects.exists()


def test_bulk_exclusion_writes_one_entry_per_listener_and_skips_those_already_excluded(curator):
    listeners = [listener_make() for _ in range(3)]
    Listener.objects.filter(id=listeners[0].id).update(review=Listener.Review.EXCLUDED)
    changed = moderation.listeners_exclude([x.id for x in listeners], curator, "bot farm")
    assert sorted(changed) == sorted(x.id for x in listeners[1:])
    assert set(Listener.objects.values_list("review", flat=True)) == {"excluded"}
    assert AuditEntry.objects.filter(action="listener_exclude").count() == 2


def test_rejecting_and_accepting_judgments_decides_whether_they_count(curator):
    listener = listener_make()
    flagged = [
        judgment_make(listener, triplet_make(), status=Judgment.Status.FLAGGED) for _ in range(3)
    ]
    assert not counted_judgments().exists()
    ids = [j.id for j in flagged]
    assert moderation.judgments_accept(ids[:2], curator, "") == ids[:2]
    judgment = moderation.judgment_reject(flagged[2], curator, "answered in 200 ms")
    assert judgment.status == Judgment.Status.REJECTED
    assert sorted(counted_judgments().values_list("id", flat=True)) == ids[:2]
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "target_id"))
    assert actions == [
        ("judgment_accept", ids[0]),
        ("judgment_accept", ids[1]),
        ("judgment_reject", ids[2]),
    ]
    assert Judgment.objects.count() == 3


def test_a_hidden_snippet_is_no_longer_served_and_comes_back_when_shown(curator):
    triplet = triplet_make()
    listener = listener_make()
    snippet = triplet.snippet_a
    moderation.snippet_hide(snippet, curator, "offensive lyrics")
    triplet.refresh_from_db()
    assert not triplet.active
    assert assignment_next(listener) is None

    moderation.snippet_show(snippet, curator, "misheard")
    triplet.refresh_from_db()
    assert triplet.active
    assert assignment_next(listener).triplet == triplet
    assert list(
        AuditEntry.objects.filter(target_type="snippet").order_by("id").values_list("action")
    ) == [("snippet_hide",), ("snippet_show",)]
    assert Snippet.objects.filter(id=snippet.id).exists()


def test_hiding_a_track_stops_its_triplets_and_transition_tasks(curator):
    triplet = triplet_make()
    track = triplet.snippet_b.track
    other = triplet.snippet_c.track
    clip_x = Clip.objects.create(track=track, position=0, start_s=0, duration_s=25, edge_s=4)
    clip_y = Clip.objects.create(track=other, position=0, start_s=0, duration_s=25, edge_s=4)
    task = TransitionTask.objects.create(
        clip_x=clip_x, clip_y=clip_y, style="hard_cut", kind="random", shares={}, split="train"
    )
    moderation.track_hide(track, curator, "not licensed after all")
    triplet.refresh_from_db()
    task.refresh_from_db()
    assert not triplet.active and not task.active

    moderation.track_show(track, curator, "licence found")
    triplet.refresh_from_db()
    task.refresh_from_db()
    assert triplet.active and task.active


def test_a_pending_track_is_not_used_until_approved_and_a_rejected_one_never(curator):
    tracks = [track_make(snippets=2, status=Track.Status.PENDING) for _ in range(3)]
    assert triplets_make(10, seed=1) == 0
    changed = moderation.tracks_approve([t.id for t in tracks], curator, "")
    assert len(changed) == 3
    assert triplets_make(10, seed=1) > 0

    moderation.track_reject(tracks[0], curator, "duplicate of another upload")
    using_rejected = Triplet.objects.filter(snippet_a__track=tracks[0]) | Triplet.objects.filter(
        snippet_b__track=tracks[0]
    )
    assert using_rejected.exists()
    assert not using_rejected.filter(active=True).exists()
    assert AuditEntry.objects.filter(action="track_approve").count() == 3
    assert AuditEntry.objects.get(action="track_reject").data["from"] == "approved"


def test_resolving_reports_records_the_resolution_once(curator):
    triplet = triplet_make()
    listener = listener_make()
    reports = [
        SnippetReport.objects.create(snippet=triplet.snippet_a, listener=listener, reason=reason)
        for reason in ("silent", "broken")
    ]
    ids = [r.id for r in reports]
    assert moderation.reports_resolve(ids, curator, "plays fine here") == ids
    assert moderation.reports_resolve(ids, curator, "again") == []
    report = SnippetReport.objects.get(id=ids[0])
    assert report.resolved_at is not None and report.resolution == "plays fine here"
    assert AuditEntry.objects.filter(action="report_resolve").count() == 2


def test_import_audio_with_require_approval_imports_pending_tracks(generated_music):
    path = sorted(generated_music.glob("*.flac"))[0]
    call_command("import_audio", str(path), "--require-approval")
    assert list(Track.objects.values_list("status", flat=True)) == ["pending"]


def test_the_approval_setting_makes_imports_pending_by_default(generated_music, settings):
    settings.ODDBALL_REQUIRE_APPROVAL = True
    paths = sorted(generated_music.glob("*.flac"))[:2]
    assert track_import(paths[0]).status == "imported"
    assert track_import(paths[1], status=Track.Status.APPROVED).status == "imported"
    assert list(Track.objects.order_by("id").values_list("status", flat=True)) == [
        "pending",
        "approved",
    ]


def test_an_upload_of_a_broken_file_creates_nothing_and_says_why(curator):
    upload = SimpleUploadedFile("noise.ogg", b"this is not an ogg file" * 100)
    outcome = moderation.track_upload(upload, TrackMeta(license="CC0-1.0"), curator, pending=True)
    assert outcome.status == "failed"
    assert outcome.reason
    assert outcome.path == "noise.ogg"
    assert not Track.objects.exists() and not AuditEntry.objects.exists()


def test_hiding_reported_snippets_resolves_the_reports_and_stops_their_triplets(curator):
    triplet = triplet_make()
    listener = listener_make()
    report = SnippetReport.objects.create(
        snippet=triplet.snippet_c, listener=listener, reason="offensive"
    )
    assert moderation.reports_hide_snippets([report.id], curator, "slur") == [report.id]
    report.refresh_from_db()
    triplet.refresh_from_db()
    assert report.resolution == "snippet hidden: slur"
    assert Snippet.objects.get(id=triplet.snippet_c_id).hidden
    assert not triplet.active
    actions = AuditEntry.objects.order_by("id").values_list("action", "target_id")
    assert list(actions) == [("snippet_hide", triplet.snippet_c_id), ("report_resolve", report.id)]


def test_an_assignment_already_handed_out_is_not_served_again_once_its_snippet_is_hidden(
    curator,
):
    triplet = triplet_make()
    listener = listener_make()
    held = assignment_next(listener)
    assert held.triplet == triplet
    moderation.snippet_hide(triplet.snippet_a, curator, "offensive lyrics")
    assert assignment_next(listener) is None  # the open assignment is not handed back
    moderation.snippet_show(triplet.snippet_a, curator, "misheard")
    assert assignment_next(listener).id == held.id
