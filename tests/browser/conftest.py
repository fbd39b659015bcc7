"""Real-browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live
server, with real snippets cut once per session from ../shared/corpus.

Browser tests need `live_server`, hence `transactional_db`, whose tables are flushed after every
test. Importing audio is slow, so `imported_snippets` imports once per session inside a
transaction it rolls back on purpose, keeping the files and the rows' values; `listening_data`
puts those rows back in a few milliseconds for each test. Transitions go the same way:
`rendered_transitions` renders once per session, `transition_data` restores the rows.
"""

import csv
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management.color import no_style
from django.db import connection, transaction
from django.test import override_settings
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    sync_playwright,
)
from pytest_django import DjangoDbBlocker, Settings
from pytest_django.live_server_helper import LiveServer

from annotation.models import TransitionTask, Triplet
from annotation.services import triplets_make
from annotation.transition_services import transition_task_render, transition_tasks_make
from embeddings.audio import SUPPORTED_SUFFIXES
from embeddings.models import Clip, Rendering, Snippet, Split, Track
from embeddings.services import track_import

# Playwright's sync API runs an event loop in this thread; Django would refuse ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = REPO / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "browser"
# The flags Chromium needs on a closed network, as root, without a display; autoplay so a
# test can start audio without a click.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
N_TRACKS = 8
MIN_TRACK_S = 20.0  # s; shorter files give no 15 s snippet
N_TRIPLETS = 40
MIN_RANDOM_TRIPLETS = 20
MIN_GOLD_TRIPLETS = 4
N_TRANSITIONS = 10  # half random pairs, half true continuations; styles drawn at random


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees the whole session's items; mark only the ones under tests/browser.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: `make system` installs Debian's chromium")
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@dataclass(frozen=True)
class ImportedSnippets:
    """Rows of a rolled-back import, as field values, and the media folder holding their files."""

    media_root: Path
    tracks: list[dict]
    snippets: list[dict]
    clips: list[dict]


def _corpus_files() -> list[Path]:
    """The shortest corpus recordings that still give a snippet, one per piece (the corpus's
    "_fast" versions repeat a piece)."""
    with (CORPUS / "MANIFEST.csv").open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if float(r["duration_s"]) >= MIN_TRACK_S]
    rows = [r for r in rows if not Path(r["path"]).stem.endswith("_fast")]
    rows.sort(key=lambda r: float(r["duration_s"]))
    return [CORPUS / r["path"] for r in rows[:N_TRACKS]]


@pytest.fixture(scope="session")
def imported_snippets(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
) -> ImportedSnippets:
    """Eight real recordings (generated music without the corpus) cut into snippets once.

    Use it through `listening_data`: pytest-django creates the test database only for a
    session with tests that ask for one.
    """
    if CORPUS.is_dir():
        files = _corpus_files()
    else:
        folder = request.getfixturevalue("generated_music")
        files = sorted(p for p in folder.iterdir() if p.suffix in SUPPORTED_SUFFIXES)[:N_TRACKS]
    media_root = tmp_path_factory.mktemp("browser_media")

    class Rollback(Exception):
        pass

    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media_root):
        try:
            with transaction.atomic():
                outcomes = [track_import(path) for path in files]
                failed = [o for o in outcomes if o.status != "imported"]
                assert not failed, f"the browser-test music did not import: {failed}"
                tracks = list(Track.objects.values())
                snippets = list(Snippet.objects.values())
                clips = list(Clip.objects.values())
                raise Rollback
        except Rollback:
            pass
    return ImportedSnippets(media_root=media_root, tracks=tracks, snippets=snippets, clips=clips)


def _rows_restore(model: type, rows: list[dict], **fields: object) -> list:
    """Insert rows by their field values (ids included) and keep the id sequence ahead."""
    made = model.objects.bulk_create(model(**{**row, **fields}) for row in rows)
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(sql)
    return made


@dataclass(frozen=True)
class ListeningData:
    tracks: list[Track]
    snippets: list[Snippet]
    triplets: list[Triplet]


@pytest.fixture
def listening_data(
    transactional_db: None,
    _media_root: Path,
    settings: Settings,
    imported_snippets: ImportedSnippets,
) -> ListeningData:
    """The session's tracks and snippets (same ids) with files on disk, all approved and in
    the train split, and enough random and gold triplets for a listener to work through."""
    settings.MEDIA_ROOT = imported_snippets.media_root  # after the autouse per-test media root
    # One split for all: of 8 tracks the 60/20/20 split leaves val and test one or two each,
    # too few for random triplets (three tracks).
    tracks = _rows_restore(
        Track, imported_snippets.tracks, status=Track.Status.APPROVED, split=Split.TRAIN
    )
    snippets = _rows_restore(Snippet, imported_snippets.snippets)
    triplets_make(N_TRIPLETS, gold_share=0.25, seed=1)
    triplets = list(Triplet.objects.all())
    kinds = Counter(t.kind for t in triplets)
    assert kinds[Triplet.Kind.RANDOM] >= MIN_RANDOM_TRIPLETS, kinds
    assert kinds[Triplet.Kind.GOLD] >= MIN_GOLD_TRIPLETS, kinds
    return ListeningData(tracks=tracks, snippets=snippets, triplets=triplets)


@dataclass(frozen=True)
class RenderedTransitions:
    """Rows of rolled-back transition tasks and their renderings, as field values; the
    rendered files stay in the session's media folder."""

    renderings: list[dict]
    tasks: list[dict]


@pytest.fixture(scope="session")
def rendered_transitions(
    imported_snippets: ImportedSnippets, django_db_blocker: DjangoDbBlocker
) -> RenderedTransitions:
    """About ten transition tasks between the session's clips, rendered once, in every style.

    Random pairs and true continuations only: a model-proposed pair needs a trained index,
    and the page never shows which kind a task is anyway."""

    class Rollback(Exception):
        pass

    media_root = imported_snippets.media_root
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media_root):
        try:
            with transaction.atomic():
                Track.objects.bulk_create(
                    Track(**{**row, "status": Track.Status.APPROVED, "split": Split.TRAIN})
                    for row in imported_snippets.tracks
                )
                Clip.objects.bulk_create(Clip(**row) for row in imported_snippets.clips)
                shares = {"model": 0.0, "random": 0.5, "true": 0.5}
                tasks = transition_tasks_make(N_TRANSITIONS, shares, seed=3)
                # Styles are drawn at random: top up until each has been drawn.
                for seed in range(4, 10):
                    if {t.style for t in tasks} == set(Rendering.Style.values):
                        break
                    tasks += transition_tasks_make(2, shares, seed=seed)
                for task in tasks:
                    transition_task_render(task.id)
                renderings = list(Rendering.objects.values())
                task_rows = list(TransitionTask.objects.values())
                raise Rollback
        except Rollback:
            pass
    styles = {row["style"] for row in renderings}
    assert len(task_rows) >= N_TRANSITIONS, task_rows
    assert styles == set(Rendering.Style.values), styles
    return RenderedTransitions(renderings=renderings, tasks=task_rows)


@pytest.fixture
def transition_data(
    listening_data: ListeningData,
    imported_snippets: ImportedSnippets,
    rendered_transitions: RenderedTransitions,
) -> list[TransitionTask]:
    """The session's clips, renderings and transition tasks (same ids), with files on disk."""
    _rows_restore(Clip, imported_snippets.clips)
    _rows_restore(Rendering, rendered_transitions.renderings)
    return _rows_restore(TransitionTask, rendered_transitions.tasks)


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's live server, with /media/ left to the project's own view.

    Django's live server thread answers MEDIA_URL itself with `django.views.static.serve`,
    which ignores Range requests; browsers need them to seek in Ogg and measure its length.
    The thread builds its handler as it starts, and that handler stands aside when MEDIA_URL
    names another host, so it starts under such a MEDIA_URL.
    """
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = LiveServer(addr, start=False)
    with override_settings(MEDIA_URL="http://media.invalid/"):
        server.start()
    yield server
    server.stop()


@pytest.fixture
def site_url(live_server: LiveServer, listening_data: ListeningData) -> str:
    """The live server's address, with listening data in place and media served from it."""
    return live_server.url


@pytest.fixture
def transitions_url(live_server: LiveServer, transition_data: list[TransitionTask]) -> str:
    """The live server's address, with rendered transitions in place."""
    return live_server.url


@pytest.fixture
def new_page(chromium_browser: Browser) -> Iterator[Callable[..., Page]]:
    """A factory: `new_page(viewport=(390, 844), locale="fr")` opens a page in a fresh context.

    Touch and mobile emulation come on below 600 px wide. Console errors and uncaught page
    errors collect in `page.errors`, for a test to assert on.
    """
    contexts: list[BrowserContext] = []

    def make(viewport: tuple[int, int] = (1280, 800), locale: str = "en-US") -> Page:
        width, height = viewport
        small = width < 600
        context = chromium_browser.new_context(
            viewport={"width": width, "height": height},
            locale=locale,
            has_touch=small,
            is_mobile=small,
        )
        context.set_default_timeout(10_000)  # ms; fail fast instead of Playwright's 30 s
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            url = message.location.get("url", "")
            # Chromium asks for /favicon.ico by itself when a page names no icon.
            if message.type == "error" and not url.endswith("/favicon.ico"):
                errors.append(f"console: {message.text}" + (f" ({url})" if url else ""))

        page.on("console", on_console)
        page.on("pageerror", lambda error: errors.append(f"page: {error}"))
        page.errors = errors
        # Requests that reach the server's views; teardown waits for them (see below).
        pending: set[Request] = set()

        def on_request(request: Request) -> None:
            if request.resource_type in SERVER_WORK:
                pending.add(request)

        def on_done(request: Request) -> None:
            pending.discard(request)

        page.on("request", on_request)
        page.on("requestfinished", on_done)
        page.on("requestfailed", on_done)
        page.pending_requests = pending
        return page

    yield make
    for context in contexts:
        for page in context.pages:
            _requests_settle(page)
        context.close()


SERVER_WORK = {"document", "fetch", "xhr"}


def _requests_settle(page: Page, timeout_s: float = 5.0) -> None:
    """Wait until the page's requests have been answered. A page that is still fetching
    ahead when its test ends would otherwise hold row locks in the live server while the
    test's tables are truncated: PostgreSQL then reports a deadlock, or the request meets
    a database that is already blocked again."""
    deadline = time.monotonic() + timeout_s
    while page.pending_requests and time.monotonic() < deadline:
        page.wait_for_timeout(20)


def screenshot_save(page: Page, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/browser/<name>.png; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def axe_serious_violations(page: Page) -> list[dict]:
    """WCAG 2 A/AA violations of serious or critical impact on the page, as id, help and the
    first few target selectors."""
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: `make axe` installs axe-core")
    page.add_script_tag(path=AXE_JS)
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})"
    )
    return [
        {
            "id": v["id"],
            "help": v["help"],
            "targets": [" ".join(map(str, n["target"])) for n in v["nodes"][:3]],
        }
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.fixture
def shoot() -> Callable[[Page, str], Path]:
    return screenshot_save


@pytest.fixture
def axe_violations() -> Callable[[Page], list[dict]]:
    return axe_serious_violations
