"""The serve and answer endpoints behave the same on both of their paths: the hand-written
statements PostgreSQL runs (services.HOT_SQL) and the portable ORM path SQLite runs, which
the `path` fixture forces on PostgreSQL too. Also: their plain-input readers in api.py
accept what the DRF serializers accept and leave every error to them."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from annotation import services
from annotation.models import Assignment, Judgment, Triplet
from tests.factories import listener_make, triplet_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["sql", "orm"])
def path(request, monkeypatch, settings) -> str:
    monkeypatch.setattr(services, "HOT_SQL", request.param == "sql")
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    return request.param


def auth(listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def serve(client, listener, query: str = ""):
    return client.get(f"/api/v1/assignments/next/{query}", headers=auth(listener))


def answer(client, listener, assignment_id: int, **fields):
    body = {
        "assignment": assignment_id,
        "answer": "A",
        "response_ms": 9000,
        "listen_ms": [4100, 4200, 5000],
        **fields,
    }
    return client.post(
        "/api/v1/judgments/", body, content_type="application/json", headers=auth(listener)
    )


def test_serving_shows_the_snippets_in_the_assignments_order(client, path):
    triplet = triplet_make()
    listener = listener_make()
    data = serve(client, listener).json()
    assignment = Assignment.objects.get(id=data["assignment"])
    slots = {"a": triplet.snippet_a, "b": triplet.snippet_b, "c": triplet.snippet_c}
    shown = [slots[slot] for slot in assignment.order]
    assert [s["snippet"] for s in data["snippets"]] == [s.id for s in shown]
    assert [s["duration_s"] for s in data["snippets"]] == [s.duration_s for s in shown]
    assert data["snippets"][0]["url"] == "http://testserver" + shown[0].audio.url
    assert data["expires_at"] == assignment.expires_at.isoformat().replace("+00:00", "Z")
    assert data["practice"] is False
    assert assignment.listener_id == listener.id
    triplet.refresh_from_db()
    assert (triplet.served, triplet.votes) == (1, 0)


def test_the_served_assignment_is_a_whole_model_instance(path):
    triplet_make()
    listener = listener_make()
    made = services.assignment_next(listener)
    stored = Assignment.objects.get(id=made.id)
    assert (made.order, made.expires_at, made.created_at) == (
        stored.order,
        stored.expires_at,
        stored.created_at,
    )
    assert made.triplet.snippet_b.track_id == stored.triplet.snippet_b.track_id  # deferred


def test_serving_skips_what_the_listener_holds_or_has_seen(client, path):
    triplets = [triplet_make() for _ in range(3)]
    listener = listener_make()
    first = serve(client, listener).json()["assignment"]
    second = serve(client, listener, f"?after={first}").json()["assignment"]
    third = serve(client, listener, f"?after={first}&after={second}").json()["assignment"]
    served = {Assignment.objects.get(id=a).triplet_id for a in (first, second, third)}
    assert served == {t.id for t in triplets}
    held = f"?after={first}&after={second}&after={third}"
    assert serve(client, listener, held).status_code == 204
    assert serve(client, listener).json()["assignment"] == first  # still open: handed back


def test_the_practice_round_serves_gold_triplets_only(client, path):
    triplet_make()
    gold = triplet_make()
    Triplet.objects.filter(id=gold.id).update(kind=Triplet.Kind.GOLD, gold_odd=1)
    listener = listener_make()
    data = serve(client, listener, "?practice=true").json()
    assignment = Assignment.objects.get(id=data["assignment"])
    assert (assignment.triplet_id, assignment.practice, data["practice"]) == (gold.id, True, True)
    position = "ABC"[assignment.order.index("b")]
    body = answer(client, listener, assignment.id, answer=position).json()
    assert body["practice_answer"] == position
    assert body["answered"] == 0  # practice answers are not counted
    gold.refresh_from_db()
    assert gold.votes == 0


def test_an_answer_is_stored_by_slot_and_counted(client, path):
    triplet = triplet_make()
    listener = listener_make()
    data = serve(client, listener).json()
    Assignment.objects.filter(id=data["assignment"]).update(order="cab")
    response = answer(
        client,
        listener,
        data["assignment"],
        answer="B",
        plays=[1, 2, 3],
        seeks=[4, 5, 6],
        viewport="phone",
        language="de-CH",
        waited_ms=5,
    )
    assert response.status_code == 201
    body = response.json()
    judgment = Judgment.objects.get()
    assert body == {
        "judgment": judgment.id,
        "created": True,
        "answered": 1,
        "others": None,
        "practice_answer": None,
    }
    # "cab": position A shows slot c, B shows a, C shows b
    assert judgment.odd_slot == 0
    assert judgment.listen_ms == [4200, 5000, 4100]
    assert (judgment.plays, judgment.seeks) == ([2, 3, 1], [5, 6, 4])
    assert (judgment.viewport, judgment.language, judgment.practice) == ("phone", "de-CH", False)
    assert (judgment.status, judgment.weight, judgment.source) == ("accepted", 1.0, "oddball")
    assert judgment.listener_id == listener.id and judgment.triplet_id == triplet.id
    assert Assignment.objects.get(id=data["assignment"]).answered_at is not None
    triplet.refresh_from_db()
    assert triplet.votes == 1


def test_a_repeated_answer_returns_the_stored_one(client, path):
    triplet_make()
    listener = listener_make()
    assignment_id = serve(client, listener).json()["assignment"]
    first = answer(client, listener, assignment_id, answer="A")
    again = answer(client, listener, assignment_id, answer="C")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {**first.json(), "created": False}
    assert Judgment.objects.get().odd_slot == first_slot(assignment_id, "A")
    assert Triplet.objects.get().votes == 1


def first_slot(assignment_id: int, position: str) -> int:
    return "abc".index(Assignment.objects.get(id=assignment_id).order["ABC".index(position)])


def test_refusals_keep_their_statuses(client, path):
    for _ in range(3):
        triplet_make()
    listener, other = listener_make(), listener_make()
    mine = serve(client, listener).json()["assignment"]
    assert answer(client, other, mine).status_code == 403
    assert answer(client, listener, 2**63 + 5).status_code == 403
    skipped = serve(client, listener, f"?after={mine}").json()["assignment"]
    Assignment.objects.filter(id=skipped).update(skipped_at=timezone.now())
    assert answer(client, listener, skipped).status_code == 409
    Assignment.objects.filter(id=mine).update(expires_at=timezone.now() - timedelta(seconds=60))
    late = answer(client, listener, mine)
    assert (late.status_code, late.json()["code"]) == (410, "gone")
    assert answer(client, listener, mine, waited_ms=120_000).status_code == 201  # outbox grace
    assert Judgment.objects.count() == 1


def test_others_answers_show_once_enough_others_answered(client, path, settings):
    settings.ODDBALL_FINISHED_VOTES = 2
    triplet = triplet_make()
    bodies = []
    for choice in ("A", "A", "none"):
        listener = listener_make()
        assignment_id = serve(client, listener).json()["assignment"]
        Assignment.objects.filter(id=assignment_id).update(order="bca")
        bodies.append(answer(client, listener, assignment_id, answer=choice).json())
    assert [b["others"] for b in bodies[:2]] == [None, None]
    # Two others picked position A, which this listener also sees as slot b.
    assert bodies[2]["others"] == {"A": 2, "B": 0, "C": 0, "none": 0}
    assert Triplet.objects.get(id=triplet.id).votes == 3


def test_answers_are_counted_across_a_persons_devices(client, path):
    user = user_make()
    phone, laptop = listener_make(user=user), listener_make(user=user)
    for _ in range(2):
        triplet_make()
    first = serve(client, phone).json()["assignment"]
    answer(client, phone, first)
    second = serve(client, laptop).json()["assignment"]
    assert answer(client, laptop, second).json()["answered"] == 2


def test_a_repeat_is_no_vote(client, path, settings):
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 1.0
    settings.ODDBALL_QUALITY_REPEAT_AFTER = 1
    triplet_make()
    triplet_make()
    listener = listener_make()
    answer(client, listener, serve(client, listener).json()["assignment"])
    repeat = Assignment.objects.get(id=serve(client, listener).json()["assignment"])
    assert repeat.repeat_of_id is not None
    assert answer(client, listener, repeat.id).status_code == 201
    assert Triplet.objects.get(id=repeat.triplet_id).votes == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_triplet_locked_by_another_request_is_skipped(path):
    least, other = triplet_make(), triplet_make()
    Triplet.objects.filter(id=other.id).update(votes=1)
    listener = listener_make()
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with transaction.atomic():
            list(Triplet.objects.select_for_update().filter(id=least.id))
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    try:
        served = Client().get("/api/v1/assignments/next/", headers=auth(listener)).json()
    finally:
        release.set()
        holder.join()
    assert Assignment.objects.get(id=served["assignment"]).triplet_id == other.id


# The plain-input readers --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"answer": "D"},
        {"answer": "a"},
        {"listen_ms": [1, 2]},
        {"listen_ms": [1, 2, -3]},
        {"listen_ms": "1,2,3"},
        {"response_ms": -1},
        {"response_ms": True},
        {"plays": None},
        {"seeks": [1, 2, 10_001]},
        {"viewport": ""},
        {"viewport": "tablet"},
        {"language": ""},
        {"language": "english!"},
        {"waited_ms": -5},
        {"assignment": "x"},
    ],
)
def test_bad_answers_get_the_serializers_errors(client, fields):
    listener = listener_make()
    response = answer(client, listener, 1, **fields)
    assert response.status_code == 400
    assert set(response.json()) == set(fields)


def test_answers_the_serializer_takes_are_still_taken(client, path):
    triplet_make()
    listener = listener_make()
    assignment_id = serve(client, listener).json()["assignment"]
    # strings for numbers: not plain, so the serializer reads them, as before
    response = answer(
        client, listener, str(assignment_id), response_ms="9000", listen_ms=["1", 2, 3.0]
    )
    assert response.status_code == 201
    assert sorted(Judgment.objects.get().listen_ms) == [1, 2, 3]


@pytest.mark.parametrize("query", ["?practice=maybe", "?after=0", "?after=x", "?after=-1"])
def test_bad_serve_queries_get_the_serializers_errors(client, query):
    response = serve(client, listener_make(), query)
    assert response.status_code == 400
    assert set(response.json()) <= {"practice", "after"}


@pytest.mark.parametrize("query", ["?practice=False", "?practice=no", "?after=0001"])
def test_serve_queries_the_serializer_takes_are_still_taken(client, query):
    triplet_make()
    assert serve(client, listener_make(), query).status_code == 200
