"""Fault scenarios: real processes killed and restarted under load, each ending by comparing
the answers acknowledged to clients with the rows stored.

1. worker_sigkill: a Celery worker killed mid-import; the task is redelivered, runs once.
2. redis_restart: Redis killed and started again while listeners answer; no judgment is
   lost, and the follow-up missed meanwhile (a retraining) is found by the sweep after.
3. postgres_restart: PostgreSQL stopped and started under load; clear 503s, then recovery,
   nothing half-written.
4. gunicorn_sigkill: gunicorn workers killed while answers are in flight; the clients'
   retries store one judgment per assignment.

Everything runs on a private PostgreSQL cluster (port 55432) and redis-server (56379), never
on the shared ones. Prints one JSON object per line; exits 1 if any scenario fails.
Rerun: `make faults` (or `.venv/bin/python bench/faults.py`); one or a few scenarios:
`FAULTS_ONLY=redis_restart,gunicorn_sigkill .venv/bin/python bench/faults.py`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis as redis_client
from faults_load import Ledger, finish, run_load
from faults_stack import (
    DB_NAME,
    PG_PORT,
    WEB_PORT,
    PrivatePostgres,
    PrivateRedis,
    Processes,
    children,
    database_clients,
    scratch,
)
from faults_worker import worker_sigkill

LISTENERS = 16
BASE = f"http://127.0.0.1:{WEB_PORT}"
RERUN = "make faults"


def emit(name: str, value: object, unit: str = "", **extra: object) -> None:
    print(json.dumps({"name": f"fault.{name}", "value": value, "unit": unit, **extra}), flush=True)


def stored_judgments(pg: PrivatePostgres, pseudonyms: list[str]) -> dict[int, int]:
    with pg.connect() as db:
        rows = db.execute(
            "SELECT j.assignment_id, j.id FROM annotation_judgment j "
            "JOIN annotation_listener l ON l.id = j.listener_id WHERE l.pseudonym = ANY(%s)",
            (pseudonyms,),
        ).fetchall()
    return dict(rows)


def half_written(pg: PrivatePostgres) -> dict[str, int]:
    """Judgments whose assignment was not marked answered, and triplets whose vote counter
    disagrees with their counted judgments: both must be 0."""
    with pg.connect() as db:
        unanswered = db.execute(
            "SELECT count(*) FROM annotation_judgment j JOIN annotation_assignment a "
            "ON a.id = j.assignment_id WHERE a.answered_at IS NULL"
        ).fetchone()[0]
        votes_off = db.execute(
            "SELECT count(*) FROM annotation_triplet t WHERE t.votes <> (SELECT count(*) "
            "FROM annotation_judgment j JOIN annotation_assignment a ON a.id = j.assignment_id "
            "WHERE a.triplet_id = t.id AND NOT a.practice AND a.repeat_of_id IS NULL)"
        ).fetchone()[0]
    return {"unanswered_assignments": unanswered, "votes_off": votes_off}


def under_load(
    procs: Processes, fault: Callable[[], dict], seconds: float = 14.0, **web_env: str
) -> tuple[Ledger, dict]:
    """Run the listeners against a fresh gunicorn for `seconds`, injecting `fault` after 3 s."""
    procs.gunicorn(**web_env)
    ledger, stop = Ledger(), threading.Event()
    threads = run_load(BASE, LISTENERS, stop, ledger, seed=random.randrange(1000))
    started = time.monotonic()
    time.sleep(3)
    facts = fault()
    time.sleep(max(seconds - (time.monotonic() - started), 1.0))
    stop.set()
    finish(threads)
    return ledger, facts


def verdict(name: str, pg: PrivatePostgres, ledger: Ledger, ok: bool, **facts: object) -> bool:
    """Compare acknowledged with stored, print the figures and the verdict."""
    stored = stored_judgments(pg, ledger.pseudonyms)
    same = stored == ledger.acknowledged
    emit(f"{name}.acknowledged", len(ledger.acknowledged), "judgments")
    emit(f"{name}.stored", len(stored), "judgments")
    emit(f"{name}.responses", dict(sorted(ledger.statuses.items())), "by status")
    emit(f"{name}.connection_errors", ledger.connection_errors, "requests")
    emit(f"{name}.answers_retried", ledger.retried, "answers")
    emit(f"{name}.retries_found_stored", ledger.replayed, "answers")
    for key, value in facts.items():
        emit(f"{name}.{key}", value)
    problems = ledger.unclear[:5] + (["a retry acknowledged another judgment"]
                                     if ledger.double_ack_mismatch else [])  # fmt: skip
    problems += [f"{ledger.given_up} answers never acknowledged"] if ledger.given_up else []
    passed = same and ok and not problems and len(stored) > 0
    emit(
        f"{name}.verdict",
        "acknowledged = stored" if same else "acknowledged != stored",
        ok=passed,
        problems=problems,
    )
    return passed


def redis_restart(procs: Processes, pg: PrivatePostgres, rds: PrivateRedis) -> bool:
    """Redis killed for 5 s under load; afterwards the retraining sweep finds the new
    judgments that no beat tick could announce during the outage."""

    def fault() -> dict:
        rds.kill()
        down = time.monotonic()
        time.sleep(5)
        rds.start()
        return {"down": down, "up": time.monotonic()}

    ledger, marks = under_load(procs, fault)
    queued_before = redis_client.Redis.from_url(rds.url).llen("train")
    out = procs.manage(
        "shell", "-c", "from training.tasks import retrain_if_due; print(retrain_if_due())",
        ODDBALL_RETRAIN_EVERY="1",
    )  # fmt: skip
    with pg.connect() as db:
        runs = db.execute(
            "SELECT count(*), max(judgments_at_start) FROM training_trainingrun"
        ).fetchone()
    queued = redis_client.Redis.from_url(rds.url).llen("train") - queued_before
    found = out.strip().splitlines()[-1].isdigit() and runs[0] == 1 and queued == 1
    sweep = {"training_runs": runs[0], "judgments_at_start": runs[1], "messages_queued": queued}
    return verdict("redis_restart", pg, ledger, found, sweep_found=sweep, **_window(ledger, marks))


def postgres_restart(procs: Processes, pg: PrivatePostgres) -> bool:
    """PostgreSQL stopped for 4 s under load, with persistent connections in the workers."""

    def fault() -> dict:
        pg.pg_ctl("stop", "-m", "fast")
        down = time.monotonic()
        time.sleep(4)
        pg.pg_ctl("start", "-w", "-o", f"-p {PG_PORT} -k {pg.root} -c fsync=off")
        return {"down": down, "up": time.monotonic()}

    ledger, marks = under_load(procs, fault, DATABASE_CONN_MAX_AGE="60")
    broken = half_written(pg)
    clear_503 = ledger.statuses.get(503, 0)
    window = _window(ledger, marks)
    ok = clear_503 > 0 and window["acknowledged_after_recovery"] > 0 and not any(broken.values())
    return verdict("postgres_restart", pg, ledger, ok, answered_503=clear_503, **window, **broken)


def _window(ledger: Ledger, marks: dict) -> dict[str, int]:
    """Answers acknowledged while the service was down, and after it came back."""
    during = sum(marks["down"] <= t < marks["up"] for t in ledger.acknowledged_at)
    after = sum(t >= marks["up"] for t in ledger.acknowledged_at)
    return {"acknowledged_during_outage": during, "acknowledged_after_recovery": after}


def gunicorn_sigkill(procs: Processes, pg: PrivatePostgres) -> bool:
    """gunicorn workers SIGKILLed while answers are in flight; the master starts others.

    To be sure answers are in flight, each round holds a SHARE lock on the judgment table
    (reads go on, inserts wait), kills a worker once answers are waiting on it, and lets go.
    The killed worker's transactions never commit; its clients retry the same answers.
    """
    kills: list[int] = []
    waiting: list[int] = []

    def fault() -> dict:
        master = procs.started[-1].pid
        with pg.connect() as lock, pg.connect() as look:
            for _ in range(4):
                with lock.transaction():
                    lock.execute("LOCK TABLE annotation_judgment IN SHARE MODE")
                    victim, held = _worker_with_answers_waiting(look, children(master))
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)
                    waiting.append(held)
                time.sleep(1.5)
        return {}

    ledger, _ = under_load(procs, fault, seconds=16)
    broken = half_written(pg)
    ok = bool(kills) and ledger.answers_cut > 0 and not any(broken.values())
    facts = {
        "workers_killed": len(kills),
        "answers_waiting_in_killed_workers": sum(waiting),
        "answers_cut_mid_request": ledger.answers_cut,
    }
    return verdict("gunicorn_sigkill", pg, ledger, ok, **facts, **broken)


def _worker_with_answers_waiting(look: object, workers: list[int]) -> tuple[int, int]:
    """The gunicorn worker with the most answers waiting on the judgment table's lock, and
    how many (polls for up to 3 s while they arrive)."""
    deadline = time.monotonic() + 3
    while True:
        time.sleep(0.3)
        ports = [row[0] for row in look.execute(
            "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )]  # fmt: skip
        owners = database_clients()
        held = {pid: [owners.get(port) for port in ports].count(pid) for pid in workers}
        victim = max(workers, key=held.__getitem__)
        if held[victim] >= 2 or time.monotonic() > deadline:
            return victim, held[victim]


def prepare(procs: Processes, pg: PrivatePostgres, music: Path) -> None:
    """A fresh database with a few generated tracks and their triplets."""
    from embeddings.demo_music import generate

    with pg.connect("postgres") as db:
        db.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
        db.execute(f"CREATE DATABASE {DB_NAME}")
    procs.manage("migrate", "--verbosity", "0")
    generate(music, n_tracks=10, duration_s=32.0, seed=1)
    # In-process tasks (no REDIS_URL) so the import is done when the command returns.
    procs.manage("import_audio", str(music), "--snippet-seconds", "10", REDIS_URL="")
    procs.manage("make_tasks", "--triplets", "2000", "--seed", "1", REDIS_URL="")


def main() -> int:
    root = scratch()
    pg, rds = PrivatePostgres(root), PrivateRedis(root)
    media = root / "media"
    env = {
        **os.environ,
        "SECRET_KEY": "faults-only-not-secret",
        "DATABASE_URL": pg.url,
        "REDIS_URL": rds.url,
        "ODDBALL_MEDIA_ROOT": str(media),
        "ODDBALL_VAR_DIR": str(root / "var"),
        "ODDBALL_VISIBILITY_S": "8",  # s before a dead worker's message is handed out again
        "ODDBALL_SLOW_STREAK": "1000000",
        "ODDBALL_QUALITY_REPEAT_SHARE": "0",
        "ODDBALL_RETRAIN_EVERY": "1000000",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **{f"ODDBALL_RATE_{scope}": "" for scope in (
            "SERVE_LISTENER", "SERVE_ADDRESS", "ANSWER_LISTENER", "ANSWER_ADDRESS",
            "LISTENER_CREATE")},
    }  # fmt: skip
    env.pop("DJANGO_SETTINGS_MODULE", None)
    results: dict[str, bool] = {}
    started = time.monotonic()
    try:
        pg.start()
        rds.start()
        procs = Processes(root, env)
        prepare(procs, pg, root / "music")
        scenarios: list[tuple[str, Callable[[], bool]]] = [
            ("worker_sigkill", lambda: _worker(procs, pg, root, media)),
            ("redis_restart", lambda: redis_restart(procs, pg, rds)),
            ("postgres_restart", lambda: postgres_restart(procs, pg)),
            ("gunicorn_sigkill", lambda: gunicorn_sigkill(procs, pg)),
        ]
        only = os.environ.get("FAULTS_ONLY", "").split(",")  # e.g. FAULTS_ONLY=redis_restart
        for name, scenario in scenarios:
            if only != [""] and name not in only:
                continue
            try:
                results[name] = scenario()
            except Exception as e:  # one broken scenario must not hide the others' figures
                emit(f"{name}.verdict", f"scenario failed: {e}", ok=False)
                results[name] = False
            finally:
                procs.stop_all()
    finally:
        rds.kill()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    emit("scenarios_passed", sum(results.values()), f"of {len(results)}")
    emit("duration_s", round(time.monotonic() - started, 1), "s", rerun=RERUN)
    return 0 if results and all(results.values()) else 1


def _worker(procs: Processes, pg: PrivatePostgres, root: Path, media: Path) -> bool:
    facts = worker_sigkill(procs, pg, root / "long", media)
    ok = facts.pop("ok")
    units = {"redelivered_after_s": "s", "acknowledged": "imports", "stored": "tracks",
             "snippets": "snippets", "snippet_files": "files", "vectors": "vectors",
             "temp_files_left_by_kill": "files"}  # fmt: skip
    for key, value in facts.items():
        emit(f"worker_sigkill.{key}", value, units.get(key, ""))
    same = facts["acknowledged"] == facts["stored"]
    passed = ok and same and facts["killed_mid_task"]
    emit(
        "worker_sigkill.verdict",
        "acknowledged = stored" if same else "acknowledged != stored",
        ok=passed,
    )
    return passed


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
