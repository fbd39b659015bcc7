"""Health endpoints for load balancers and orchestrators.

`/healthz` says the process answers (liveness: no database, no Redis, always 200).
`/readyz` says it can do its work (readiness): the database answers, Redis answers, and a
worker wrote a heartbeat for each of ODDBALL_HEARTBEAT_QUEUES within
ODDBALL_HEARTBEAT_MAX_AGE_S (config/heartbeat.py). Without REDIS_URL (the embedded default,
tasks in-process) Redis and the worker are "not configured", which is not a failure.
Everyone gets the same answer; it names no host, password or path.
"""

import time

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.heartbeat import heartbeat_ages, redis_client

OK, NOT_CONFIGURED = "ok", "not configured"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process serves requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def database_check() -> str:
    """ "ok", or why the default database did not answer `SELECT 1`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        return f"error: {type(error).__name__}: {str(error).strip().splitlines()[0]}"
    return OK


def redis_and_worker_checks(now: float | None = None) -> dict[str, object]:
    """The Redis ping and the worker heartbeat, with each queue's heartbeat age in seconds."""
    if not settings.REDIS_URL:
        return {"redis": NOT_CONFIGURED, "worker": NOT_CONFIGURED}
    client = redis_client()
    try:
        client.ping()
        ages = heartbeat_ages(settings.ODDBALL_HEARTBEAT_QUEUES, client, now=now)
    except redis.RedisError as error:
        reason = f"error: {type(error).__name__}: {error}"
        return {"redis": reason, "worker": "unknown: Redis did not answer"}
    finally:
        client.close()
    limit = settings.ODDBALL_HEARTBEAT_MAX_AGE_S
    missing = [q for q, age in ages.items() if age is None]
    stale = [f"{q} ({age:.0f} s)" for q, age in ages.items() if age is not None and age > limit]
    problems = []
    if missing:
        problems.append(f"no heartbeat from a worker on queue {', '.join(missing)}")
    if stale:
        problems.append(f"heartbeat older than {limit} s on queue {', '.join(stale)}")
    worker = f"error: {'; '.join(problems)}" if problems else OK
    return {"redis": OK, "worker": worker, "heartbeat_age_s": ages}


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: 200 when every configured part answers, else 503 saying which did not and why."""
    started = time.monotonic()
    body: dict[str, object] = {"database": database_check(), **redis_and_worker_checks()}
    failed = [
        part for part in ("database", "redis", "worker") if body[part] not in (OK, NOT_CONFIGURED)
    ]
    body["status"] = "ok" if not failed else "failing: " + ", ".join(failed)
    body["took_ms"] = round((time.monotonic() - started) * 1000, 1)
    return JsonResponse(body, status=503 if failed else 200)
