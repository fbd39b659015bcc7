"""Property-based checks of the whole API against its own OpenAPI schema (/api/schema/).

schemathesis reads the schema from Django in-process (WSGI), generates requests for every
operation, as a researcher (token) and as a listener (token), and checks each response:
no server error, a documented status code, a documented content type, a body that
matches the documented schema. Path ids are drawn freely and, in a second run, pinned to
real objects, so detail endpoints answer 200 as well as 404.
"""

import functools
import re
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.models import Listener
from annotation.research import api_token_create
from embeddings.models import Embedding
from tests.factories import listener_make, model_version_make, track_make, triplet_make, user_make

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 12  # per operation, role and run: the whole module stays under ~2 minutes
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _operations() -> list[tuple[str, str]]:
    """Every operation of the schema, read from drf-spectacular without a request."""
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted((method.upper(), path) for path, ops in paths.items() for method in ops)


OPERATIONS = _operations()
RESEARCH_PATHS = {
    "/api/v1/tracks/",
    "/api/v1/tracks/{track_id}/",
    "/api/v1/snippets/{snippet_id}/",
    "/api/v1/snippets/{snippet_id}/embeddings/",
    "/api/v1/models/",
    "/api/v1/models/{space}/",
    "/api/v1/models/{space}/files/{kind}/",
}


def _case(method: str, path: str, role: str) -> object:
    return pytest.param(method, path, role, id=f"{role}-{method}-{path}")


@pytest.fixture
def wsgi_app() -> None:
    """Keep the test's database connection open across WSGI requests (as Django's test
    client does): closing it would end the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(settings, _media_root: Path) -> dict:
    """A few real objects for path ids, a researcher's token and a listener's token."""
    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    # Rate limits would turn long runs into 429s; they have their own tests.
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates),
    }
    tracks = [track_make(), track_make(split="test")]
    triplet_make()
    snippet = tracks[0].snippets.first()
    vector = np.arange(8, dtype="<f4")
    Embedding.objects.create(snippet=snippet, space="mel-stats@1", dim=8, vector=vector.tobytes())
    (_media_root / "models").mkdir(parents=True)
    (_media_root / "models" / "oddnet-1.onnx").write_bytes(b"onnx")
    version = model_version_make(artifacts={"onnx": "models/oddnet-1.onnx"})
    researcher = user_make("researcher", email="someone@example.org")
    listener = listener_make()
    return {
        "ids": {
            "track_id": tracks[0].id,
            "snippet_id": snippet.id,
            "space": version.space,
            "kind": "onnx",
        },
        "researcher": {"Authorization": f"Bearer {api_token_create(researcher, 't').secret}"},
        "listener": {"Authorization": f"Listener {listener.token}"},
    }


@functools.cache
def _schema() -> schemathesis.BaseSchema:
    """Loaded once: generating it is the slow part. Its app is a plain WSGI handler; the
    `wsgi_app` fixture keeps connections open around every call."""
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def _run(
    method: str, path: str, headers: dict, pinned: dict | None, query: dict | None = None
) -> set[int]:
    """Run the checks on generated requests; the status codes seen."""
    operation = _schema()[path][method]
    seen: set[int] = set()
    strategy = operation.as_strategy(path_parameters=pinned, query=query)

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: schemathesis.Case) -> None:
        seen.add(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

    check()
    return seen


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [_case(m, p, role) for m, p in OPERATIONS for role in ("researcher", "listener")],
)
def test_every_operation_answers_as_its_schema_says(method, path, role, world, wsgi_app):
    seen = _run(method, path, world[role], None)
    pinned = {k: v for k, v in world["ids"].items() if "{" + k + "}" in path}
    if pinned:
        query = {"space": "mel-stats@1"} if path.endswith("/embeddings/") else None
        seen |= _run(method, path, world[role], pinned, query)
    if path in RESEARCH_PATHS:  # the tokens really were used: served, or refused
        assert (200 in seen) if role == "researcher" else (seen == {401}), seen


def test_the_schema_lists_every_research_endpoint_with_its_security():
    routes = {p for _, p in OPERATIONS}
    assert routes >= RESEARCH_PATHS
    schema = SchemaGenerator().get_schema(request=None, public=True)
    schemes = schema["components"]["securitySchemes"]
    assert schemes["researchToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "odb_<secret>",
        "description": schemes["researchToken"]["description"],
    }
    assert {"listenerToken", "listenerCookie"} <= set(schemes)
    tracks = schema["paths"]["/api/v1/tracks/"]["get"]
    assert {"researchToken": []} in tracks["security"]
    assert {"200", "400", "401", "403", "429"} <= set(tracks["responses"])


def test_the_api_docs_load_nothing_from_another_site(client):
    page = client.get("/api/docs/").content.decode()
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    assert urls, "the page references its assets"
    assert not [u for u in urls if re.match(r"^(https?:)?//", u)], urls
    assert "cdn" not in page.lower()
    for url in urls:
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url


def test_listener_tokens_and_research_tokens_are_not_confused(client, world):
    listener_header = world["listener"]["Authorization"].replace("Listener ", "Bearer ")
    assert client.get("/api/v1/tracks/", headers={"Authorization": listener_header}).json()[
        "code"
    ] in ("authentication_failed", "invalid_token")
    research_secret = world["researcher"]["Authorization"].split(" ", 1)[1]
    me = client.get(
        "/api/v1/listeners/me/", headers={"Authorization": f"Listener {research_secret}"}
    )
    assert me.status_code == 401
    assert not Listener.objects.filter(token=research_secret).exists()
