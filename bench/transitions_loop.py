"""The transition loop on a fresh SQLite database with the whole corpus, timed step by step.

import_audio (all of ../shared/corpus) -> embed -> make_tasks --transitions 200 ->
train --transitions (before any rating) -> simulate_crowd --transitions 800 ->
train --transitions (with the ratings), in a temporary folder. Reports, for both versions,
recall@1 and @10 of the true continuation among 100 candidates on held-out (test-split)
clips beside the mel-stats nearest neighbour on the same candidates, and, once rated, the
Spearman correlation of each score with the mean simulated rating, and the mean rating per
task kind (model-proposed, random, true continuation).
Rerun: .venv/bin/python bench/transitions_loop.py [--seed S]
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


def emit(name: str, value: float | None, unit: str) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(json.dumps({"name": "transitions_loop", "skipped": f"{CORPUS} not found"}))
        return
    seed = str(args.seed)
    crowd = ["--listeners", "20", "--transitions", "800"]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ODDBALL_VAR_DIR": tmp, "SECRET_KEY": "bench-only", "DEBUG": "0"}
        env.pop("REDIS_URL", None)
        env.pop("DATABASE_URL", None)
        steps = [
            ("migrate", ["migrate", "--noinput"]),
            ("import_audio", ["import_audio", str(CORPUS)]),
            ("embed", ["embed"]),
            (
                "make_tasks",
                ["make_tasks", "--triplets", "0", "--transitions", "200", "--seed", seed],
            ),
            ("train_unrated", ["train", "--transitions", "--seed", seed]),
            ("simulate_crowd", ["simulate_crowd", "--judgments", "0", *crowd, "--seed", seed]),
            ("train_rated", ["train", "--transitions", "--seed", seed]),
        ]
        total = 0.0
        for name, argv in steps:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "manage.py", *argv], cwd=REPO, env=env, capture_output=True,
                text=True,
            )  # fmt: skip
            seconds = time.monotonic() - started
            if done.returncode != 0:
                sys.exit(f"{name} failed:\n{done.stdout}\n{done.stderr}")
            total += seconds
            emit(f"transitions.{name}.seconds", round(seconds, 1), "s")
            if name == "migrate":
                continue
            last = json.loads(done.stdout.strip().splitlines()[-1])
            if name.startswith("train"):
                e = last["evaluation"]
                for k in ("recall_at_1", "recall_at_10"):
                    for who in ("model", "melstats", "chance"):
                        emit(f"transitions.{name}.{k}.{who}", round(e[k][who], 3), "fraction")
                emit(f"transitions.{name}.held_out_seams", e["seams"], "count")
                emit(f"transitions.{name}.candidates", e["candidates"], "count")
                for who in ("model", "melstats"):
                    value = e["spearman"][who]
                    rho = None if value is None else round(value, 3)
                    emit(f"transitions.{name}.spearman.{who}", rho, "rho")
                emit(f"transitions.{name}.spearman.pairs", e["spearman"]["n"], "count")
            if name == "simulate_crowd":
                for kind, mean in last["rating_mean_by_kind"].items():
                    emit(f"transitions.rating_mean.{kind}", mean, "rating")
        emit("transitions.total.seconds", round(total, 1), "s")


if __name__ == "__main__":
    main()
