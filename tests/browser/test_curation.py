"""A curator, in real Chromium, excludes a flagged listener and restores them: the audit log
records both actions and the dataset export drops and regains the listener's judgments."""

import csv
from datetime import timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import Assignment, AuditEntry, Judgment, Listener, SnippetReport
from annotation.roles import role_group
from embeddings.models import Snippet, Track
from tests.factories import listener_make

PASSWORD = "a-long-enough-passphrase"


def answers_give(listener: Listener, triplets: list, odd_slot: int) -> None:
    now = timezone.now()
    for triplet in triplets:
        assignment = Assignment.objects.create(
            triplet=triplet,
            listener=listener,
            order="bca",
            expires_at=now + timedelta(minutes=15),
            answered_at=now,
        )
        Judgment.objects.create(
            assignment=assignment,
            triplet=triplet,
            listener=listener,
            odd_slot=odd_slot,
            response_ms=700,
            listen_ms=[200, 150, 100],
        )


def exported_listeners(out: Path) -> set[str]:
    call_command("export_dataset", "--out", str(out))
    with (out / "judgments.csv").open(newline="", encoding="utf-8") as f:
        return {row["listener"] for row in csv.DictReader(f)}


def curator_sign_in(page: object, site_url: str) -> None:
    curator = get_user_model().objects.create_user("curator", password=PASSWORD)
    curator.groups.add(role_group("curator"))
    page.goto(site_url + "/accounts/login/")
    page.get_by_label("Username").fill("curator")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Curate").click()
    expect(page).to_have_url(site_url + "/curate/")


def test_a_curator_excludes_a_flagged_listener_and_restores_them(
    site_url, listening_data, new_page, shoot, axe_violations, tmp_path
):
    random_triplets = [t for t in listening_data.triplets if t.kind == "random"]
    clicker, honest = listener_make(), listener_make()
    answers_give(clicker, random_triplets[:6], odd_slot=0)
    answers_give(honest, random_triplets[:4], odd_slot=1)
    Listener.objects.filter(id=clicker.id).update(
        review=Listener.Review.OK,  # quality control flags them below, as it would
        reliability=0.18,
        signals={"gold_accuracy": 0.0, "same_position_share": 1.0, "median_listen_ms": 150},
        flag_reasons=["always the same position", "answers before listening"],
    )
    Listener.objects.filter(id=clicker.id).update(review=Listener.Review.FLAGGED)
    # Flagged work is held out already; a curator's decision settles it.
    assert exported_listeners(tmp_path / "flagged") == {honest.pseudonym}

    page = new_page()
    curator_sign_in(page, site_url)
    queue = page.locator("#flagged-listeners + form")
    expect(queue.get_by_role("link", name=clicker.pseudonym)).to_be_visible()
    expect(queue).to_contain_text("always the same position")
    shoot(page, "curation-01-overview")
    assert not axe_violations(page)

    queue.get_by_role("link", name=clicker.pseudonym).click()
    expect(page.locator("h1")).to_have_text(f"Listener {clicker.pseudonym}")
    expect(page.locator(".signals-table")).to_contain_text("same_position_share")
    # The sample of answers is playable: the first snippet loads from the media server.
    players = page.locator(".answers-table audio")
    expect(players).to_have_count(18)
    players.first.evaluate("(a) => a.play()")
    page.wait_for_function(
        "document.querySelector('.answers-table audio').currentTime > 0.3", timeout=10_000
    )
    players.first.evaluate("(a) => a.pause()")
    shoot(page, "curation-02-listener")
    assert not axe_violations(page)

    decide = page.locator("form.decide")
    decide.get_by_label("Reason (kept in the audit log)").fill(
        "Always picks A, before hearing anything."
    )
    decide.get_by_role("button", name="Exclude this listener's work").click()
    expect(page.locator(".messages")).to_contain_text("Excluded 1 listener.")
    expect(page.locator("#listener-review")).to_have_text("Excluded by a curator")
    entries = page.locator(".audit-entry")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("listener_exclude")
    expect(entries.first).to_contain_text("Always picks A, before hearing anything.")
    expect(entries.first).to_contain_text("curator")
    shoot(page, "curation-03-excluded")
    assert exported_listeners(tmp_path / "excluded") == {honest.pseudonym}

    decide.get_by_label("Reason (kept in the audit log)").fill("Second opinion: a real person.")
    decide.get_by_role("button", name="Restore this listener's work").click()
    expect(page.locator(".messages")).to_contain_text("Restored 1 listener.")
    expect(page.locator("#listener-review")).to_have_text("Restored by a curator")
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("listener_restore")
    expect(entries.first).to_contain_text("Second opinion: a real person.")
    expect(entries.nth(1)).to_contain_text("listener_exclude")
    shoot(page, "curation-04-restored")
    assert exported_listeners(tmp_path / "restored") == {clicker.pseudonym, honest.pseudonym}

    # The full audit log shows both, newest first.
    page.get_by_role("link", name="Audit log").first.click()
    expect(page.locator(".audit-entry")).to_have_count(2)
    shoot(page, "curation-05-audit-log")
    assert not axe_violations(page)
    actions = AuditEntry.objects.filter(target_type="listener", target_id=clicker.id)
    assert list(actions.values_list("action", flat=True)) == [
        "listener_restore",
        "listener_exclude",
    ]
    assert Judgment.objects.filter(listener=clicker).count() == 6
    assert not page.errors


def test_a_curator_hides_a_reported_snippet_approves_a_track_and_sees_a_bad_upload_refused(
    site_url, listening_data, new_page, shoot, axe_violations
):
    snippet = listening_data.snippets[0]
    SnippetReport.objects.create(
        snippet=snippet, listener=listener_make(), reason="offensive", note="a slur at 0:05"
    )
    pending = listening_data.tracks[-1]
    Track.objects.filter(id=pending.id).update(status=Track.Status.PENDING)
    page = new_page()
    curator_sign_in(page, site_url)

    page.locator(".curate-nav").get_by_role("link", name="Reports").click()
    reports = page.locator("form.bulk")
    expect(reports).to_contain_text("a slur at 0:05")
    expect(reports.locator("audio")).to_have_count(1)
    shoot(page, "curation-06-reports")
    assert not axe_violations(page)
    reports.get_by_label("It is offensive").check()
    reports.get_by_label("Reason (kept in the audit log)").fill("Offensive lyrics.")
    reports.get_by_role("button", name="Hide their snippets and resolve").click()
    expect(page.locator(".messages")).to_contain_text("Hid the snippet of 1 report.")
    expect(page.locator("main")).to_contain_text("None.")
    assert Snippet.objects.get(id=snippet.id).hidden

    page.locator(".curate-nav").get_by_role("link", name="Tracks awaiting approval").click()
    tracks = page.locator("form.bulk")
    tracks.get_by_label(f"Select {pending.title}").check()
    shoot(page, "curation-07-pending-tracks")
    assert not axe_violations(page)
    tracks.get_by_role("button", name="Approve selected").click()
    expect(page.locator(".messages")).to_contain_text("Approved 1 track.")
    assert Track.objects.get(id=pending.id).status == Track.Status.APPROVED

    page.locator(".curate-nav").get_by_role("link", name="Upload").click()
    page.get_by_label("Audio").set_input_files(
        {"name": "broken.ogg", "mimeType": "audio/ogg", "buffer": b"OggS" + b"\x00" * 4000}
    )
    page.get_by_label("License").fill("CC0-1.0")
    page.get_by_label("Attribution").fill("Nobody")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-failure")).to_contain_text("broken.ogg was not imported:")
    shoot(page, "curation-08-upload-refused")
    assert not axe_violations(page)
    assert Track.objects.count() == len(listening_data.tracks)
    actions = AuditEntry.objects.order_by("id").values_list("action", flat=True)
    assert list(actions) == ["snippet_hide", "report_resolve", "track_approve"]
    # The refused upload is answered 400 on purpose, like any form with errors.
    refused = f"status of 400 (Bad Request) ({site_url}/curate/upload/)"
    assert [e for e in page.errors if not e.endswith(refused)] == []
