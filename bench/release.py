"""Cutting a dataset release of 100,000 simulated judgments: time and peak memory.

A fresh SQLite database in a temporary var dir (ODDBALL_VAR_DIR, as bench/quality.py does):
the embedded default, the database `make bench` has on a clean clone with no PostgreSQL;
SQLite is also the slower of the two at streaming reads, so the figure is the pessimistic
one. It is filled with bulk_create (300 tracks of 3 snippets, 20,000 triplets, 500
listeners, 100,000 assignments and judgments: 5 votes per triplet, 10% of them "can't
tell"), then `manage.py cut_release` runs in a child process that reports its own peak RSS
(getrusage of itself, so the migrate and fill steps are not counted). The Parquet files are
read back with pandas and checked against the documented columns and SHA256SUMS.
Targets (issue 7): under 60 s and under 1 GB.
Rerun: .venv/bin/python bench/release.py [--judgments 100000]
"""

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_TRACKS, SNIPPETS_PER_TRACK, N_TRIPLETS, N_LISTENERS = 300, 3, 20_000, 500


def emit(name: str, value: float | None, unit: str) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def fill(judgments: int, seed: int = 0) -> None:
    """Simulated tracks, snippets, triplets, listeners and judgments, inserted in bulk."""
    from django.utils import timezone

    from annotation.models import Assignment, Judgment, Listener, Triplet
    from embeddings.models import Snippet, Track

    rng = random.Random(seed)
    splits = ("train",) * 8 + ("val", "test")
    Track.objects.bulk_create(
        Track(
            title=f"Track {i}",
            file_name=f"track{i}.ogg",
            checksum=f"{i:064x}",
            duration_s=120.0,
            sample_rate=44_100,
            channels=2,
            format="ogg/vorbis",
            license=rng.choice(["CC0-1.0", "CC-BY-4.0", "GPL-2+", "CC-BY-SA-3.0"]),
            attribution=f"Artist {i}",
            split=splits[i % len(splits)],
        )
        for i in range(N_TRACKS)
    )
    tracks = list(Track.objects.values_list("id", "split"))
    Snippet.objects.bulk_create(
        Snippet(
            track_id=t,
            position=p,
            start_s=15.0 * p,
            duration_s=15.0,
            audio=f"snippets/{t}/{p}.ogg",
            analysis=f"snippets/{t}/{p}.flac",
            loudness_lufs=-20.0,
            gain_db=2.0,
        )
        for t, _ in tracks
        for p in range(SNIPPETS_PER_TRACK)
    )
    by_split: dict[str, list[list[int]]] = {}
    for snippet, _track, split in Snippet.objects.values_list("id", "track_id", "track__split"):
        by_split.setdefault(split, []).append(snippet)
    triplets = []
    for i in range(N_TRIPLETS):
        pool = by_split[splits[i % len(splits)]]
        a, b, c = rng.sample(pool, 3)
        triplets.append(Triplet(snippet_a_id=a, snippet_b_id=b, snippet_c_id=c, split="train"))
    Triplet.objects.bulk_create(triplets, batch_size=5000)
    now = timezone.now()
    Listener.objects.bulk_create(
        Listener(token=f"t{i}", pseudonym=f"P{i:06d}", consented_at=now, reliability=rng.random())
        for i in range(N_LISTENERS)
    )
    listeners = list(Listener.objects.values_list("id", flat=True))
    triplet_ids = list(Triplet.objects.values_list("id", flat=True))
    per = max(1, judgments // len(triplet_ids))
    pairs = [(t, who) for t in triplet_ids for who in rng.sample(listeners, per)][:judgments]
    expires = now + timedelta(minutes=15)
    for start in range(0, len(pairs), 20_000):
        chunk = pairs[start : start + 20_000]
        made = Assignment.objects.bulk_create(
            Assignment(
                triplet_id=t, listener_id=who, order="abc", expires_at=expires, answered_at=now
            )
            for t, who in chunk
        )
        Judgment.objects.bulk_create(
            Judgment(
                assignment_id=a.id,
                triplet_id=a.triplet_id,
                listener_id=a.listener_id,
                odd_slot=None if rng.random() < 0.1 else rng.randrange(3),
                response_ms=rng.randint(8000, 40_000),
                listen_ms=[rng.randint(4000, 15_000) for _ in range(3)],
                plays=[1, 1, 2],
                seeks=[0, 0, 1],
                viewport="desktop",
                language="en",
            )
            for a in made
        )


def child_cut() -> None:
    """In the child: cut the release, then print this process's peak RSS."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("cut_release", "--title", "bench", stdout=sys.stdout)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print("\n" + json.dumps({"peak_mb": round(peak_kb / 1024, 1)}), flush=True)


def check(folder: Path) -> tuple[bool, str]:
    """Read the Parquet back with pandas; compare columns and SHA256SUMS."""
    import pandas as pd

    from annotation.release_files import TRIPLET_COLUMNS, VOTE_COLUMNS

    votes = pd.read_parquet(folder / "votes.parquet")
    triplets = pd.read_parquet(folder / "triplets.parquet")
    if list(votes.columns) != [c.name for c in VOTE_COLUMNS]:
        return False, "votes.parquet columns differ from the documented ones"
    if list(triplets.columns) != [c.name for c in TRIPLET_COLUMNS]:
        return False, "triplets.parquet columns differ from the documented ones"
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            return False, f"{name}: checksum mismatch"
    return True, f"{len(votes)} votes, {len(triplets)} triplets read back"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--child-cut", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_cut:
        child_cut()
        return
    with tempfile.TemporaryDirectory() as var:
        env = {**os.environ, "ODDBALL_VAR_DIR": var, "SECRET_KEY": "bench-only", "DEBUG": "0"}
        for key in ("DATABASE_URL", "REDIS_URL", "ODDBALL_MEDIA_ROOT"):
            env.pop(key, None)
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        os.environ.update(env)
        for key in ("DATABASE_URL", "REDIS_URL", "ODDBALL_MEDIA_ROOT"):
            os.environ.pop(key, None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=REPO, env=env, check=True, capture_output=True,
        )  # fmt: skip
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        started = time.monotonic()
        fill(args.judgments)
        emit("release_fill_s", round(time.monotonic() - started, 1), "s")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child-cut"],
            cwd=REPO, env=env, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.monotonic() - started
        if done.returncode != 0:
            sys.exit(f"cut_release failed:\n{done.stdout}\n{done.stderr}")
        lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
        release, peak = lines[0], lines[-1]["peak_mb"]
        emit("release_100k_s", round(seconds, 2), "s")
        emit("release_100k_peak_mb", peak, "MB")
        from django.conf import settings

        ok, detail = check(Path(settings.MEDIA_ROOT) / release["folder"])
        readback = {"name": "release_100k_readback_ok", "value": int(ok), "unit": "bool"}
        print(json.dumps({**readback, "detail": detail}), flush=True)
        print(f"# rerun: .venv/bin/python bench/release.py --judgments {args.judgments}")


if __name__ == "__main__":
    main()
