"""Query counts of the two hot listening endpoints (serve and answer), exactly: the load
benchmark (bench/load.py) runs them hundreds of times a second, so a query more is a change
to notice. On PostgreSQL each is one hand-written statement after the listener lookup
(annotation/services.py); the portable ORM path SQLite runs is counted too. Inside a test
transaction BEGIN/COMMIT are a savepoint pair."""

import threading

import pytest
from django.db import connection

from annotation import services
from annotation.models import Assignment, Judgment
from tests.factories import listener_make, triplet_make

pytestmark = pytest.mark.django_db


def auth(listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def answer_body(assignment_id: int) -> dict:
    return {
        "assignment": assignment_id,
        "answer": "B",
        "response_ms": 9000,
        "listen_ms": [4100, 4200, 5000],
    }


@pytest.fixture
def no_repeats(settings) -> None:
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0  # no repeat, so no repeat bookkeeping query


# PostgreSQL's single statements: serving is auth, pace check, then one statement that
# looks for an open assignment, else picks and locks a triplet, counts it served, inserts
# the assignment and returns it with its snippets; answering is auth, then one statement
# that locks the assignment, inserts the judgment, marks it answered, counts the vote and
# reads the answer count and others' votes.
# The portable path (what SQLite runs): serving is auth, pace check, open assignment,
# savepoint, pick + lock a triplet with its snippets, count it served, insert the
# assignment, release; answering is auth, savepoint, lock the assignment, look for a
# judgment, insert, mark answered, count the vote, release, then the answer count and
# others' votes in one query.
@pytest.mark.parametrize(
    ("hot_sql", "serving", "answering"),
    [
        pytest.param(
            True,
            3,
            2,
            marks=pytest.mark.skipif(
                connection.vendor != "postgresql", reason="the single statements"
            ),
        ),
        (False, 8, 9),
    ],
)
def test_serving_and_answering_take_a_known_number_of_queries(
    client, no_repeats, monkeypatch, django_assert_num_queries, hot_sql, serving, answering
):
    monkeypatch.setattr(services, "HOT_SQL", hot_sql)
    for _ in range(3):
        triplet_make()
    listener = listener_make()
    with django_assert_num_queries(serving):
        served = client.get("/api/v1/assignments/next/", headers=auth(listener))
    with django_assert_num_queries(answering):
        answered = client.post(
            "/api/v1/judgments/",
            answer_body(served.json()["assignment"]),
            content_type="application/json",
            headers=auth(listener),
        )
    assert answered.status_code == 201


def test_the_pace_check_costs_no_query_when_the_slow_down_is_off(
    client, no_repeats, settings, django_assert_num_queries
):
    settings.ODDBALL_SLOW_STREAK = 0
    triplet_make()
    listener = listener_make()
    # the portable path (SQLite): the eight queries above but the pace check
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 7):
        assert client.get("/api/v1/assignments/next/", headers=auth(listener)).status_code == 200


def test_the_least_voted_triplet_is_served_first(client, no_repeats):
    voted, fresh = triplet_make(), triplet_make()
    voted.votes = 2
    voted.save(update_fields=["votes"])
    listener = listener_make()
    served = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()
    assert Assignment.objects.get(id=served["assignment"]).triplet_id == fresh.id


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite locks the whole table")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_of_one_answer_store_one_judgment(client, no_repeats):
    triplet_make()
    listener = listener_make()
    served = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()
    statuses: list[int] = []

    def submit() -> None:
        from django.test import Client

        response = Client().post(
            "/api/v1/judgments/",
            answer_body(served["assignment"]),
            content_type="application/json",
            headers=auth(listener),
        )
        statuses.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 200, 201]
    assert Judgment.objects.count() == 1
