"""Load: simulated listeners (consent, then serve, listen, answer, repeat) against gunicorn,
PostgreSQL and Redis on loopback, at 50, 100 and 200 concurrent listeners; then a bare
Django view (config/bench_views.py) on the same gunicorn and database at 200 concurrent.

Builds its own database (oddball_load, dropped and created afresh), seeds it with
bench/load_seed.py, starts gunicorn (gthread) on a free loopback port with DEBUG off and
persistent database connections, and drives it from one asyncio loop (bench/load_client.py)
on the same two cores: the load generator counts in the figures. For the benchmark the
per-address rate limits are off (every client is 127.0.0.1: ODDBALL_RATE_* set empty) and
so is the slow-down for answering too fast (ODDBALL_SLOW_STREAK=0); "listening" is a think
time of --think seconds. Each level runs --warm s, then is measured for --measure s.
Beside the rates, the CPU time gunicorn, the benchmark's PostgreSQL backends and the load
generator used per serve + answer cycle in the measured window (load.*_cpu_ms_per_cycle):
other work on the machine lowers the rates but barely these. Ends by comparing the answers
acknowledged (distinct judgment ids from 2xx) with the rows stored. Prints
{"name": "load", "skipped": ...} when PostgreSQL or Redis is unreachable.
Rerun: .venv/bin/python bench/load.py [--levels 50,100,200] [--workers 2 --threads 8]
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from load_client import Stats, run_level  # noqa: E402

PG = os.environ.get("ODDBALL_LOAD_PG", "postgres://postgres@127.0.0.1:5432")
DB = os.environ.get("ODDBALL_LOAD_DB", "oddball_load")
REDIS = os.environ.get("ODDBALL_LOAD_REDIS", "redis://127.0.0.1:6379/6")
RATES = ("SERVE_LISTENER", "SERVE_ADDRESS", "ANSWER_LISTENER", "ANSWER_ADDRESS", "LISTENER_CREATE")


def emit(name: str, value: float | int | str, unit: str) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def unreachable() -> str | None:
    """Why the benchmark cannot run here, or None."""
    import psycopg
    import redis

    try:
        psycopg.connect(f"{PG}/postgres", connect_timeout=3).close()
    except psycopg.Error as e:
        return f"PostgreSQL at {PG} unreachable: {e}"
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        return f"Redis at {REDIS} unreachable: {e}"
    return None


def sql(statement: str, db: str = "postgres") -> list[tuple]:
    import psycopg

    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def report(stats: Stats, start: float, end: float, suffix: str, kinds: tuple[str, ...]) -> None:
    """Rates and latencies of requests finished inside [start, end), and every error."""
    seconds = end - start
    for kind in kinds:
        window = stats.window(kind, start, end)
        ok = [s.ms for s in window if 200 <= s.status < 300]
        prefix = {"answer": "answers", "serve": "serves", "bare": "bare_view"}[kind]
        emit(f"{prefix}_per_s{suffix}", round(len(ok) / seconds, 1), "1/s")
        latencies = [s.ms for s in window]
        short = {"answer": "answer", "serve": "serve", "bare": "bare_view"}[kind]
        for q in (0.5, 0.95, 0.99):
            emit(f"{short}_p{round(q * 100)}_ms{suffix}", percentile(latencies, q), "ms")
    errors = "errors.bare" if kinds == ("bare",) else f"errors{suffix}"
    emit(errors, sum(stats.errors.values()), "count")
    for error, n in sorted(stats.errors.items()):
        emit(f"{errors}.{error.replace(' ', '.')}", n, "count")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--warm", type=float, default=5.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--think", default="0.8,1.2", help="listening time range, s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--triplets", type=int, default=6000)
    args = parser.parse_args()
    think = tuple(float(x) for x in args.think.split(","))
    if (why := unreachable()) is not None:
        print(json.dumps({"name": "load", "skipped": why}), flush=True)
        return
    sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    sql(f'CREATE DATABASE "{DB}"')
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"{PG}/{DB}",
            "DATABASE_CONN_MAX_AGE": "600",
            "REDIS_URL": REDIS,
            "SECRET_KEY": "bench-only-not-secret",
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "ODDBALL_VAR_DIR": tmp,
            "ODDBALL_MEDIA_ROOT": f"{tmp}/media",
            "ODDBALL_BENCH_VIEWS": "1",
            "ODDBALL_SLOW_STREAK": "0",
            "LOG_LEVEL": "WARNING",
            **{f"ODDBALL_RATE_{rate}": "" for rate in RATES},
        }
        python = str(REPO / ".venv/bin/python")
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True
        )
        seed = ["bench/load_seed.py", "--seed-now", "--triplets", str(args.triplets)]
        subprocess.run([python, *seed], cwd=REPO, env=env, check=True)
        port = free_port()
        log = open(Path(tmp) / "gunicorn.log", "w")  # noqa: SIM115 (closed in finally)
        server = subprocess.Popen(
            [
                str(REPO / ".venv/bin/gunicorn"),
                "config.wsgi",
                "--no-control-socket",
                f"--bind=127.0.0.1:{port}",
                "--worker-class=gthread",
                f"--workers={args.workers}",
                f"--threads={args.threads}",
                "--keep-alive=60",  # listeners think between requests; keep their sockets
                "--backlog=1024",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            run(args, port, think, server.pid)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
            if server.returncode not in (0, -signal.SIGTERM):
                print((Path(tmp) / "gunicorn.log").read_text()[-3000:], file=sys.stderr)
    sql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def wait_ready(port: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (exited ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def server_pids(server_pid: int) -> list[int]:
    """gunicorn's workers (children of its master), and the master itself."""
    pids = [server_pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == server_pid:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def postgres_pids() -> list[int]:
    """PostgreSQL backends serving the benchmark's database (and no other workload's)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if f" {DB} ".encode() in cmdline.read_bytes() and b"postgres:" in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def cpu_snapshot(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by gunicorn, the benchmark's PostgreSQL backends and this
    load generator."""
    backends = postgres_pids()
    return {
        "server": cpu_s(server_pids(server_pid)),
        "postgres": cpu_s(backends),
        "client": cpu_s([os.getpid()]),
        **{f"pg{pid}": cpu_s([pid]) for pid in backends},
    }


def cpu_mark(marks: list[dict], server_pid: int) -> None:
    marks.append(cpu_snapshot(server_pid))


def cpu_report(stats: Stats, start: float, end: float, marks: list[dict], suffix: str) -> None:
    """CPU per serve + answer cycle in the measured window, by process group: unlike the
    rates, barely disturbed by other work on the machine."""
    if len(marks) != 2:
        return
    before, after = marks
    # A backend that connected during the window counts from zero.
    pg = sum(t - before.get(k, 0.0) for k, t in after.items() if k.startswith("pg"))
    used = {
        "server": after["server"] - before["server"],
        "postgres": pg,
        "client": after["client"] - before["client"],
    }
    window = stats.window("answer", start, end)
    cycles = sum(1 for s in window if 200 <= s.status < 300)
    for name, seconds in used.items():
        per = round(seconds * 1000 / cycles, 2) if cycles else float("nan")
        emit(f"load.{name}_cpu_ms_per_cycle{suffix}", per, "ms")


def run(args: argparse.Namespace, port: int, think: tuple[float, float], server_pid: int) -> None:
    wait_ready(port)
    levels = [int(x) for x in args.levels.split(",")]
    top = max(levels)
    acknowledged: set[int] = set()
    emit("load.load_average_1min", round(os.getloadavg()[0], 2), "")
    for level in levels:
        started = time.monotonic()
        marks: list[dict] = []  # CPU used at the start and the end of the measured window
        timers = [
            threading.Timer(at, cpu_mark, (marks, server_pid))
            for at in (args.warm, args.warm + args.measure)
        ]
        for timer in timers:
            timer.start()
        stats = asyncio.run(run_level(port, level, args.warm + args.measure, think, False, level))
        for timer in timers:
            timer.join()
        acknowledged |= stats.judgments
        suffix = "" if level == top else f".c{level}"
        window = (started + args.warm, started + args.warm + args.measure)
        cpu_report(stats, *window, marks, suffix)
        report(
            stats,
            started + args.warm,
            started + args.warm + args.measure,
            suffix,
            ("answer", "serve"),
        )
    started = time.monotonic()
    stats = asyncio.run(run_level(port, top, args.warm + args.measure, think, True, 0))
    report(stats, started + args.warm, started + args.warm + args.measure, "", ("bare",))
    stored = sql("SELECT count(*) FROM annotation_judgment", DB)[0][0]
    emit("load.acknowledged", len(acknowledged), "judgments")
    emit("load.stored", stored, "judgments")
    emit("load.acknowledged_equals_stored", len(acknowledged) == stored, "")
    emit("load.load_average_1min.after", round(os.getloadavg()[0], 2), "")
    again = f"--levels {args.levels} --workers {args.workers} --threads {args.threads}"
    print(f"# rerun: .venv/bin/python bench/load.py {again}", flush=True)


if __name__ == "__main__":
    main()
