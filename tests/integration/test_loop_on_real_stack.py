"""The loop on the real stack: PostgreSQL, Redis and a real Celery worker process.

Commands run as separate processes with REDIS_URL set, exactly as an operator runs them, so
import, embedding and training go through the queues to the worker.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from annotation.models import Judgment, TransitionRating, TransitionTask
from annotation.selectors import counted_judgments, counted_ratings
from embeddings.models import Clip, ClipEmbedding, Embedding, Rendering, Track
from training.models import Evaluation, ModelVersion, TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack_env(tmp_path: Path) -> dict:
    if connection.vendor != "postgresql":
        pytest.fail("the integration test needs DATABASE_URL pointing at PostgreSQL (make test)")
    redis_url = os.environ.get("ODDBALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(redis_url).flushdb()  # no stale messages from an earlier run
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "ODDBALL_MEDIA_ROOT": str(tmp_path / "media"),
        "SECRET_KEY": "integration-test-only",
        "PYTHONUNBUFFERED": "1",
    }
    return env


@pytest.fixture
def worker(stack_env: dict, tmp_path: Path):
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "ingest,embed,train",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=stack_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def manage(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_loop_runs_through_postgresql_redis_and_a_worker(
    stack_env, worker, generated_music, tmp_path
):
    started = time.monotonic()
    imported = manage(stack_env, "import_audio", str(generated_music), "--snippet-seconds", "10")
    assert imported["imported"] == 15 and imported["failed"] == 0
    # Import runs on the ingest queue; it asks the embed queue for each track's vectors.
    assert Track.objects.count() == 15

    manage(stack_env, "embed")
    assert Embedding.objects.filter(space="mel-stats@1").count() == imported["snippets"]

    manage(stack_env, "make_tasks", "--triplets", "120", "--seed", "1")
    crowd = manage(stack_env, "simulate_crowd", "--listeners", "8", "--judgments", "240")
    assert crowd["judgments"] == Judgment.objects.count() == 240

    trained = manage(stack_env, "train", "--steps", "30", "--pretrain-steps", "10")
    run = TrainingRun.objects.get()
    assert run.status == "done" and run.progress["step"] == 30
    assert run.progress["phase"] == "fine-tune"
    version = ModelVersion.objects.get(name="oddnet")
    pretrained = ModelVersion.objects.get(name="oddnet-pretrained")
    assert version.config["pretrained"] == pretrained.space
    assert trained["model"] == version.space
    assert Path(stack_env["ODDBALL_MEDIA_ROOT"], version.checkpoint).is_file()
    assert Evaluation.objects.filter(model_version=version).count() == 1  # after training

    evaluated = manage(stack_env, "evaluate")
    assert evaluated["n_triplets"] > 0
    assert {"mel_stats", "pretrained", "beats_mean", "previous_promoted", "retrieval"} <= set(
        evaluated
    )
    assert Evaluation.objects.count() == 2

    # Transitions: rendered on the ingest queue, rated through the API, transnet trained on
    # the train queue with the ratings.
    made = manage(stack_env, "make_tasks", "--triplets", "0", "--transitions", "20", "--seed", "2")
    tasks = TransitionTask.objects.all()
    assert sum(made["transitions"].values()) == tasks.count() > 0
    assert not tasks.filter(rendering__isnull=True).exists()
    for rendering in Rendering.objects.all():
        assert Path(stack_env["ODDBALL_MEDIA_ROOT"], rendering.audio.name).is_file()
    rated = manage(
        stack_env, "simulate_crowd", "--listeners", "4", "--judgments", "0", "--transitions", "30"
    )
    assert rated["ratings"] == TransitionRating.objects.count() == 30
    transnet = manage(stack_env, "train", "--transitions", "--steps", "20")
    run = TrainingRun.objects.get(model_name="transnet")
    assert run.status == "done" and transnet["model"] == "transnet@1"
    clips = Clip.objects.count()
    assert ClipEmbedding.objects.filter(space="transnet@1").count() == 2 * clips

    exported = manage(stack_env, "export_dataset", "--out", str(tmp_path / "export"))
    # Repeats (consistency checks) and flagged work are kept but not exported.
    assert exported["judgments"] == counted_judgments().count() > 200
    assert exported["transition_ratings"] == counted_ratings().count() > 0
    assert worker.poll() is None, "the worker died"
    assert time.monotonic() - started < 600
