"""Shared fixtures: a private media root per test, in-process Celery, generated music."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings.MEDIA_ROOT


@pytest.fixture(scope="session")
def generated_music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fifteen generated 32 s tracks with a MANIFEST.csv: enough for 9/3/3 tracks per split."""
    from embeddings.demo_music import generate

    folder = tmp_path_factory.mktemp("music")
    generate(folder, n_tracks=15, duration_s=32.0, seed=1)
    return folder


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"real-music corpus not found at {CORPUS} (../shared/corpus)")
    return CORPUS


@pytest.fixture(autouse=True)
def _rate_limits_forgotten() -> None:
    """Rate-limit counters live in the cache; each test starts with none spent."""
    from django.core.cache import cache

    cache.clear()
