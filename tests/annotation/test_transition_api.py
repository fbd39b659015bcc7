"""The transition API under /api/v1/transitions/: serving, rating and skipping, on rows
without audio files (tests/browser plays real renderings)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from annotation.auth import COOKIE
from annotation.models import TransitionAssignment, TransitionRating, TransitionTask
from embeddings.models import Clip, Rendering
from tests.factories import listener_make, track_make

pytestmark = pytest.mark.django_db

LENGTH_S = 16.0  # s, like the renderer's default 8 s either side of the seam
SEAM_S = 8.0


def transition_make(style: str = "crossfade", kind: str = "random") -> TransitionTask:
    """A rendered transition task between clips of two tracks (no audio file behind it)."""
    x, y = (
        Clip.objects.create(track=track_make(snippets=0), position=0, start_s=0.0,
                            duration_s=25.0, edge_s=4.0)
        for _ in range(2)
    )  # fmt: skip
    rendering = Rendering.objects.create(
        clip_x=x,
        clip_y=y,
        style=style,
        version=1,
        x_seam_s=25.0,
        y_seam_s=0.0,
        seam_s=SEAM_S,
        duration_s=LENGTH_S,
        config={},
        gain_x_db=0.0,
        gain_y_db=0.0,
        lufs_x=-18.0,
        lufs_y=-18.0,
        tempo_x={},
        tempo_y={},
        sample_rate=44_100,
        audio=f"renderings/{x.id}-{y.id}-{style}.ogg",
        sha256="0" * 64,
    )
    return TransitionTask.objects.create(
        clip_x=x,
        clip_y=y,
        style=style,
        kind=kind,
        proposed_by="oddnet-v3" if kind == "model" else "",
        score=0.9 if kind == "model" else None,
        shares={"model": 0.5, "random": 0.3, "true": 0.2},
        split="train",
        rendering=rendering,
    )


def auth(listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def next_one(client: Client, listener, after: tuple[int, ...] = ()):
    query = "&".join(f"after={a}" for a in after)
    return client.get(f"/api/v1/transitions/next/?{query}", headers=auth(listener))


def rate(client: Client, listener, assignment_id: int, **fields: object):
    body = {
        "assignment": assignment_id,
        "rating": 4,
        "response_ms": 12_000,
        "listen_ms": 11_000,
        "broke_at_s": None,
        "plays": 1,
        "seeks": 0,
        "viewport": "desktop",
        "language": "en",
        "waited_ms": 0,
        **fields,
    }
    return client.post(
        "/api/v1/transitions/ratings/",
        body,
        content_type="application/json",
        headers=auth(listener),
    )


def test_serving_gives_the_rendering_to_play_and_nothing_about_how_the_pair_was_chosen(client):
    task = transition_make("overlay", kind="model")
    listener = listener_make()
    response = next_one(client, listener)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"assignment", "expires_at", "min_listen_s", "rendering"}
    assert data["rendering"] == {
        "id": task.rendering_id,
        "url": f"http://testserver/media/renderings/{task.clip_x_id}-{task.clip_y_id}-overlay.ogg",
        "duration_s": LENGTH_S,
        "seam_s": SEAM_S,
        "style": "overlay",
    }
    assert data["min_listen_s"] == 4.0
    assert "model" not in response.content.decode() and "oddnet" not in response.content.decode()
    assignment = TransitionAssignment.objects.get(id=data["assignment"])
    assert assignment.listener == listener and assignment.expires_at > timezone.now()


def test_serving_again_returns_the_open_assignment_and_after_fetches_the_next(client):
    transition_make()
    transition_make()
    listener = listener_make()
    first = next_one(client, listener).json()["assignment"]
    assert next_one(client, listener).json()["assignment"] == first
    ahead = next_one(client, listener, after=(first,)).json()["assignment"]
    assert ahead != first
    assert next_one(client, listener, after=(first, ahead)).status_code == 204


def test_nothing_left_is_a_204(client):
    listener = listener_make()
    assert next_one(client, listener).status_code == 204
    unrendered = transition_make()
    TransitionTask.objects.filter(id=unrendered.id).update(rendering=None)
    assert next_one(client, listener).status_code == 204


def test_a_double_submission_stores_one_rating_and_counts_it_once(client):
    task = transition_make()
    listener = listener_make()
    assignment_id = next_one(client, listener).json()["assignment"]
    first = rate(client, listener, assignment_id, rating=2, broke_at_s=8.4)
    second = rate(client, listener, assignment_id, rating=2, broke_at_s=8.4)
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json() == {"rating": first.json()["rating"], "created": True, "rated": 1}
    assert second.json() == {**first.json(), "created": False}
    stored = TransitionRating.objects.get()
    assert (stored.rating, stored.broke_at_s, stored.listen_ms) == (2, 8.4, 11_000)
    assert (stored.plays, stored.seeks, stored.viewport, stored.language) == (1, 0, "desktop", "en")
    task.refresh_from_db()
    assert task.votes == 1
    assert next_one(client, listener).status_code == 204  # never the same transition twice


def test_the_rated_count_grows_with_each_rating(client):
    transition_make()
    transition_make()
    listener = listener_make()
    for expected in (1, 2):
        assignment_id = next_one(client, listener).json()["assignment"]
        assert rate(client, listener, assignment_id).json()["rated"] == expected


def test_a_rating_needs_only_the_essentials(client):
    transition_make()
    listener = listener_make()
    assignment_id = next_one(client, listener).json()["assignment"]
    body = {"assignment": assignment_id, "rating": 5, "response_ms": 9000, "listen_ms": 9000}
    response = client.post(
        "/api/v1/transitions/ratings/",
        body,
        content_type="application/json",
        headers=auth(listener),
    )
    assert response.status_code == 201
    stored = TransitionRating.objects.get()
    assert (stored.broke_at_s, stored.plays, stored.viewport) == (None, None, "")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": "seamless"}, "rating"),
        ({"response_ms": -1}, "response_ms"),
        ({"listen_ms": None}, "listen_ms"),
        ({"broke_at_s": -0.5}, "broke_at_s"),
        ({"broke_at_s": "later"}, "broke_at_s"),
        ({"plays": -1}, "plays"),
        ({"viewport": "tv"}, "viewport"),
        ({"language": "<script>"}, "language"),
        ({"waited_ms": -5}, "waited_ms"),
        ({"assignment": 2**70}, "assignment"),
    ],
)
def test_a_malformed_rating_gets_a_400_naming_the_field(client, fields, field):
    transition_make()
    listener = listener_make()
    assignment_id = next_one(client, listener).json()["assignment"]
    response = rate(client, listener, assignment_id, **fields)
    assert response.status_code == 400
    assert field in response.json()
    assert TransitionRating.objects.count() == 0


def test_bodies_that_are_not_a_rating_get_a_400_not_a_500(client):
    listener = listener_make()
    for body in ("not json", "[1, 2]", '{"rating": NaN}', "null"):
        response = client.post(
            "/api/v1/transitions/ratings/",
            body,
            content_type="application/json",
            headers=auth(listener),
        )
        assert response.status_code == 400, body


def test_a_mark_outside_the_rendering_is_refused_with_a_reason(client):
    transition_make()
    listener = listener_make()
    assignment_id = next_one(client, listener).json()["assignment"]
    response = rate(client, listener, assignment_id, broke_at_s=LENGTH_S + 1)
    assert response.status_code == 400
    assert "broke_at_s" in response.json()["detail"]


def test_someone_elses_a_skipped_or_an_unknown_assignment_is_refused(client):
    transition_make()
    transition_make()
    owner, other = listener_make(), listener_make()
    assignment_id = next_one(client, owner).json()["assignment"]
    assert rate(client, other, assignment_id).status_code == 403
    assert rate(client, owner, 999_999).status_code == 403
    skipped = client.post(
        f"/api/v1/transitions/{assignment_id}/skip/",
        {"reason": "load-failed"},
        content_type="application/json",
        headers=auth(owner),
    )
    assert skipped.status_code == 200
    assert skipped.json() == {"assignment": assignment_id, "skipped": True}
    refused = rate(client, owner, assignment_id)
    assert refused.status_code == 409
    assert "skipped" in refused.json()["detail"]
    assert TransitionRating.objects.count() == 0


def test_an_expired_assignment_is_410_unless_the_rating_waited_in_the_outbox(client):
    transition_make()
    listener = listener_make()
    assignment_id = next_one(client, listener).json()["assignment"]
    TransitionAssignment.objects.filter(id=assignment_id).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = rate(client, listener, assignment_id)
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    late = rate(client, listener, assignment_id, waited_ms=5 * 60 * 1000)
    assert late.status_code == 201


def test_skipping_puts_the_transition_back_and_serves_another(client):
    first_task = transition_make()
    transition_make()
    listener = listener_make()
    first = next_one(client, listener).json()["assignment"]
    url = f"/api/v1/transitions/{first}/skip/"
    bad = client.post(
        url, {"reason": "bored"}, content_type="application/json", headers=auth(listener)
    )
    assert bad.status_code == 400 and "reason" in bad.json()
    for _ in range(2):  # idempotent
        ok = client.post(
            url, {"reason": "load-failed"}, content_type="application/json", headers=auth(listener)
        )
        assert ok.status_code == 200
    first_task.refresh_from_db()
    assert first_task.served == 0
    assert TransitionAssignment.objects.get(id=first).skip_reason == "load-failed"
    second = next_one(client, listener).json()["assignment"]
    assert second != first
    assert rate(client, listener, second).status_code == 201
    answered = client.post(
        f"/api/v1/transitions/{second}/skip/",
        {"reason": "other"},
        content_type="application/json",
        headers=auth(listener),
    )
    assert answered.status_code == 409
    huge = client.post(
        f"/api/v1/transitions/{2**70}/skip/",
        {"reason": "other"},
        content_type="application/json",
        headers=auth(listener),
    )
    assert huge.status_code in (403, 404)


def test_the_api_refuses_a_request_without_a_listener(client):
    transition_make()
    assert client.get("/api/v1/transitions/next/").status_code in (401, 403)
    unknown = client.get("/api/v1/transitions/next/", headers={"authorization": "Listener nope"})
    assert unknown.status_code in (401, 403)
    anonymous = client.post(
        "/api/v1/transitions/ratings/", {"rating": 3}, content_type="application/json"
    )
    assert anonymous.status_code in (401, 403)


def test_the_page_cookie_works_only_with_the_csrf_token():
    transition_make()
    browser = Client(enforce_csrf_checks=True)
    browser.get("/consent/")
    token = browser.cookies["csrftoken"].value
    browser.post("/consent/", {"consent": "yes", "csrfmiddlewaretoken": token})
    assert COOKIE in browser.cookies
    assignment_id = browser.get("/api/v1/transitions/next/").json()["assignment"]
    body = {"assignment": assignment_id, "rating": 3, "response_ms": 1, "listen_ms": 1}
    forged = browser.post("/api/v1/transitions/ratings/", body, content_type="application/json")
    assert forged.status_code == 403
    assert TransitionRating.objects.count() == 0
    sent = browser.post(
        "/api/v1/transitions/ratings/",
        body,
        content_type="application/json",
        headers={"x-csrftoken": token},
    )
    assert sent.status_code == 201


def test_serving_and_rating_use_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    for _ in range(5):
        transition_make()
    listener = listener_make()
    # auth, the pace check (annotation/limits.py), open assignment, pick + lock a task (with
    # its rendering), count it, insert
    with django_assert_max_num_queries(8):  # + the transaction's savepoint pair
        assignment_id = next_one(client, listener).json()["assignment"]
    # auth, lock the assignment (with task and rendering), look for a rating, insert, mark
    # answered, count the vote, then the listener's family and rated count
    with django_assert_max_num_queries(11):  # + two savepoint pairs
        assert rate(client, listener, assignment_id, broke_at_s=9.0).status_code == 201
    # A repeat stops after looking: auth, lock, the stored rating, the count.
    with django_assert_max_num_queries(6):  # + a savepoint pair
        assert rate(client, listener, assignment_id, broke_at_s=9.0).status_code == 200


def test_the_openapi_schema_describes_the_transition_endpoints(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(out), stdout=StringIO()
    )
    schema = out.read_text()
    for path in (
        "/transitions/next/",
        "/transitions/ratings/",
        "/transitions/{assignment_id}/skip/",
    ):
        assert f"/api/v1{path}" in schema
    assert "broke_at_s" in schema and "seam_s" in schema
