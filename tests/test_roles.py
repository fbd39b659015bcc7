"""The role matrix: every URL pattern of the project, pages and API alike, asked by every
role, against a declared expectation. A pattern missing from TABLE fails the test by
name, so a new page cannot slip in untested.

Roles: anonymous; a listener (the cookie, after consent); a listener with an account;
a curator; a researcher; an admin (superuser). Curators, researchers and admins here have
no listener cookie, so the listening API answers them 401 like anyone without a listener.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from annotation.auth import COOKIE
from annotation.models import DatasetRelease, Listener
from annotation.releases import release_cut
from embeddings.models import Clip, Track
from tests.factories import (
    assignment_make,
    clip_make,
    listener_make,
    model_version_make,
    rendering_make,
    track_make,
    transition_assignment_make,
    transition_task_make,
    triplet_make,
    user_make,
)
from training.models import ModelVersion

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "listener", "account", "curator", "researcher", "admin")
LOGIN, CONSENT, ADMIN_LOGIN = "login", "consent", "admin-login"  # redirects, by where to


@dataclass
class World:
    """Real objects for path parameters and bodies, made once per test."""

    track: Track
    clip_x: Clip
    clip_y: Clip
    version: ModelVersion
    media_path: str
    release: DatasetRelease
    others: Listener = field(init=False)

    def __post_init__(self) -> None:
        self.others = listener_make()  # owns the assignments roles without a listener name


@dataclass
class Asker:
    role: str
    client: Client
    listener: Listener | None
    world: World

    @property
    def someone(self) -> Listener:
        """The listener whose objects this role asks about: its own, else another's."""
        return self.listener or self.world.others


def world_make(media_root: Path) -> World:
    track = track_make()
    clip_x, clip_y = clip_make(track), clip_make(track_make(snippets=0))
    rendering_make(clip_x, clip_y)
    triplet_make()
    transition_task_make()
    (media_root / "models").mkdir(parents=True)
    (media_root / "models" / "oddnet-1.onnx").write_bytes(b"onnx")
    version = model_version_make(artifacts={"onnx": "models/oddnet-1.onnx"})
    (media_root / "snippets").mkdir()
    (media_root / "snippets" / "x.ogg").write_bytes(b"OggS")  # public media, unlike models/
    release = release_cut(None, {})  # a finished (empty) dataset release
    return World(track, clip_x, clip_y, version, "snippets/x.ogg", release)


def asker_make(role: str, world: World) -> Asker:
    client, listener = Client(), None
    if role == "listener":
        client.post("/consent/", {"consent": "yes"})
        listener = Listener.objects.get(token=client.cookies[COOKIE].value)
    elif role == "account":
        user = user_make()
        listener = listener_make(user=user)
        client.force_login(user)
        client.cookies[COOKIE] = listener.token
    elif role != "anonymous":
        client.force_login(user_make(role))
    return Asker(role, client, listener, world)


# Requests ------------------------------------------------------------------------------------

Request = Callable[[Asker], object]


def get(url: str | Callable[[Asker], str]) -> Request:
    return lambda a: a.client.get(url(a) if callable(url) else url)


def post(url: str | Callable[[Asker], str], body: Callable[[Asker], dict] | None = None) -> Request:
    def ask(a: Asker) -> object:
        target = url(a) if callable(url) else url
        data = body(a) if body else {}
        return a.client.post(target, data, content_type="application/json")

    return ask


def post_form(url: str, data: dict | None = None) -> Request:
    return lambda a: a.client.post(url, data or {})


def judgment(a: Asker) -> dict:
    return {
        "assignment": assignment_make(a.someone).id,
        "answer": "A",
        "response_ms": 15_000,
        "listen_ms": [5000, 5000, 5000],
    }


def rating(a: Asker) -> dict:
    return {
        "assignment": transition_assignment_make(a.someone).id,
        "rating": 4,
        "response_ms": 12_000,
        "listen_ms": 11_000,
    }


# Expectations --------------------------------------------------------------------------------


def everyone(outcome: int | str) -> dict[str, int | str]:
    return dict.fromkeys(ROLES, outcome)


def listeners(outcome: int | str, others: int | str = 401) -> dict[str, int | str]:
    """The listening pages and API: a listener, with or without an account."""
    return {**everyone(others), "listener": outcome, "account": outcome}


def signed_in(allowed: tuple[str, ...], outcome: int | str) -> dict[str, int | str]:
    """Pages for some signed-in roles: the login page for visitors without an account,
    403 for accounts without the role."""
    table = {**everyone(403), "anonymous": LOGIN, "listener": LOGIN}
    return table | dict.fromkeys(allowed, outcome)


CURATORS = ("curator", "admin")
MODEL_TAKERS = ("curator", "researcher", "admin")


def curators(outcome: int | str = 200) -> dict[str, int | str]:
    return signed_in(CURATORS, outcome)


# Route (as the resolver spells it) -> (request, expected outcome by role). An outcome is a
# status code or one of the redirects: LOGIN, CONSENT, ADMIN_LOGIN or a path.
READERS = ("researcher", "admin")  # who may take dataset releases
RELEASE_API = signed_in(READERS, 200) | {"anonymous": 401, "listener": 403}

TABLE: dict[str, tuple[Request, dict[str, int | str]]] = {
    # Listener pages
    "": (get("/"), everyone(200)),
    "consent/": (get("/consent/"), everyone(200)),
    "listen/": (get("/listen/"), listeners(200, CONSENT)),
    "listen/transitions/": (get("/listen/transitions/"), listeners(200, CONSENT)),
    "listen/instructions/": (get("/listen/instructions/"), listeners(200, CONSENT)),
    "listen/history/": (get("/listen/history/"), listeners(200, CONSENT)),
    "accounts/signup/": (get("/accounts/signup/"), everyone(200)),
    "accounts/login/": (get("/accounts/login/"), everyone(200)),
    "accounts/logout/": (post_form("/accounts/logout/"), everyone("/")),
    "tracks/<int:track_id>/next/": (
        get(lambda a: f"/tracks/{a.world.track.id}/next/"),
        everyone(200),
    ),
    # Curators
    "curate/": (get("/curate/"), curators()),
    "curate/act/": (post_form("/curate/act/", {"action": "none"}), curators("/curate/")),
    "curate/listeners/": (get("/curate/listeners/"), curators()),
    "curate/listeners/<int:listener_id>/": (
        get(lambda a: f"/curate/listeners/{a.world.others.id}/"),
        curators(),
    ),
    "curate/judgments/": (get("/curate/judgments/"), curators()),
    "curate/reports/": (get("/curate/reports/"), curators()),
    "curate/tracks/": (get("/curate/tracks/"), curators()),
    "curate/tracks/<int:track_id>/": (
        get(lambda a: f"/curate/tracks/{a.world.track.id}/"),
        curators(),
    ),
    "curate/audit/": (get("/curate/audit/"), curators()),
    "curate/upload/": (get("/curate/upload/"), curators()),
    "dashboard/": (get("/dashboard/"), curators()),
    "dashboard/retrain/": (post_form("/dashboard/retrain/"), curators("/dashboard/")),
    "dashboard/train-transitions/": (
        post_form("/dashboard/train-transitions/"),
        curators("/dashboard/"),
    ),
    "dashboard/promote/<int:version_id>/": (
        lambda a: a.client.post(f"/dashboard/promote/{a.world.version.id}/"),
        curators("/dashboard/"),
    ),
    # Curators and researchers
    "models/": (get("/models/"), signed_in(MODEL_TAKERS, 200)),
    "models/<str:space>/<str:kind>/": (
        get(lambda a: f"/models/{a.world.version.space}/onnx/"),
        signed_in(MODEL_TAKERS, 200),
    ),
    # The listening API
    "api/v1/listeners/": (post("/api/v1/listeners/", lambda a: {"consent": True}), everyone(201)),
    "api/v1/listeners/me/": (get("/api/v1/listeners/me/"), listeners(200)),
    "api/v1/assignments/next/": (get("/api/v1/assignments/next/"), listeners(200)),
    "api/v1/assignments/<int:assignment_id>/skip/": (
        post(
            lambda a: f"/api/v1/assignments/{assignment_make(a.someone).id}/skip/",
            lambda a: {"reason": "other"},
        ),
        listeners(200),
    ),
    "api/v1/judgments/": (post("/api/v1/judgments/", judgment), listeners(201)),
    "api/v1/reports/": (
        post(
            "/api/v1/reports/",
            lambda a: {
                "snippet": assignment_make(a.someone).triplet.snippet_a_id,
                "reason": "silent",
            },
        ),
        listeners(201),
    ),
    "api/v1/transitions/next/": (get("/api/v1/transitions/next/"), listeners(200)),
    "api/v1/transitions/<int:assignment_id>/skip/": (
        post(
            lambda a: f"/api/v1/transitions/{transition_assignment_make(a.someone).id}/skip/",
            lambda a: {"reason": "other"},
        ),
        listeners(200),
    ),
    "api/v1/transitions/ratings/": (post("/api/v1/transitions/ratings/", rating), listeners(201)),
    # What plays next: public. No clip index exists here, so ranking answers 409 for all.
    "api/v1/tracks/<int:track_id>/next/": (
        get(lambda a: f"/api/v1/tracks/{a.world.track.id}/next/"),
        everyone(409),
    ),
    "api/v1/transitions/render/": (
        get(
            lambda a: f"/api/v1/transitions/render/?from={a.world.clip_x.id}&to={a.world.clip_y.id}"
        ),
        everyone(200),
    ),
    # Site plumbing
    "api/schema/": (get("/api/schema/"), everyone(200)),
    "api/docs/": (get("/api/docs/"), everyone(200)),
    # -- releases and /datasets/ --
    # Releases are for researchers and admins; the API answers 401 without credentials and
    # 403 with any other (a listener cookie included).
    "datasets/": (get("/datasets/"), signed_in(READERS, 200)),
    "datasets/<int:number>/": (
        get(lambda a: f"/datasets/{a.world.release.number}/"),
        signed_in(READERS, 200),
    ),
    "datasets/<int:number>/files/<path:name>": (
        get(lambda a: f"/datasets/{a.world.release.number}/files/README.md"),
        signed_in(READERS, 200),
    ),
    "curate/releases/": (get("/curate/releases/"), curators()),
    "api/v1/releases/": (get("/api/v1/releases/"), RELEASE_API),
    "api/v1/releases/<int:number>/": (
        get(lambda a: f"/api/v1/releases/{a.world.release.number}/"),
        RELEASE_API,
    ),
    "api/v1/releases/<int:number>/files/<path:name>": (
        get(lambda a: f"/api/v1/releases/{a.world.release.number}/files/votes.csv"),
        RELEASE_API,
    ),
    "api/v1/releases/<int:number>/judgments/": (
        get(lambda a: f"/api/v1/releases/{a.world.release.number}/judgments/?page_size=5"),
        RELEASE_API,
    ),
    # -- researchers, tokens and the research API --
    "research/": (get("/research/"), {**everyone(200), "anonymous": LOGIN, "listener": LOGIN}),
    "research/apply/": (get("/research/apply/"), everyone(200)),
    "research/tokens/": (
        post_form("/research/tokens/", {"name": "laptop"}),
        {**everyone(400), "anonymous": LOGIN, "listener": LOGIN, "researcher": 200, "admin": 200},
    ),
    "research/tokens/<int:token_id>/revoke/": (  # no such token: back to the page, a message
        post_form("/research/tokens/999999/revoke/"),
        {**everyone("/research/"), "anonymous": LOGIN, "listener": LOGIN},
    ),
    "curate/researchers/": (get("/curate/researchers/"), curators()),
    "curate/researchers/<int:profile_id>/decide/": (
        post_form("/curate/researchers/999999/decide/", {"decision": "approve"}),
        curators("/curate/researchers/"),
    ),
    # The research API: researchers and admins, by session here (tokens: tests/annotation/
    # test_research_api.py); a listener cookie is no credential there.
    "api/v1/tracks/": (
        get("/api/v1/tracks/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    "api/v1/tracks/<int:track_id>/": (
        get(lambda a: f"/api/v1/tracks/{a.world.track.id}/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    "api/v1/snippets/<int:snippet_id>/": (
        get(lambda a: f"/api/v1/snippets/{a.world.track.snippets.first().id}/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    "api/v1/snippets/<int:snippet_id>/embeddings/": (  # no `space`: 400 with a reason
        get(lambda a: f"/api/v1/snippets/{a.world.track.snippets.first().id}/embeddings/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 400, "admin": 400},
    ),
    "api/v1/models/": (
        get("/api/v1/models/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    "api/v1/models/<str:space>/": (
        get(lambda a: f"/api/v1/models/{a.world.version.space}/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    "api/v1/models/<str:space>/files/<str:kind>/": (
        get(lambda a: f"/api/v1/models/{a.world.version.space}/files/onnx/"),
        {**everyone(403), "anonymous": 401, "listener": 401, "researcher": 200, "admin": 200},
    ),
    # -- similar tracks --
    # Open to everyone (throttled). The world's snippets have no vectors, so the API says 409.
    "similar/": (get("/similar/"), everyone(200)),
    "api/v1/similar/": (
        get(lambda a: f"/api/v1/similar/?snippet={a.world.track.snippets.first().id}"),
        everyone(409),
    ),
    # -- health and deployment (issue 8) --
    "healthz": (get("/healthz"), everyone(200)),
    # The embedded default of the test settings (no REDIS_URL): database ok, the rest "not
    # configured", so 200 for everyone alike.
    "readyz": (get("/readyz"), everyone(200)),
    "admin/": (get("/admin/"), {**everyone(ADMIN_LOGIN), "admin": 200}),
    "i18n/setlang/": (post_form("/i18n/setlang/", {"language": "en", "next": "/"}), everyone("/")),
    "media/<path:path>": (get(lambda a: f"/media/{a.world.media_path}"), everyone(200)),
}


def project_routes(patterns: list | None = None, prefix: str = "") -> set[str]:
    """Every URL pattern of the project as one route string; Django admin's as "admin/"."""
    routes = set()
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(p.pattern)
        assert isinstance(p.pattern, RoutePattern), f"{route}: describe it with path()"
        if route.startswith("admin/"):
            routes.add("admin/")
        elif isinstance(p, URLResolver):
            routes |= project_routes(p.url_patterns, route)
        else:
            assert isinstance(p, URLPattern)
            routes.add(route)
    return routes


def outcome_of(response: object) -> int | str:
    """The response as the table spells it."""
    if response.status_code != 302:
        return response.status_code
    url = response.url
    for prefix, name in (
        (settings.LOGIN_URL, LOGIN),
        ("/consent/", CONSENT),
        ("/admin/login/", ADMIN_LOGIN),
    ):
        if url.startswith(prefix):
            return name
    return url


def test_every_url_pattern_has_a_row_in_the_role_table():
    routes = project_routes()
    missing = sorted(routes - TABLE.keys())
    assert not missing, f"URL patterns missing from tests/test_roles.py TABLE: {missing}"
    stale = sorted(TABLE.keys() - routes)
    assert not stale, f"TABLE rows for URL patterns that no longer exist: {stale}"


@pytest.mark.parametrize("route", sorted(TABLE))
def test_each_role_gets_what_the_table_says(route: str, settings, _media_root: Path):
    ask, expected = TABLE[route]
    assert set(expected) == set(ROLES), f"{route}: the row must name every role"
    world = world_make(_media_root)
    wrong = []
    for role in ROLES:
        got = outcome_of(ask(asker_make(role, world)))
        if got != expected[role]:
            wrong.append(f"{role}: expected {expected[role]}, got {got}")
    assert not wrong, f"/{route}: " + "; ".join(wrong)


def test_the_staff_flag_alone_opens_no_role_page(client):
    client.force_login(user_make(is_staff=True))
    assert client.get("/dashboard/").status_code == 403
    assert client.get("/models/").status_code == 403


def test_the_roles_are_groups_with_permissions():
    from django.contrib.auth.models import Group

    from annotation import roles

    curator, researcher = user_make(roles.CURATOR), user_make(roles.RESEARCHER)
    assert roles.is_curator(curator) and not roles.is_researcher(curator)
    assert roles.is_researcher(researcher) and not roles.is_curator(researcher)
    assert roles.can_download_models(curator) and roles.can_download_models(researcher)
    assert researcher.has_perm(roles.USE_RESEARCH_API)
    assert not roles.is_curator(None) and not roles.is_researcher(user_make())
    names = set(Group.objects.values_list("name", flat=True))
    assert {roles.CURATOR, roles.RESEARCHER} <= names
    for name, codenames in roles.GROUP_PERMISSIONS.items():
        granted = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert granted == set(codenames)


def test_the_api_permission_answers_401_without_credentials_and_403_without_the_role():
    from rest_framework.response import Response
    from rest_framework.test import APIRequestFactory, force_authenticate
    from rest_framework.views import APIView

    from annotation.roles import IsCurator, IsResearcher

    class CuratorsOnly(APIView):
        permission_classes = [IsCurator]

        def get(self, request: object) -> Response:
            return Response({})

    class ResearchersOnly(CuratorsOnly):
        permission_classes = [IsResearcher]

    def status(view: type[APIView], user: object = None) -> int:
        request = APIRequestFactory().get("/")
        if user is not None:
            force_authenticate(request, user=user)
        return view.as_view()(request).status_code

    curator, researcher = user_make("curator"), user_make("researcher")
    assert status(CuratorsOnly) == 401
    assert status(CuratorsOnly, researcher) == 403
    assert status(CuratorsOnly, curator) == 200
    assert status(ResearchersOnly, curator) == 403
    assert status(ResearchersOnly, researcher) == 200
    assert status(ResearchersOnly, user_make("admin")) == 200
