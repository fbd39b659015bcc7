"""The worker heartbeat that /readyz reads: a timestamp per queue, kept in Redis.

Each Celery worker starts a daemon thread once it is ready (the `worker_ready` signal) that
writes, every ODDBALL_HEARTBEAT_EVERY_S, the time under one key per queue it consumes. A
thread rather than a periodic task: the `train` worker runs `--pool solo -c 1`, and a
training run holds it for many minutes, during which a queued heartbeat task would wait and
the worker would look dead while it is working hardest. The thread says "this process is
alive and subscribed to these queues"; /readyz checks Redis itself separately.

Keys live in the broker's Redis (REDIS_URL) and expire after a day, so a queue nobody serves
any more stops being reported. Several workers on one queue share its key: any fresh one
will do. Nothing here connects at import time.
"""

import json
import logging
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import redis
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

log = logging.getLogger(__name__)

KEY_PREFIX = "oddball:heartbeat:"
KEY_TTL_S = 24 * 3600  # s; a decommissioned queue's key goes away by itself
REDIS_TIMEOUT_S = 2.0  # s; a slow Redis must not stall the beat thread for long

_stop = threading.Event()
_thread: threading.Thread | None = None


def heartbeat_key(queue: str) -> str:
    """The Redis key holding the newest heartbeat of `queue`."""
    return f"{KEY_PREFIX}{queue}"


def redis_client(url: str | None = None) -> redis.Redis:
    """A Redis client for REDIS_URL (or `url`) with short timeouts, made on demand."""
    return redis.Redis.from_url(
        url or settings.REDIS_URL,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
    )


def heartbeat_write(
    queues: Iterable[str], client: redis.Redis | None = None, now: float | None = None
) -> None:
    """Record that a worker consuming `queues` is alive at `now` (Unix seconds)."""
    client = client or redis_client()
    value = json.dumps({"at": time.time() if now is None else now, "host": socket.gethostname()})
    pipe = client.pipeline()
    for queue in queues:
        pipe.set(heartbeat_key(queue), value, ex=KEY_TTL_S)
    pipe.execute()


def heartbeat_ages(
    queues: Iterable[str], client: redis.Redis, now: float | None = None
) -> dict[str, float | None]:
    """Seconds since each queue's newest heartbeat; None for a queue that never had one."""
    queues = list(queues)
    now = time.time() if now is None else now
    ages: dict[str, float | None] = {}
    for queue, raw in zip(queues, client.mget([heartbeat_key(q) for q in queues]), strict=True):
        ages[queue] = None if raw is None else round(now - float(json.loads(raw)["at"]), 1)
    return ages


def _beat(queues: list[str], every_s: float) -> None:
    """The thread's loop: write, sleep, until the worker shuts down. A failed write is
    logged and retried on the next round (Redis may be restarting)."""
    client = redis_client()
    while not _stop.is_set():
        try:
            heartbeat_write(queues, client)
        except redis.RedisError as error:
            log.warning("worker heartbeat for %s not written: %s", ",".join(queues), error)
        _stop.wait(every_s)


@worker_ready.connect
def heartbeat_start(sender: Any = None, **kwargs: Any) -> None:
    """Start the heartbeat thread for the queues this worker consumes (no broker: none).

    Celery signals readiness again after it reconnects to the broker; one thread is enough.
    """
    global _thread
    if not settings.REDIS_URL or (_thread is not None and _thread.is_alive()):
        return
    queues = sorted(q.name for q in sender.task_consumer.queues)
    _stop.clear()
    _thread = thread = threading.Thread(
        target=_beat,
        args=(queues, float(settings.ODDBALL_HEARTBEAT_EVERY_S)),
        name="oddball-heartbeat",
        daemon=True,
    )
    thread.start()
    log.info("worker heartbeat started for queues %s", ",".join(queues))


@worker_shutdown.connect
def heartbeat_stop(**kwargs: Any) -> None:
    """Stop writing heartbeats; the keys age out and /readyz notices within the max age."""
    _stop.set()
