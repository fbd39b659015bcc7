import pytest
from django.contrib.auth.models import Group

from annotation.auth import COOKIE
from annotation.models import Assignment, Listener, TransitionAssignment
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


def test_consenting_sets_the_listener_cookie_and_leads_to_the_instructions(client):
    response = client.post("/consent/", {"consent": "yes"})
    assert COOKIE in client.cookies
    assert response.url == "/listen/instructions/"
    page = client.get(response.url).content.decode()
    assert "Example" in page and "practice round" in page


def test_the_listening_page_is_a_shell_with_its_strings_and_three_players(client):
    triplet_make()
    client.post("/consent/", {"consent": "yes"})
    response = client.get("/listen/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<audio") == 3
    assert 'id="listen-strings"' in html
    assert "Report a problem" in html
    # The page asks the API for triplets; rendering it serves nothing by itself.
    assert Assignment.objects.count() == 0


def test_the_dashboard_is_for_curators_only(client, django_user_model):
    assert client.get("/dashboard/").status_code == 302
    user = django_user_model.objects.create_user("visitor", password="pw-long-enough")
    client.force_login(user)
    assert client.get("/dashboard/").status_code == 403
    user.is_staff = True
    user.save()
    assert client.get("/dashboard/").status_code == 403  # the staff flag is no role
    user.groups.add(Group.objects.get(name="curator"))
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert b"Agreement with people" in response.content


def test_healthz_answers(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_transition_page_asks_for_consent_first_and_returns_there(client):
    response = client.get("/listen/transitions/")
    assert response.status_code == 302
    assert response.url == "/consent/?next=/listen/transitions/"
    form = client.get(response.url).content.decode()
    assert 'name="next" value="/listen/transitions/"' in form
    consented = client.post("/consent/", {"consent": "yes", "next": "/listen/transitions/"})
    assert consented.url == "/listen/transitions/"


def test_consent_never_sends_a_listener_to_another_site(client):
    response = client.post("/consent/", {"consent": "yes", "next": "https://evil.example/"})
    assert response.url == "/listen/instructions/"


def test_the_transition_page_is_a_shell_with_one_player_a_scale_and_its_strings(client):
    client.post("/consent/", {"consent": "yes"})
    response = client.get("/listen/transitions/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("<audio") == 1
    assert html.count('class="button rate"') == 5
    assert "1: jarring" in html and "5: seamless, as if one piece" in html
    assert "It broke here" in html and 'id="seam-marker"' in html
    assert 'id="transition-strings"' in html
    assert 'data-seam-before-s="1.0" data-seam-after-s="2.0"' in html
    assert TransitionAssignment.objects.count() == 0  # the page's script asks the API


def test_every_page_links_to_the_transition_page(client):
    assert b'href="/listen/transitions/"' in client.get("/").content
