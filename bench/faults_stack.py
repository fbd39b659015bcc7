"""Real processes for the fault scenarios (bench/faults.py): a private PostgreSQL cluster, a
private redis-server, gunicorn and Celery workers, each started on its own port so the shared
services on 5432 and 6379 are never touched, and each stopped by its own process id.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_PORT = 55432
REDIS_PORT = 56379
WEB_PORT = 58000
DB_NAME = "oddball_faults"


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; RuntimeError after `timeout_s` s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb refuses to run as root; the cluster belongs to the postgres user.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivatePostgres:
    """A throwaway cluster on PG_PORT (trust auth, sockets in its own folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        if not self.data.exists():
            subprocess.run(
                _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                              "-U", "postgres", "--no-sync"]),
                check=True, capture_output=True,
            )  # fmt: skip
        self.pg_ctl("start", "-w", "-o", f"-p {PG_PORT} -k {self.root} -c fsync=off")

    def pg_ctl(self, *args: str) -> None:
        argv = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), *args]
        subprocess.run(_as_postgres(argv), check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("stop", "-m", "immediate")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{PG_PORT}/{DB_NAME}"

    def connect(self, dbname: str = DB_NAME) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=PG_PORT, user="postgres", dbname=dbname, autocommit=True
        )


class PrivateRedis:
    """redis-server on REDIS_PORT without persistence: a restart loses every message."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=(self.root / "redis.log").open("a"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(lambda: port_open(REDIS_PORT), 10, "redis-server")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{REDIS_PORT}/0"


class Processes:
    """Every gunicorn and Celery process a scenario starts, so it can stop each one."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.started: list[subprocess.Popen] = []

    def spawn(self, argv: list[str], log: str, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**self.env, **env},
            stdout=(self.root / log).open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def gunicorn(self, workers: int = 2, threads: int = 4, **env: str) -> subprocess.Popen:
        proc = self.spawn(
            [str(REPO / ".venv/bin/gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{WEB_PORT}",
             "--workers", str(workers), "--threads", str(threads), "--no-control-socket",
             "--graceful-timeout", "5", "--access-logfile", "-", "--preload"],
            "gunicorn.log", **env,
        )  # fmt: skip
        # --preload: a worker killed is replaced by a fork of the loaded app at once, instead
        # of one that spends seconds importing Django while the scenario goes on.
        wait_for(lambda: web_answers(), 90, "gunicorn to answer")
        return proc

    def worker(self, queues: str, log: str, **env: str) -> subprocess.Popen:
        return self.spawn(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
             "--pool", "solo", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"{log}@faults"],
            log, **env,
        )  # fmt: skip

    def manage(self, *args: str, timeout_s: float = 300, **env: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env={**self.env, **env}, capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
        if out.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stderr[-2000:]}")
        return out.stdout

    def stop(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)
        self.started.clear()


def web_answers() -> bool:
    """Whether gunicorn answers HTTP (any status) on WEB_PORT."""
    try:
        requests.get(f"http://127.0.0.1:{WEB_PORT}/api/v1/listeners/me/", timeout=5)
    except requests.RequestException:
        return False
    return True


def children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (gunicorn's workers)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def database_clients() -> dict[int, int]:
    """Local port -> process id of every connection to the private PostgreSQL (from `ss`)."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( dport = :{PG_PORT} )"],
        capture_output=True, text=True,
    )  # fmt: skip
    ports = {}
    for line in out.stdout.splitlines():
        fields = line.split()
        local = next((f for f in fields if f.startswith("127.0.0.1:")), "")
        pid = re.search(r"pid=(\d+)", line)
        if local and pid:
            ports[int(local.rsplit(":", 1)[1])] = int(pid.group(1))
    return ports


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="oddball-faults-"))
