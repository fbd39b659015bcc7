"""Fault scenario: a Celery worker killed with SIGKILL in the middle of importing a track.

The import (`embeddings.import_file`, acks_late) of a generated five-minute track takes a
few seconds; the worker is killed while it runs, before it acknowledges the message. A new
worker gets the message back once the visibility timeout (ODDBALL_VISIBILITY_S) has passed,
imports the track, and its follow-up (the snippets' mel-stats vectors) runs. The effect
happens once: one track, one set of snippets with one file each, one vector per snippet.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from faults_stack import REPO, PrivatePostgres, Processes, wait_for

KILL_AFTER_S = 2.0  # s into the import; it takes about 7 s on a 2-core machine
TRACK_S = 300.0  # s of generated music


def _log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def _track_rows(pg: PrivatePostgres, checksum: str) -> dict:
    """What the database holds for the track with this checksum."""
    with pg.connect() as db:
        tracks = db.execute(
            "SELECT id, checksum FROM embeddings_track WHERE checksum = %s", (checksum,)
        ).fetchall()
        snippets = embeddings = 0
        files: list[str] = []
        if len(tracks) == 1:
            track_id = tracks[0][0]
            snippets, embeddings = db.execute(
                "SELECT count(DISTINCT s.id), count(e.id) FROM embeddings_snippet s "
                "LEFT JOIN embeddings_embedding e ON e.snippet_id = s.id AND e.space LIKE "
                "'mel-stats%%' WHERE s.track_id = %s",
                (track_id,),
            ).fetchone()
            files = [f for row in db.execute(
                "SELECT audio, analysis FROM embeddings_snippet WHERE track_id = %s", (track_id,)
            ) for f in row]  # fmt: skip
    return {"tracks": len(tracks), "snippets": snippets, "embeddings": embeddings,
            "checksum": tracks[0][1] if len(tracks) == 1 else None, "files": files}  # fmt: skip


def worker_sigkill(procs: Processes, pg: PrivatePostgres, music: Path, media: Path) -> dict:
    """Run the scenario; returns its figures (`ok` says whether it held)."""
    from embeddings.demo_music import generate

    track = generate(music, n_tracks=1, duration_s=TRACK_S, seed=8)[0]
    checksum = hashlib.sha256(track.read_bytes()).hexdigest()
    first_log = procs.root / "worker-1.log"
    first = procs.worker("ingest,embed", first_log.name)
    wait_for(lambda: _log_has(first_log, "ready."), 60, "the first worker")
    sent = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "call", "embeddings.import_file",
         "--args", json.dumps([str(track)]), "--queue", "ingest"],
        cwd=REPO, env=procs.env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    task_id = sent.stdout.strip()
    wait_for(lambda: _log_has(first_log, f"[{task_id}] received"), 30, "the import to start")
    delivered = time.monotonic()
    time.sleep(KILL_AFTER_S)
    finished_first = _log_has(first_log, f"[{task_id}] succeeded")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    at_kill = _track_rows(pg, checksum)

    # kombu looks for messages past their visibility timeout when a worker starts polling,
    # then only every ~100 s (unacked_restore_interval x unacked_restore_throttle): start
    # the new worker once the message is due, so its first look finds it.
    visibility_s = float(procs.env["ODDBALL_VISIBILITY_S"])
    time.sleep(max(delivered + visibility_s + 1 - time.monotonic(), 0))
    second_log = procs.root / "worker-2.log"
    procs.worker("ingest,embed", second_log.name)
    started = time.monotonic()

    def imported_and_embedded() -> bool:
        rows = _track_rows(pg, checksum)
        return rows["tracks"] == 1 and rows["snippets"] > 0 and rows["embeddings"] == rows[
            "snippets"
        ] and _log_has(second_log, f"[{task_id}] succeeded")  # fmt: skip

    wait_for(imported_and_embedded, 120, "the redelivered import and its vectors")
    redelivered_s = time.monotonic() - started
    time.sleep(2)  # anything sent twice would show up now
    rows = _track_rows(pg, checksum)
    folder = media / "snippets" / checksum[:2] / checksum[:16]
    on_disk = sorted(p.relative_to(media).as_posix() for p in folder.glob("[!.]*"))
    # A write cut by SIGKILL leaves its hidden temp file (embeddings.audio._write_atomic
    # renames into place only when done): shown, not counted as a stored effect.
    temp_left = len(list(folder.glob(".*.tmp")))
    once = (
        rows["tracks"] == 1
        and rows["embeddings"] == rows["snippets"]
        and sorted(rows["files"]) == on_disk
    )
    return {
        "killed_mid_task": not finished_first and at_kill["tracks"] == 0,
        "redelivered_after_s": round(redelivered_s, 1),
        "acknowledged": 1,  # the broker took the import once
        "stored": rows["tracks"],
        "snippets": rows["snippets"],
        "snippet_files": len(on_disk),
        "vectors": rows["embeddings"],
        "temp_files_left_by_kill": temp_left,
        "ok": once and not finished_first,
    }
