"""The acceptance loop of issue 2 on a fresh SQLite database, timed step by step.

import_audio (hedgewars, wesnoth, fof_sectoid) -> embed -> make_tasks ->
simulate_crowd --listeners 30 --judgments 1500 -> train -> evaluate, in a temporary folder.
Rerun: .venv/bin/python bench/loop_acceptance.py [--seed S]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FOLDERS = ("hedgewars", "wesnoth", "fof_sectoid")


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(json.dumps({"name": "loop_acceptance", "skipped": f"{CORPUS} not found"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ODDBALL_VAR_DIR": tmp, "SECRET_KEY": "bench-only", "DEBUG": "0"}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        steps = [
            ("migrate", ["migrate", "--noinput"]),
            ("import_audio", ["import_audio", *(str(CORPUS / f) for f in FOLDERS)]),
            ("embed", ["embed"]),
            ("make_tasks", ["make_tasks", "--seed", str(args.seed)]),
            (
                "simulate_crowd",
                [
                    "simulate_crowd",
                    "--listeners",
                    "30",
                    "--judgments",
                    "1500",
                    "--seed",
                    str(args.seed),
                ],
            ),
            ("train", ["train", "--seed", str(args.seed)]),
            ("evaluate", ["evaluate"]),
        ]
        total = 0.0
        last = {}
        for name, argv in steps:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "manage.py", *argv],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            )
            seconds = time.monotonic() - started
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
            total += seconds
            emit(f"loop.{name}.seconds", round(seconds, 1), "s")
            if name != "migrate":
                last = json.loads(done.stdout.strip().splitlines()[-1])
        emit("loop.total.seconds", round(total, 1), "s")
        for key in ("agreement", "ci_low", "ci_high", "mel_stats", "ceiling", "n_triplets"):
            emit(f"loop.{key}", last[key], "count" if key == "n_triplets" else "fraction")
    print(f"# rerun: .venv/bin/python bench/loop_acceptance.py --seed {args.seed}", file=sys.stderr)


if __name__ == "__main__":
    main()
