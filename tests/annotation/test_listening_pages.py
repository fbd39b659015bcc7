import pytest

from annotation.auth import COOKIE
from annotation.models import Assignment, Judgment, Listener
from tests.factories import triplet_make

pytestmark = pytest.mark.django_db


def test_the_welcome_page_leads_to_consent(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"/consent/" in response.content


def test_listen_without_consent_redirects_to_the_consent_step(client):
    response = client.get("/listen/")
    assert response.status_code == 302
    assert response.url == "/consent/"


def test_consent_is_required_before_a_listener_exists(client):
    response = client.post("/consent/", {})
    assert response.status_code == 400
    assert Listener.objects.count() == 0


def test_consenting_sets_the_listener_cookie_and_serves_three_players(client):
    triplet_make()
    response = client.post("/consent/", {"consent": "yes"}, follow=True)
    assert COOKIE in client.cookies
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<audio") == 3
    assert "Can&#x27;t tell" in html or "Can't tell" in html


def test_answering_the_form_stores_one_judgment_even_when_posted_twice(client):
    triplet_make()
    client.post("/consent/", {"consent": "yes"})
    client.get("/listen/")
    assignment = Assignment.objects.get()
    form = {
        "assignment": assignment.id,
        "answer": "B",
        "response_ms": "8000",
        "listen_ms_A": "4000",
        "listen_ms_B": "4500",
        "listen_ms_C": "5000",
    }
    first = client.post("/listen/answer/", form)
    second = client.post("/listen/answer/", form)
    assert first.status_code == second.status_code == 302
    assert Judgment.objects.count() == 1


def test_the_dashboard_is_for_staff_only(client, django_user_model):
    assert client.get("/dashboard/").status_code == 302
    user = django_user_model.objects.create_user("visitor", password="pw-long-enough")
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 302
    user.is_staff = True
    user.save()
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert b"Agreement with people" in response.content


def test_healthz_answers(client):
    assert client.get("/healthz").json() == {"status": "ok"}
