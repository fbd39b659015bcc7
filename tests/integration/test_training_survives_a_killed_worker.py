"""A Celery worker killed with SIGKILL in the middle of training: the run is sent again by
the sweep, a new worker takes it over, and it resumes from its last checkpoint instead of
starting over. Real PostgreSQL, Redis and worker processes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import torch
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
REPO = Path(__file__).resolve().parents[2]
STALE_S = 3  # s of worker silence after which the sweep may hand the run to another worker


@pytest.fixture
def stack_env() -> dict:
    if connection.vendor != "postgresql":
        pytest.fail("the integration test needs DATABASE_URL pointing at PostgreSQL (make test)")
    redis_url = os.environ.get("ODDBALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(redis_url).flushdb()
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "ODDBALL_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "ODDBALL_TRAINING_STALE_S": str(STALE_S),
        "SECRET_KEY": "integration-test-only",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "train,embed",
         "--pool", "solo", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip


def send(env: dict, task: str, *args: int) -> None:
    argv = [sys.executable, "-m", "celery", "-A", "config", "call", task, "--queue", "train"]
    if args:
        argv += ["--args", str(list(args))]
    subprocess.run(argv, cwd=REPO, env=env, check=True, capture_output=True, timeout=60)


def wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_a_killed_training_worker_is_replaced_and_the_run_resumes_from_its_checkpoint(
    stack_env, generated_music, tmp_path
):
    call_command("import_audio", str(generated_music), "--snippet-seconds", "10")
    call_command("make_tasks", "--triplets", "120", "--seed", "1")
    call_command("simulate_crowd", "--listeners", "8", "--judgments", "240", "--seed", "1")
    run = services.training_run_create(
        {
            "steps": 240,
            "checkpoint_every": 20,
            "log_every": 5,
            "pretrain": {"steps": 10, "checkpoint_every": 5},
        },
        reason="kill test",
    )
    first = start_worker(stack_env, tmp_path / "worker-1.log")
    try:
        send(stack_env, "training.train_model", run.id)

        def fine_tuning_past_a_checkpoint() -> bool:
            run.refresh_from_db()
            return run.progress.get("phase") == "fine-tune" and run.progress["step"] >= 50

        wait_for(fine_tuning_past_a_checkpoint, 300, "fine-tuning to pass step 50")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    checkpoint = Path(settings.MEDIA_ROOT) / "runs" / f"run-{run.id}.pt"
    saved_step = torch.load(checkpoint, weights_only=False)["step"]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING  # the dead worker never finished it
    assert saved_step >= 40

    second = start_worker(stack_env, tmp_path / "worker-2.log")
    try:
        time.sleep(STALE_S + 1)  # the dead worker's heartbeat goes stale
        send(stack_env, "training.sweep")

        def done() -> bool:
            run.refresh_from_db()
            assert run.status != TrainingRun.Status.FAILED, run.error
            return run.status == TrainingRun.Status.DONE

        wait_for(done, 300, "the resumed run to finish")
    finally:
        second.terminate()
        second.wait(timeout=30)
    version = ModelVersion.objects.get(run=run, name=services.MODEL_NAME)
    assert version.metrics["resumed_from"] == saved_step  # not from step 0
    assert version.metrics["steps"] == 240
    assert run.progress["resumed_from"] == saved_step
    # Its effect happened once: one pretrained model (reused on resume), one fine-tuned.
    assert ModelVersion.objects.filter(run=run).count() == 2
