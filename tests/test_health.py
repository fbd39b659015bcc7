"""/healthz and /readyz: liveness without the database; readiness from the database, Redis
and the worker heartbeat (config/heartbeat.py), with the reason whenever a part fails."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from config.heartbeat import heartbeat_key, heartbeat_write

REPO = Path(__file__).resolve().parent.parent
REDIS_TEST_URL = os.environ.get("ODDBALL_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
QUEUES = ["ingest", "embed", "train"]


@pytest.fixture
def broker(settings) -> redis.Redis:
    """REDIS_URL pointing at the test Redis, with no heartbeat keys left from before."""
    settings.REDIS_URL = REDIS_TEST_URL
    settings.ODDBALL_HEARTBEAT_QUEUES = QUEUES
    settings.ODDBALL_HEARTBEAT_MAX_AGE_S = 120
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.delete(*[heartbeat_key(q) for q in QUEUES])
    yield client
    client.delete(*[heartbeat_key(q) for q in QUEUES])
    client.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_answers_200_without_touching_the_database() -> None:
    # No django_db mark: any query would raise here.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_in_the_embedded_default_with_redis_and_worker_not_configured(
    settings,
) -> None:
    settings.REDIS_URL = ""
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["status"] == "ok"
    assert body["redis"] == body["worker"] == "not configured"
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_200_when_the_database_redis_and_a_fresh_heartbeat_answer(broker) -> None:
    heartbeat_write(QUEUES, broker)
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["database"], body["redis"], body["worker"]) == ("ok", "ok", "ok")
    assert set(body["heartbeat_age_s"]) == set(QUEUES)
    assert all(0 <= age < 5 for age in body["heartbeat_age_s"].values())


@pytest.mark.django_db
def test_readyz_is_503_naming_the_queue_whose_heartbeat_is_stale(broker) -> None:
    heartbeat_write(["ingest", "embed"], broker)
    heartbeat_write(["train"], broker, now=time.time() - 300)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert body["worker"].startswith("error: heartbeat older than 120 s on queue train (")
    assert body["status"] == "failing: worker"


@pytest.mark.django_db
def test_readyz_is_503_when_no_worker_ever_served_a_queue(broker) -> None:
    heartbeat_write(["ingest", "train"], broker)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["worker"] == "error: no heartbeat from a worker on queue embed"


@pytest.mark.django_db
def test_readyz_is_503_with_the_reason_when_redis_is_unreachable(settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["redis"].startswith("error: ConnectionError")
    assert body["worker"] == "unknown: Redis did not answer"
    assert body["status"] == "failing: redis, worker"


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_celery_worker_makes_readyz_ready_with_its_heartbeat(broker, tmp_path) -> None:
    if connection.vendor != "postgresql":
        pytest.fail("the integration test needs DATABASE_URL pointing at PostgreSQL (make test)")
    assert Client().get("/readyz").status_code == 503  # no worker yet
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": REDIS_TEST_URL,
        "ODDBALL_MEDIA_ROOT": str(tmp_path / "media"),
        "ODDBALL_HEARTBEAT_EVERY_S": "1",
        "SECRET_KEY": "integration-test-only",
    }
    log = (tmp_path / "worker.log").open("w")
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(QUEUES)]
    worker = subprocess.Popen(
        [*command, "--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        response = Client().get("/readyz")
        while response.status_code != 200 and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(1)
            response = Client().get("/readyz")
        assert response.status_code == 200, (response.json(), (tmp_path / "worker.log").read_text())
        assert response.json()["worker"] == "ok"
        first = json.loads(broker.get(heartbeat_key("train")))["at"]
        time.sleep(2.5)  # the thread keeps writing every ODDBALL_HEARTBEAT_EVERY_S
        assert json.loads(broker.get(heartbeat_key("train")))["at"] > first
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
