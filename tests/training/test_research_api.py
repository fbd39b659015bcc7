"""The research API's model registry: versions, their evaluation and files with SHA-256."""

import hashlib
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation import research, roles
from tests.factories import model_version_make, user_make
from training.models import Evaluation

pytestmark = pytest.mark.django_db


@pytest.fixture
def token() -> dict[str, str]:
    user = user_make(roles.RESEARCHER)
    return {"Authorization": f"Bearer {research.api_token_create(user, 'laptop').secret}"}


@pytest.fixture
def oddnet(_media_root: Path) -> object:
    folder = _media_root / "models"
    folder.mkdir(parents=True)
    (folder / "oddnet-1.onnx").write_bytes(b"onnx bytes")
    (folder / "oddnet-1.json").write_text("{}")
    version = model_version_make(
        artifacts={"onnx": "models/oddnet-1.onnx", "json": "models/oddnet-1.json"}
    )
    version.metrics = {"final_loss": 0.25, "steps": 300, "curve": [1, 2, 3]}
    version.promoted = True
    version.save()
    return version


def test_models_list_versions_with_files_and_their_sha256(client, token, oddnet):
    model_version_make("beats-head")
    response = client.get("/api/v1/models/", headers=token)
    assert response.status_code == 200
    body = response.json()
    assert [m["space"] for m in body["results"]] == ["beats-head@1", "oddnet@1"]
    listed = body["results"][1]
    assert listed["promoted"] is True
    assert listed["metrics"] == {"final_loss": 0.25, "steps": 300}  # scalars only
    onnx = next(a for a in listed["artifacts"] if a["kind"] == "onnx")
    assert onnx["sha256"] == hashlib.sha256(b"onnx bytes").hexdigest() and onnx["bytes"] == 10
    download = client.get(onnx["url"], headers=token)
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == onnx["sha256"]


def test_models_filter_by_name_and_promotion(client, token, oddnet):
    model_version_make("beats-head")
    body = client.get("/api/v1/models/", {"promoted": "true"}, headers=token).json()
    assert [m["space"] for m in body["results"]] == ["oddnet@1"]
    body = client.get("/api/v1/models/", {"name": "beats-head"}, headers=token).json()
    assert [m["space"] for m in body["results"]] == ["beats-head@1"]


def test_a_model_version_shows_its_latest_held_out_evaluation(client, token, oddnet):
    results = {"agreement": 0.8, "ci_low": 0.7, "ci_high": 0.9, "n_triplets": 81, "n_votes": 300}
    Evaluation.objects.create(space=oddnet.space, model_version=oddnet, results=results)
    body = client.get("/api/v1/models/oddnet@1/", headers=token).json()
    evaluation = body["evaluation"]
    assert (evaluation["agreement"], evaluation["n_triplets"]) == (0.8, 81)
    assert evaluation["ceiling"] is None and evaluation["split"] == "test"


def test_a_missing_file_is_listed_without_a_hash_and_downloads_as_a_404(client, token):
    model_version_make(artifacts={"onnx": "models/gone.onnx"})
    body = client.get("/api/v1/models/oddnet@1/", headers=token).json()
    assert body["artifacts"][0]["sha256"] is None
    missing = client.get("/api/v1/models/oddnet@1/files/onnx/", headers=token)
    assert missing.status_code == 404 and "missing" in missing.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/models/oddnet@2/",
        "/api/v1/models/oddnet/",
        "/api/v1/models/oddnet@99999999999999999999/",
        "/api/v1/models/oddnet@1/files/pickle/",
    ],
)
def test_unknown_versions_and_files_are_404_with_a_reason(client, token, oddnet, url):
    response = client.get(url, headers=token)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found" and response.json()["detail"]


def test_a_file_downloads_whatever_the_client_accepts(client, token, oddnet):
    url = "/api/v1/models/oddnet@1/files/onnx/"
    accept = {"Accept": "application/octet-stream"}
    assert client.get(url, headers=token | accept).status_code == 200
    missing = client.get("/api/v1/models/oddnet@1/files/zip/", headers=token | accept)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_model_files_need_a_researcher(client, oddnet):
    assert client.get("/api/v1/models/oddnet@1/files/onnx/").status_code == 401


def test_listing_models_costs_the_same_queries_for_one_version_or_many(client, token):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/v1/models/", headers=token).status_code == 200
        return len(captured)

    queries()  # the token's first use is recorded once: not part of the listing
    Evaluation.objects.create(space="x", model_version=model_version_make(), results={})
    one = queries()
    for _ in range(3):
        Evaluation.objects.create(space="x", model_version=model_version_make(), results={})
    assert queries() == one
