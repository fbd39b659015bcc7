"""The curator pages: who may see them, the action endpoint, the upload page."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotation.models import Assignment, AuditEntry, Judgment, Listener, SnippetReport
from annotation.roles import role_group
from embeddings.models import Track
from tests.factories import listener_make, track_make, triplet_make

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def data() -> dict:
    """A flagged listener with an answer, a flagged judgment, a report and a pending track."""
    triplet = triplet_make()
    listener = listener_make()
    Listener.objects.filter(id=listener.id).update(
        review=Listener.Review.FLAGGED,
        reliability=0.21,
        signals={"gold_accuracy": 0.2, "same_position": 0.95},
        flag_reasons=["always picks A"],
    )
    assignment = Assignment.objects.create(
        triplet=triplet,
        listener=listener,
        order="bca",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    judgment = Judgment.objects.create(
        assignment=assignment,
        triplet=triplet,
        listener=listener,
        odd_slot=1,
        response_ms=900,
        listen_ms=[300, 300, 300],
        status=Judgment.Status.FLAGGED,
        flag_reason="answered before listening",
    )
    report = SnippetReport.objects.create(
        snippet=triplet.snippet_a, listener=listener, reason="offensive", note="slur at 0:05"
    )
    track = track_make(status=Track.Status.PENDING)
    return {"listener": listener, "judgment": judgment, "report": report, "track": track}


def pages(data: dict) -> list[str]:
    return [
        reverse("curate"),
        reverse("curate-listeners"),
        reverse("curate-listeners") + "?review=all",
        reverse("curate-listener", args=[data["listener"].id]),
        reverse("curate-judgments"),
        reverse("curate-reports"),
        reverse("curate-tracks"),
        reverse("curate-track", args=[data["track"].id]),
        reverse("curate-audit"),
        reverse("curate-audit") + "?type=listener&id=1",
        reverse("curate-upload"),
    ]


def test_curators_and_admins_see_every_curation_page_and_staff_alone_does_not(client, data):
    admin = User.objects.create_superuser("admin", password="x")
    member = User.objects.create_user("member", password="x")
    member.groups.add(role_group("curator"))
    for user in (admin, member):
        client.force_login(user)
        for url in pages(data):
            response = client.get(url)
            assert response.status_code == 200, url
    client.force_login(member)
    assert b'href="/curate/"' in client.get(reverse("welcome")).content
    client.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    assert client.get(reverse("curate")).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in_and_listeners_are_refused(client, data):
    for url in pages(data):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login")), url
    client.force_login(User.objects.create_user("listener", password="x"))
    for url in pages(data):
        assert client.get(url).status_code == 403, url
    response = client.post(
        reverse("curate-act"),
        {"action": "listener_exclude", "ids": [data["listener"].id], "reason": "x"},
    )
    assert response.status_code == 403
    assert Listener.objects.get(id=data["listener"].id).review == Listener.Review.FLAGGED
    assert b'href="/curate/"' not in client.get(reverse("welcome")).content


def test_the_listener_page_shows_signals_answers_in_the_order_heard_and_the_audit_log(
    admin_client, data
):
    listener = data["listener"]
    url = reverse("curate-listener", args=[listener.id])
    page = admin_client.get(url).content.decode()
    assert "gold_accuracy" in page and "always picks A" in page
    assert page.count("<audio") == 3
    assert "answered before listening" in page

    response = admin_client.post(
        reverse("curate-act"),
        {"action": "listener_exclude", "ids": [listener.id], "reason": "clicks A", "next": url},
    )
    assert response.status_code == 302 and response["Location"] == url
    page = admin_client.get(url).content.decode()
    assert "Excluded 1 listener." in page
    assert "listener_exclude" in page and "clicks A" in page


def test_a_bulk_action_without_a_reason_is_refused_with_a_message(admin_client, data):
    response = admin_client.post(
        reverse("curate-act"),
        {"action": "judgment_reject", "ids": [data["judgment"].id], "reason": ""},
        follow=True,
    )
    assert "Give a reason" in response.content.decode()
    assert Judgment.objects.get(id=data["judgment"].id).status == Judgment.Status.FLAGGED
    assert not AuditEntry.objects.exists()


def test_checked_reports_and_tracks_are_handled_in_one_post_each(admin_client, data):
    admin_client.post(
        reverse("curate-act"),
        {"action": "report_resolve", "ids": [data["report"].id], "reason": "snippet hidden"},
    )
    admin_client.post(reverse("curate-act"), {"action": "track_approve", "ids": [data["track"].id]})
    assert SnippetReport.objects.get(id=data["report"].id).resolution == "snippet hidden"
    assert Track.objects.get(id=data["track"].id).status == Track.Status.APPROVED
    assert sorted(AuditEntry.objects.values_list("action", flat=True)) == [
        "report_resolve",
        "track_approve",
    ]


def test_the_upload_page_reports_a_broken_file_with_its_reason(admin_client):
    broken = SimpleUploadedFile("broken.ogg", b"\x00not audio at all" * 64)
    response = admin_client.post(
        reverse("curate-upload"),
        {"audio": broken, "license": "CC0-1.0", "attribution": "Someone"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "broken.ogg was not imported:" in page
    assert not Track.objects.exists()

    text = SimpleUploadedFile("notes.txt", b"hello")
    response = admin_client.post(
        reverse("curate-upload"), {"audio": text, "license": "CC0-1.0", "attribution": "x"}
    )
    assert response.status_code == 400
    assert "unsupported file type .txt" in response.content.decode()


def test_an_uploaded_track_waits_for_approval_when_approval_is_required(
    admin_client, generated_music, settings
):
    settings.ODDBALL_REQUIRE_APPROVAL = True
    path = sorted(generated_music.glob("*.flac"))[0]
    upload = SimpleUploadedFile(path.name, path.read_bytes())
    response = admin_client.post(
        reverse("curate-upload"),
        {"audio": upload, "license": "CC-BY-4.0", "attribution": "Generated", "title": "Mine"},
    )
    track = Track.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("curate-track", args=[track.id])
    assert (track.title, track.status, track.license) == ("Mine", "pending", "CC-BY-4.0")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.target_id) == ("track_upload", track.id)
    page = admin_client.get(reverse("curate-tracks")).content.decode()
    assert "Mine" in page


def _answers_add(listener: Listener, n: int) -> None:
    for _ in range(n):
        triplet = triplet_make()
        assignment = Assignment.objects.create(
            triplet=triplet,
            listener=listener,
            order="cab",
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        Judgment.objects.create(
            assignment=assignment,
            triplet=triplet,
            listener=listener,
            odd_slot=2,
            response_ms=900,
            listen_ms=[300, 300, 300],
            status=Judgment.Status.FLAGGED,
        )
        SnippetReport.objects.create(snippet=triplet.snippet_b, listener=listener, reason="silent")
        track_make(status=Track.Status.PENDING)


def test_the_curation_pages_make_as_many_queries_for_long_queues_as_for_short_ones(
    admin_client, data
):
    listener = data["listener"]
    urls = [
        reverse("curate"),
        reverse("curate-listener", args=[listener.id]),
        reverse("curate-judgments"),
        reverse("curate-reports"),
        reverse("curate-tracks"),
    ]
    admin_client.get(urls[0])  # the session and user are cached from here on

    def counts() -> list[int]:
        out = []
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert admin_client.get(url).status_code == 200
            out.append(len(queries))
        return out

    short = counts()
    assert max(short) <= 12, short  # the overview: counts, three queues, the log
    _answers_add(listener, 6)
    assert counts() == short


def test_odd_ids_are_ignored_rather_than_a_server_error(admin_client, data):
    response = admin_client.post(
        reverse("curate-act"),
        {"action": "listener_exclude", "ids": ["²", "9" * 30, "-1", "x"], "reason": "r"},
        follow=True,
    )
    assert "Tick at least one listener first." in response.content.decode()
    assert admin_client.get(reverse("curate-audit") + "?id=" + "9" * 30).status_code == 200
    response = admin_client.post(reverse("curate-act"), {"action": "drop_table", "ids": ["1"]})
    assert response.status_code == 302
    assert not AuditEntry.objects.exists()
