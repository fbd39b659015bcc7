"""Optional accounts: signing up keeps the answers given so far, signing in on another
device brings that device's answers along, and signing out forgets the device."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.auth import COOKIE
from annotation.models import Assignment, Judgment, Listener, Triplet
from tests.factories import triplet_make

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-passphrase"


def answer_one(client: Client, choice: str = "A") -> int:
    payload = client.get("/api/v1/assignments/next/").json()
    body = {
        "assignment": payload["assignment"],
        "answer": choice,
        "response_ms": 5000,
        "listen_ms": [4000, 4000, 4000],
    }
    response = client.post("/api/v1/judgments/", body, content_type="application/json")
    assert response.status_code == 201
    return payload["assignment"]


def consented() -> Client:
    client = Client()
    client.post("/consent/", {"consent": "yes"})
    return client


def test_signing_up_keeps_the_answers_given_so_far():
    for _ in range(3):
        triplet_make()
    client = consented()
    answer_one(client)
    answer_one(client)
    listener = Listener.objects.get()
    form = {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
    response = client.post("/accounts/signup/", form)
    assert response.status_code == 302
    listener.refresh_from_db()
    assert listener.user.username == "ada"
    assert client.cookies[COOKIE].value == listener.token
    assert "2 answers" in client.get("/listen/history/").content.decode()


def test_signing_in_on_another_device_brings_its_answers_along():
    for _ in range(4):
        triplet_make()
    laptop = consented()
    shared = answer_one(laptop)
    laptop.post(
        "/accounts/signup/", {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
    )
    own = Listener.objects.get(user__username="ada")

    phone = consented()
    phone_listener = Listener.objects.exclude(id=own.id).get()
    shared_triplet = Assignment.objects.get(id=shared).triplet_id
    # The phone first answers the triplet the laptop answered, then another one.
    Triplet.objects.exclude(id=shared_triplet).update(active=False)
    answer_one(phone)
    Triplet.objects.update(active=True)
    second = answer_one(phone)
    response = phone.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    assert phone.cookies[COOKIE].value == own.token
    moved = Assignment.objects.get(id=second)
    assert moved.listener_id == own.id
    assert Judgment.objects.get(assignment=moved).listener_id == own.id
    phone_listener.refresh_from_db()
    assert phone_listener.user_id == own.user_id
    # A triplet answered on both devices stays with the phone's listener: never two votes
    # from one person under one pseudonym.
    kept = Assignment.objects.filter(listener=phone_listener).values_list("triplet", flat=True)
    assert list(kept) == [shared_triplet]
    assert Judgment.objects.count() == 3  # nothing lost
    assert "3 answers" in phone.get("/listen/history/").content.decode()


def test_a_wrong_password_gets_the_form_back_with_a_reason():
    get_user_model().objects.create_user("ada", password=PASSWORD)
    response = Client().post("/accounts/login/", {"username": "ada", "password": "nope"})
    assert response.status_code == 400
    assert "correct username and password" in response.content.decode()


def test_signing_in_never_redirects_to_another_site():
    get_user_model().objects.create_user("ada", password=PASSWORD)
    client = consented()
    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.url == "/listen/"


def test_signing_out_forgets_the_device():
    triplet_make()
    client = consented()
    client.post(
        "/accounts/signup/", {"username": "ada", "password1": PASSWORD, "password2": PASSWORD}
    )
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.cookies[COOKIE].value == ""
    assert client.get("/listen/").url == "/consent/"


def test_the_history_page_compares_answers_on_finished_triplets(settings):
    settings.ODDBALL_FINISHED_VOTES = 2
    triplet_make()
    crowd = [consented() for _ in range(3)]
    for client in crowd:
        payload = client.get("/api/v1/assignments/next/").json()
        order = Assignment.objects.get(id=payload["assignment"]).order
        body = {
            "assignment": payload["assignment"],
            "answer": "ABC"[order.index("b")],
            "response_ms": 5000,
            "listen_ms": [4000, 4000, 4000],
        }
        client.post("/api/v1/judgments/", body, content_type="application/json")
    page = crowd[0].get("/listen/history/").content.decode()
    assert "On 1 finished question, you picked what most others picked: 1 of 1." in page
    assert "2 of 2" in page
