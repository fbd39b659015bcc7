"""The listening API as the page uses it: fetching ahead, practice, skips, late answers,
feedback, reports, recorded fields and the cookie with its CSRF check."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotation.models import SLOTS, Assignment, Judgment, SnippetReport, Triplet
from annotation.selectors import EXPORT_COLUMNS, judgment_export_rows, triplet_votes
from tests.factories import listener_make, triplet_make

pytestmark = pytest.mark.django_db


def auth(listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def serve(client, listener, **query):
    return client.get("/api/v1/assignments/next/", query, headers=auth(listener))


def submit(client, listener, assignment_id: int, choice: str = "A", **extra):
    body = {
        "assignment": assignment_id,
        "answer": choice,
        "response_ms": 9000,
        "listen_ms": [4100, 4200, 5000],
        **extra,
    }
    return client.post(
        "/api/v1/judgments/", body, content_type="application/json", headers=auth(listener)
    )


def gold_triplet(odd: int = 1) -> Triplet:
    triplet = triplet_make()
    Triplet.objects.filter(id=triplet.id).update(kind=Triplet.Kind.GOLD, gold_odd=odd)
    triplet.refresh_from_db()
    return triplet


def test_the_next_triplet_can_be_fetched_while_the_current_one_is_open(client):
    triplet_make()
    triplet_make()
    listener = listener_make()
    first = serve(client, listener).json()["assignment"]
    second = serve(client, listener, after=first).json()["assignment"]
    assert second != first
    # Asking again gives the same two, in the order they were served.
    assert serve(client, listener).json()["assignment"] == first
    assert serve(client, listener, after=first).json()["assignment"] == second


def test_the_practice_round_serves_gold_triplets_and_tells_the_answer(client):
    gold = gold_triplet(odd=1)
    triplet_make()
    listener = listener_make()
    payload = serve(client, listener, practice="true").json()
    assert payload["practice"] is True
    assignment = Assignment.objects.get(id=payload["assignment"])
    assert assignment.triplet_id == gold.id
    odd_position = "ABC"[assignment.order.index(SLOTS[1])]
    response = submit(client, listener, payload["assignment"], odd_position).json()
    assert response["practice_answer"] == odd_position
    assert response["answered"] == 0  # practice answers are not counted as answers given
    judgment = Judgment.objects.get()
    assert judgment.practice
    gold.refresh_from_db()
    assert gold.votes == 0
    assert triplet_votes(kind=Triplet.Kind.GOLD) == {}
    assert list(judgment_export_rows()) == []
    # Nothing gold is left for practice; the real triplet is still there.
    assert serve(client, listener, practice="true").status_code == 204
    assert serve(client, listener).json()["practice"] is False


def test_a_real_gold_answer_does_not_reveal_the_answer(client):
    gold_triplet()
    listener = listener_make()
    assignment = serve(client, listener).json()["assignment"]
    assert submit(client, listener, assignment).json()["practice_answer"] is None


def test_a_skipped_triplet_goes_back_to_the_pool_for_others(client):
    triplet = triplet_make()
    listener, other = listener_make(), listener_make()
    assignment = serve(client, listener).json()["assignment"]
    url = f"/api/v1/assignments/{assignment}/skip/"
    body = {"reason": "load-failed"}
    first = client.post(url, body, content_type="application/json", headers=auth(listener))
    again = client.post(url, body, content_type="application/json", headers=auth(listener))
    assert first.status_code == again.status_code == 200
    triplet.refresh_from_db()
    assert triplet.served == 0
    assert Assignment.objects.get(id=assignment).skip_reason == "load-failed"
    assert serve(client, listener).status_code == 204  # not asked again
    assert serve(client, other).json()["snippets"]  # but others are
    assert submit(client, listener, assignment).status_code == 409


def test_skipping_is_refused_for_someone_else_and_for_a_bad_reason(client):
    triplet_make()
    listener, other = listener_make(), listener_make()
    assignment = serve(client, listener).json()["assignment"]
    url = f"/api/v1/assignments/{assignment}/skip/"
    theirs = client.post(
        url, {"reason": "other"}, content_type="application/json", headers=auth(other)
    )
    bad = client.post(
        url, {"reason": "bored"}, content_type="application/json", headers=auth(listener)
    )
    assert theirs.status_code == 403
    assert bad.status_code == 400 and "reason" in bad.json()


def test_an_answer_that_waited_offline_is_accepted_after_the_expiry(client):
    triplet_make()
    triplet_make()
    listener = listener_make()
    late = serve(client, listener).json()["assignment"]
    Assignment.objects.filter(id=late).update(expires_at=timezone.now() - timedelta(minutes=5))
    assert submit(client, listener, late, waited_ms=60_000).status_code == 410
    assert submit(client, listener, late, waited_ms=10 * 60_000).status_code == 201


def test_the_page_records_plays_seeks_viewport_and_language_by_slot(client):
    triplet_make()
    listener = listener_make()
    payload = serve(client, listener).json()
    response = submit(
        client,
        listener,
        payload["assignment"],
        "C",
        plays=[1, 2, 3],
        seeks=[0, 4, 5],
        viewport="phone",
        language="de",
    )
    assert response.status_code == 201
    judgment = Judgment.objects.get()
    order = Assignment.objects.get(id=payload["assignment"]).order
    expected_plays = [0, 0, 0]
    for position, slot in enumerate(order):
        expected_plays[SLOTS.index(slot)] = [1, 2, 3][position]
    assert judgment.plays == expected_plays
    assert sorted(judgment.seeks) == [0, 4, 5]
    assert (judgment.viewport, judgment.language) == ("phone", "de")
    (row,) = [dict(zip(EXPORT_COLUMNS, r, strict=True)) for r in judgment_export_rows()]
    assert [row[f"plays_{slot}"] for slot in SLOTS] == expected_plays
    assert (row["viewport"], row["language"]) == ("phone", "de")


def test_bad_recorded_fields_get_a_400_with_a_reason(client):
    triplet_make()
    listener = listener_make()
    assignment = serve(client, listener).json()["assignment"]
    response = submit(
        client, listener, assignment, plays=[1, -1, 2], viewport="tv", language="<script>"
    )
    assert response.status_code == 400
    assert {"plays", "viewport", "language"} <= set(response.json())


def test_others_answers_are_shown_only_once_enough_others_answered(client, settings):
    settings.ODDBALL_FINISHED_VOTES = 3
    triplet_make()
    crowd = [listener_make() for _ in range(4)]
    responses = []
    for listener in crowd:
        payload = serve(client, listener).json()
        order = Assignment.objects.get(id=payload["assignment"]).order
        odd_position = "ABC"[order.index("a")]  # everyone picks slot a
        responses.append((submit(client, listener, payload["assignment"], odd_position), order))
    assert all(r.json()["others"] is None for r, _ in responses[:3])
    last, order = responses[3]
    others = last.json()["others"]
    assert others["ABC"[order.index("a")]] == 3
    assert sum(others.values()) == 3


def test_a_listener_can_report_only_snippets_they_were_played(client):
    triplet = triplet_make()
    stranger = triplet_make()
    listener = listener_make()
    serve(client, listener)

    def report(snippet_id: int, reason: str = "broken"):
        body = {"snippet": snippet_id, "reason": reason, "note": "crackles at 3 s"}
        return client.post(
            "/api/v1/reports/", body, content_type="application/json", headers=auth(listener)
        )

    assert report(triplet.snippet_a_id).status_code == 201
    assert report(triplet.snippet_a_id).status_code == 201  # idempotent
    assert report(stranger.snippet_a_id).status_code == 403
    assert report(triplet.snippet_b_id, "meh").status_code == 400
    assert SnippetReport.objects.get().note == "crackles at 3 s"


def test_the_page_cookie_works_only_with_the_csrf_token():
    triplet_make()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/consent/")
    token = page.context["csrf_token"]
    browser.post("/consent/", {"consent": "yes", "csrfmiddlewaretoken": token})
    payload = browser.get("/api/v1/assignments/next/").json()
    body = {
        "assignment": payload["assignment"],
        "answer": "A",
        "response_ms": 1,
        "listen_ms": [1, 1, 1],
    }
    forged = browser.post("/api/v1/judgments/", body, content_type="application/json")
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    token = browser.cookies["csrftoken"].value
    real = browser.post(
        "/api/v1/judgments/", body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert real.status_code == 201


def test_me_tells_a_listener_where_they_stand(client):
    gold_triplet()
    listener = listener_make()
    me = client.get("/api/v1/listeners/me/", headers=auth(listener)).json()
    assert me == {
        "pseudonym": listener.pseudonym,
        "answered": 0,
        "practice_left": 3,
        "finished": 0,
        "agreed": 0,
    }
