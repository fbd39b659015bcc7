"""Abuse limits (annotation/limits.py): rates per listener and per address on serving,
answering and creating listeners, and the slow-down of a listener who answers faster
than the music plays."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client
from django.utils import timezone
from rest_framework.throttling import SimpleRateThrottle

from annotation.limits import FLAG_ACTION, SLOW_ACTION, SLOW_REASON
from annotation.models import AuditEntry, Judgment, Listener
from tests.factories import (
    assignment_make,
    listener_make,
    transition_assignment_make,
    transition_task_make,
    triplet_make,
)

pytestmark = pytest.mark.django_db

NO_RATES = dict.fromkeys(
    ["serve-listener", "serve-address", "answer-listener", "answer-address", "listener-create"]
)


@pytest.fixture
def rates(settings):
    """Set some rates, leaving the others off."""

    def set_rates(**scoped: str) -> None:
        chosen = {scope.replace("_", "-"): rate for scope, rate in scoped.items()}
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": NO_RATES | chosen,
        }

    return set_rates


def auth(listener: Listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def next_triplet(client: Client, listener: Listener, *after: int):
    query = "&".join(f"after={a}" for a in after)
    return client.get(f"/api/v1/assignments/next/?{query}", headers=auth(listener))


def answer(client: Client, listener: Listener, assignment_id: int, heard_ms: int = 5000):
    body = {
        "assignment": assignment_id,
        "answer": "B",
        "response_ms": 3 * heard_ms + 1000,
        "listen_ms": [heard_ms] * 3,
    }
    return client.post(
        "/api/v1/judgments/", body, content_type="application/json", headers=auth(listener)
    )


def rate(client: Client, listener: Listener, assignment_id: int, heard_ms: int = 11_000):
    body = {
        "assignment": assignment_id,
        "rating": 3,
        "response_ms": heard_ms + 500,
        "listen_ms": heard_ms,
    }
    return client.post(
        "/api/v1/transitions/ratings/",
        body,
        content_type="application/json",
        headers=auth(listener),
    )


def test_serving_is_limited_per_listener_not_per_address(client, rates):
    rates(serve_listener="2/min")
    hasty, other = listener_make(), listener_make()
    assert [next_triplet(client, hasty).status_code for _ in range(2)] == [204, 204]
    refused = next_triplet(client, hasty)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 60
    assert next_triplet(client, other).status_code == 204  # same address, another listener
    transitions = client.get("/api/v1/transitions/next/", headers=auth(hasty))
    assert transitions.status_code == 429  # one budget for both kinds of task


def test_serving_is_limited_per_address_whatever_the_listener(rates):
    rates(serve_address="3/min")
    here, elsewhere = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    crowd = [listener_make() for _ in range(4)]
    codes = [next_triplet(here, listener).status_code for listener in crowd]
    assert codes == [204, 204, 204, 429]
    assert next_triplet(elsewhere, crowd[-1]).status_code == 204


def test_a_forwarded_address_counts_only_behind_a_configured_proxy(rates, settings):
    rates(serve_address="1/min")
    client, listener = Client(REMOTE_ADDR="10.0.0.1"), listener_make()
    forged = {"x-forwarded-for": "203.0.113.9"}
    assert (
        client.get("/api/v1/assignments/next/", headers=auth(listener) | forged).status_code == 204
    )
    # Without a proxy configured, a client cannot pick a fresh address by sending the header.
    again = {"x-forwarded-for": "203.0.113.10"}
    assert (
        client.get("/api/v1/assignments/next/", headers=auth(listener) | again).status_code == 429
    )
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert (
        client.get("/api/v1/assignments/next/", headers=auth(listener) | again).status_code == 204
    )


def test_answering_is_limited_per_listener_and_a_refused_answer_is_not_stored(client, rates):
    rates(answer_listener="2/min")
    listener = listener_make()
    assignments = [assignment_make(listener) for _ in range(3)]
    codes = [answer(client, listener, a.id).status_code for a in assignments]
    assert codes == [201, 201, 429]
    assert Judgment.objects.filter(listener=listener).count() == 2


def test_answering_is_limited_per_address(rates):
    rates(answer_address="2/min")
    here, elsewhere = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    crowd = [listener_make() for _ in range(3)]
    codes = [answer(here, x, assignment_make(x).id).status_code for x in crowd]
    assert codes == [201, 201, 429]
    assert answer(elsewhere, crowd[-1], assignment_make(crowd[-1]).id).status_code == 201
    listener = crowd[0]
    assert rate(here, listener, transition_assignment_make(listener).id).status_code == 429


def test_creating_listeners_is_limited_per_address(rates):
    rates(listener_create="2/hour")
    here, elsewhere = Client(REMOTE_ADDR="10.0.0.1"), Client(REMOTE_ADDR="10.0.0.2")
    body = {"consent": True}

    def create(client: Client) -> int:
        return client.post("/api/v1/listeners/", body, content_type="application/json").status_code

    assert [create(here) for _ in range(3)] == [201, 201, 429]
    assert create(elsewhere) == 201
    assert Listener.objects.count() == 3


def test_a_listener_answering_faster_than_the_music_plays_is_slowed_and_flagged(client, settings):
    settings.ODDBALL_SLOW_STREAK, settings.ODDBALL_SLOW_S = 3, 60
    for _ in range(6):
        triplet_make()
    listener = listener_make()
    for _ in range(3):
        assignment = next_triplet(client, listener).json()["assignment"]
        assert answer(client, listener, assignment, heard_ms=400).status_code == 201

    slowed = next_triplet(client, listener)
    assert slowed.status_code == 429
    assert slowed["Retry-After"] == "60"
    assert slowed.json()["wait_s"] == 60
    assert "faster than the music plays" in slowed.json()["detail"]
    listener.refresh_from_db()
    assert listener.review == Listener.Review.FLAGGED
    assert listener.flag_reasons == [SLOW_REASON]
    assert listener.slowed_until > timezone.now() + timedelta(seconds=55)
    entries = AuditEntry.objects.filter(target_type="listener", target_id=listener.id)
    assert sorted(entries.values_list("action", flat=True)) == [FLAG_ACTION, SLOW_ACTION]
    assert not entries.filter(actor__isnull=False).exists()
    assert len(entries.get(action=SLOW_ACTION).data["answers"]) == 3

    # Asking again while slowed is answered politely again, and recorded once only.
    again = next_triplet(client, listener)
    assert again.status_code == 429
    assert 0 < again.json()["wait_s"] <= 60
    assert entries.count() == 2

    # A minute later the listener is served again, and the same answers do not count twice.
    # (Time moves by shifting the rows' times a minute back.)
    minute = timedelta(seconds=61)
    Judgment.objects.filter(listener=listener).update(created_at=F("created_at") - minute)
    Listener.objects.filter(id=listener.id).update(slowed_until=F("slowed_until") - minute)
    assert next_triplet(client, listener).status_code == 200
    assert entries.count() == 2


def test_a_slowed_listener_waits_for_transitions_too_and_a_curators_decision_stands(
    client, settings
):
    settings.ODDBALL_SLOW_STREAK = 2
    for _ in range(3):
        transition_task_make()
    listener = listener_make(review=Listener.Review.TRUSTED)
    for _ in range(2):
        assignment = client.get("/api/v1/transitions/next/", headers=auth(listener)).json()
        assert rate(client, listener, assignment["assignment"], heard_ms=900).status_code == 201
    assert client.get("/api/v1/transitions/next/", headers=auth(listener)).status_code == 429
    listener.refresh_from_db()
    assert listener.review == Listener.Review.TRUSTED  # restored by a curator: not re-flagged
    assert AuditEntry.objects.filter(target_id=listener.id, action=SLOW_ACTION).exists()
    # Already served assignments may still be answered while the listener waits.
    open_one = transition_assignment_make(listener)
    assert rate(client, listener, open_one.id).status_code == 201


def test_one_hasty_answer_among_careful_ones_is_not_slowed(client, settings):
    settings.ODDBALL_SLOW_STREAK = 3
    listener = listener_make()
    for heard_ms in (5000, 300, 300, 5000, 300, 300):
        assert answer(client, listener, assignment_make(listener).id, heard_ms).status_code == 201
    assert next_triplet(client, listener).status_code == 204
    listener.refresh_from_db()
    assert listener.review == Listener.Review.OK
    assert listener.slowed_until is None


def test_an_honest_pace_is_never_throttled_at_the_default_rates(client, monkeypatch):
    """A listener who hears each snippet for the minimum (12 s a triplet), with the page
    fetching one ahead, and who then sends ten answers kept while offline all at once."""
    clock = [1_000_000.0]
    monkeypatch.setattr(SimpleRateThrottle, "timer", staticmethod(lambda: clock[0]))
    for _ in range(40):
        triplet_make()
    listener = listener_make()
    current = next_triplet(client, listener).json()["assignment"]
    for _ in range(25):
        ahead = next_triplet(client, listener, current)
        assert ahead.status_code == 200
        assert answer(client, listener, current, heard_ms=4000).status_code == 201
        current = ahead.json()["assignment"]
        clock[0] += 12.0  # s: three snippets of 4 s
    outbox = [assignment_make(listener) for _ in range(10)]
    assert [answer(client, listener, a.id).status_code for a in outbox] == [201] * 10
    assert next_triplet(client, listener).status_code == 200
    listener.refresh_from_db()
    assert listener.slowed_until is None
    assert listener.review == Listener.Review.OK
