from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import Assignment, Judgment
from tests.factories import listener_make, triplet_make

pytestmark = pytest.mark.django_db


def auth(listener) -> dict:
    return {"authorization": f"Listener {listener.token}"}


def answer(client, listener, assignment_id: int, choice: str = "A"):
    body = {
        "assignment": assignment_id,
        "answer": choice,
        "response_ms": 9000,
        "listen_ms": [4100, 4200, 5000],
    }
    return client.post(
        "/api/v1/judgments/", body, content_type="application/json", headers=auth(listener)
    )


def test_a_listener_is_created_only_with_consent(client):
    refused = client.post("/api/v1/listeners/", {"consent": False}, content_type="application/json")
    created = client.post("/api/v1/listeners/", {"consent": True}, content_type="application/json")
    assert refused.status_code == 400
    assert "Consent" in refused.json()["detail"]
    assert created.status_code == 201
    assert set(created.json()) == {"pseudonym", "token"}


def test_serving_creates_an_expiring_assignment_with_three_snippets(client):
    triplet_make()
    listener = listener_make()
    response = client.get("/api/v1/assignments/next/", headers=auth(listener))
    assert response.status_code == 200
    data = response.json()
    assert [s["position"] for s in data["snippets"]] == ["A", "B", "C"]
    assignment = Assignment.objects.get(id=data["assignment"])
    assert assignment.expires_at > timezone.now()
    assert sorted(assignment.order) == ["a", "b", "c"]


def test_serving_again_returns_the_open_assignment(client):
    triplet_make()
    triplet_make()
    listener = listener_make()
    first = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()
    second = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()
    assert first["assignment"] == second["assignment"]


def test_a_double_submission_stores_one_judgment(client):
    triplet = triplet_make()
    listener = listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
        "assignment"
    ]
    first = answer(client, listener, assignment_id, "B")
    second = answer(client, listener, assignment_id, "B")
    assert first.status_code == 201
    assert second.status_code == 200
    assert first.json()["judgment"] == second.json()["judgment"]
    assert Judgment.objects.count() == 1
    triplet.refresh_from_db()
    assert triplet.votes == 1


def test_the_answer_is_stored_by_slot_with_its_timings(client):
    triplet_make()
    listener = listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
        "assignment"
    ]
    answer(client, listener, assignment_id, "C")
    judgment = Judgment.objects.get()
    order = judgment.assignment.order
    assert judgment.odd_slot == "abc".index(order[2])
    assert judgment.response_ms == 9000
    assert judgment.listen_ms["abc".index(order[0])] == 4100


def test_it_rejects_a_judgment_for_someone_elses_assignment(client):
    triplet_make()
    owner, other = listener_make(), listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(owner)).json()[
        "assignment"
    ]
    response = answer(client, other, assignment_id)
    assert response.status_code == 403
    assert Judgment.objects.count() == 0


def test_it_rejects_a_judgment_for_an_expired_assignment(client):
    triplet_make()
    listener = listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
        "assignment"
    ]
    Assignment.objects.filter(id=assignment_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = answer(client, listener, assignment_id)
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    assert Judgment.objects.count() == 0


def test_a_malformed_answer_gets_a_400_with_a_reason(client):
    triplet_make()
    listener = listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
        "assignment"
    ]
    response = client.post(
        "/api/v1/judgments/",
        {"assignment": assignment_id, "answer": "D", "response_ms": -1, "listen_ms": [1]},
        content_type="application/json",
        headers=auth(listener),
    )
    assert response.status_code == 400
    assert {"answer", "response_ms", "listen_ms"} <= set(response.json())


def test_the_api_refuses_a_request_without_a_listener(client):
    assert client.get("/api/v1/assignments/next/").status_code in (401, 403)
    bad = client.get("/api/v1/assignments/next/", headers={"authorization": "Listener nope"})
    assert bad.status_code in (401, 403)


def test_a_listener_never_gets_the_same_triplet_twice(client):
    triplet_make()
    listener = listener_make()
    assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
        "assignment"
    ]
    answer(client, listener, assignment_id)
    assert client.get("/api/v1/assignments/next/", headers=auth(listener)).status_code == 204


def test_serving_and_answering_use_a_bounded_number_of_queries(
    client, django_assert_max_num_queries
):
    for _ in range(5):
        triplet_make()
    listener = listener_make()
    # auth, the pace check (annotation/limits.py), open assignment, pick + lock a triplet
    # (with its snippets), count it, insert
    with django_assert_max_num_queries(8):  # + the transaction's savepoint pair
        assignment_id = client.get("/api/v1/assignments/next/", headers=auth(listener)).json()[
            "assignment"
        ]
    # auth, lock the assignment, look for a judgment, insert, mark answered, count the vote,
    # then the listener's answer count and others' votes on the triplet for the feedback
    with django_assert_max_num_queries(12):  # + two savepoint pairs
        assert answer(client, listener, assignment_id).status_code == 201


def test_the_openapi_schema_is_valid_and_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    assert "/api/v1/assignments/{assignment_id}/skip/" in schema
    assert "listenerToken" in schema
