"""The research API's tracks, snippets and embeddings: what researchers see, what they never
see (hidden or unapproved tracks, anyone's account), and how it refuses."""

import numpy as np
import pytest

from annotation import research, roles
from embeddings.models import Embedding, Track
from tests.factories import track_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> dict[str, str]:
    user = user_make(roles.RESEARCHER, email="ada@example.org")
    return {"Authorization": f"Bearer {research.api_token_create(user, 'laptop').secret}"}


def licensed(license: str, attribution: str = "Artist", **fields: object) -> Track:
    """track_make() with this licence and attribution (it sets its own)."""
    track = track_make(**fields)
    Track.objects.filter(id=track.id).update(license=license, attribution=attribution)
    track.refresh_from_db()
    return track


def get(client, url: str, token: dict, **query: object) -> tuple[int, dict]:
    response = client.get(url, query, headers=token)
    return response.status_code, response.json()


def test_tracks_come_a_page_at_a_time_with_links(client, token):
    tracks = [track_make() for _ in range(5)]
    status, body = get(client, "/api/v1/tracks/", token, limit=2)
    assert status == 200 and body["count"] == 5
    assert [t["id"] for t in body["results"]] == [t.id for t in tracks[:2]]
    assert body["previous"] is None and "offset=2" in body["next"]
    last = client.get(body["next"].replace("offset=2", "offset=4"), headers=token).json()
    assert [t["id"] for t in last["results"]] == [tracks[4].id] and last["next"] is None
    assert "offset=2" in last["previous"]


def test_tracks_filter_by_split_source_and_licence(client, token):
    wanted = licensed("CC-BY-SA-3.0", split="test", source="hedgewars")
    licensed("CC-BY-SA-3.0", split="test", source="wesnoth")
    track_make(split="train", source="hedgewars")
    query = {"split": "test", "source": "hedgewars", "license": "CC-BY-SA-3.0"}
    _, body = get(client, "/api/v1/tracks/", token, **query)
    assert [t["id"] for t in body["results"]] == [wanted.id]


def test_hidden_and_unapproved_tracks_never_appear(client, token):
    shown = track_make()
    hidden = track_make(hidden=True)
    pending = track_make(status=Track.Status.PENDING)
    _, body = get(client, "/api/v1/tracks/", token)
    assert [t["id"] for t in body["results"]] == [shown.id]
    for track in (hidden, pending):
        status, reason = get(client, f"/api/v1/tracks/{track.id}/", token)
        assert status == 404 and reason["code"] == "not_found"
        snippet = track.snippets.first()
        assert get(client, f"/api/v1/snippets/{snippet.id}/", token)[0] == 404


def test_a_track_has_its_licence_attribution_and_visible_snippets(client, token):
    track = licensed("CC-BY-4.0", "Someone, 2020", snippets=3)
    hidden = track.snippets.get(position=1)
    hidden.hidden = True
    hidden.save()
    status, body = get(client, f"/api/v1/tracks/{track.id}/", token)
    assert status == 200
    assert (body["license"], body["attribution"]) == ("CC-BY-4.0", "Someone, 2020")
    assert [s["position"] for s in body["snippets"]] == [0, 2]
    assert body["snippets"][0]["audio_url"].startswith("http://testserver/media/")
    assert get(client, f"/api/v1/snippets/{hidden.id}/", token)[0] == 404


def test_a_snippet_has_its_audio_licence_and_spaces(client, token):
    track = licensed("CC0-1.0")
    snippet = track.snippets.first()
    vector = np.linspace(-1, 1, 4, dtype="<f4")
    Embedding.objects.create(snippet=snippet, space="oddnet@2", dim=4, vector=vector.tobytes())
    status, body = get(client, f"/api/v1/snippets/{snippet.id}/", token)
    assert status == 200
    assert body["track"]["id"] == track.id and body["license"] == "CC0-1.0"
    assert body["audio_url"].endswith(snippet.audio.url) and body["spaces"] == ["oddnet@2"]
    status, embedding = get(
        client, f"/api/v1/snippets/{snippet.id}/embeddings/", token, space="oddnet@2"
    )
    assert status == 200 and embedding["dim"] == 4
    assert embedding["vector"] == pytest.approx(vector.tolist())


def test_a_missing_vector_is_a_404_naming_the_spaces_there_are(client, token):
    snippet = track_make().snippets.first()
    Embedding.objects.create(snippet=snippet, space="mel-stats@1", dim=1, vector=b"\0\0\0\0")
    status, body = get(
        client, f"/api/v1/snippets/{snippet.id}/embeddings/", token, space="oddnet@9"
    )
    assert status == 404 and "mel-stats@1" in body["detail"]


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        ("/api/v1/tracks/", {"limit": 0}, "limit"),
        ("/api/v1/tracks/", {"limit": "many"}, "limit"),
        ("/api/v1/tracks/", {"offset": -1}, "offset"),
        ("/api/v1/tracks/", {"offset": 2**40}, "offset"),
        ("/api/v1/tracks/", {"split": "holdout"}, "split"),
        ("/api/v1/snippets/1/embeddings/", {}, "space"),
        ("/api/v1/snippets/1/embeddings/", {"space": "not a space"}, "space"),
    ],
)
def test_bad_parameters_get_a_400_naming_the_field(client, token, url, query, field):
    status, body = get(client, url, token, **query)
    assert status == 400
    assert body["code"] == "invalid" and body["detail"].startswith(field)
    assert list(body["errors"]) == [field]


def test_unknown_ids_and_methods_answer_json(client, token):
    assert get(client, f"/api/v1/tracks/{2**62}/", token) == (
        404,
        {"detail": f"No public track {2**62}.", "code": "not_found"},
    )
    response = client.post("/api/v1/tracks/", {}, headers=token)
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"


def test_other_roles_are_refused_with_a_reason(client):
    assert get(client, "/api/v1/tracks/", {})[1]["code"] == "not_authenticated"
    client.force_login(user_make(roles.CURATOR))
    status, body = get(client, "/api/v1/tracks/", {})
    assert status == 403 and body["code"] == "permission_denied"


def test_requests_are_limited_per_researcher(client, token, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "research": "3/min",
        },
    }
    codes = [client.get("/api/v1/models/", headers=token).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/v1/models/", headers=token)
    assert refused.json()["code"] == "throttled" and refused.json()["wait_s"] > 0
    assert int(refused["Retry-After"]) > 0
