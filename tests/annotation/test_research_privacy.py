"""No e-mail, account name or IP address in the research API or the researcher's pages,
even though everyone involved has an account with a name and an e-mail."""

import re
from pathlib import Path

import numpy as np
import pytest

from annotation import research, roles
from embeddings.models import Embedding
from tests.factories import listener_make, model_version_make, track_make, triplet_make, user_make
from training.models import Evaluation

pytestmark = pytest.mark.django_db

CLIENT_IP = "203.0.113.77"  # TEST-NET-3: sent as the caller's address on every request
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def people() -> dict[str, object]:
    researcher = user_make(roles.RESEARCHER, username="ada_lovelace", email="ada@uni.example")
    curator = user_make(roles.CURATOR, username="grace_curator", email="grace@oddball.example")
    listener_make(user=user_make(username="linus_listener", email="linus@home.example"))
    other = user_make(username="alan_applicant", email="alan@lab.example")
    research.researcher_reject(
        research.researcher_apply(other, "Lab", "Taste").id, curator, "Say more."
    )
    applicant = user_make(username="barbara_b", email="barbara@lab.example")
    research.researcher_apply(applicant, "Uni", "Rhythm study")
    own = research.researcher_apply(researcher, "Analytical Engines", "Timbre")
    research.researcher_approve(own.id, curator, "Welcome, grace_curator here")
    return {"researcher": researcher, "curator": curator, "other": other}


def world(media_root: Path) -> dict[str, object]:
    track = track_make()
    triplet_make()
    snippet = track.snippets.first()
    vector = np.ones(4, dtype="<f4").tobytes()
    Embedding.objects.create(snippet=snippet, space="oddnet@1", dim=4, vector=vector)
    (media_root / "models").mkdir(parents=True)
    (media_root / "models" / "oddnet-1.onnx").write_bytes(b"onnx")
    version = model_version_make(artifacts={"onnx": "models/oddnet-1.onnx"})
    Evaluation.objects.create(space=version.space, model_version=version, results={"agreement": 1})
    return {"track": track, "snippet": snippet, "version": version}


def leaks(text: str, names: list[str]) -> list[str]:
    found = EMAIL.findall(text) + IPV4.findall(text)
    return found + [name for name in names if name in text]


def test_research_api_answers_name_no_one(client, _media_root):
    who = people()
    w = world(_media_root)
    secret = research.api_token_create(who["researcher"], "laptop").secret
    headers = {"Authorization": f"Bearer {secret}"}
    urls = [
        "/api/v1/tracks/",
        f"/api/v1/tracks/{w['track'].id}/",
        f"/api/v1/snippets/{w['snippet'].id}/",
        f"/api/v1/snippets/{w['snippet'].id}/embeddings/?space=oddnet@1",
        "/api/v1/snippets/999999/embeddings/?space=oddnet@1",
        "/api/v1/models/",
        f"/api/v1/models/{w['version'].space}/",
        "/api/v1/models/nothing@1/",
        "/api/v1/tracks/?limit=0",
    ]
    names = ["ada_lovelace", "grace_curator", "linus_listener", "alan_applicant", "barbara_b"]
    for url in urls:
        response = client.get(url, headers=headers, REMOTE_ADDR=CLIENT_IP)
        assert response.status_code in (200, 400, 404), url
        assert not leaks(response.content.decode(), names), url


def test_the_researchers_pages_name_no_one_else(client, _media_root):
    who = people()
    research.api_token_create(who["researcher"], "laptop")
    everyone = ["ada_lovelace", "grace_curator", "linus_listener", "alan_applicant", "barbara_b"]
    client.force_login(who["researcher"])
    pages = [
        client.get("/research/", REMOTE_ADDR=CLIENT_IP),
        client.post("/research/tokens/", {"name": "ci"}, REMOTE_ADDR=CLIENT_IP),
    ]
    client.force_login(who["other"])  # rejected: sees the reason, not who wrote it
    pages += [
        client.get("/research/", REMOTE_ADDR=CLIENT_IP),
        client.get("/research/apply/", REMOTE_ADDR=CLIENT_IP),
    ]
    for page in pages:
        assert page.status_code == 200
        # The page header (base.html) names the signed-in user to themselves; no one else.
        own = page.wsgi_request.user.get_username()
        assert not leaks(page.content.decode(), [n for n in everyone if n != own])
    assert "Say more." in pages[2].content.decode()
