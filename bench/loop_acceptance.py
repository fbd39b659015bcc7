"""The acceptance loop on a fresh SQLite database, timed step by step.

import_audio (hedgewars, wesnoth, fof_sectoid) -> embed -> make_tasks ->
simulate_crowd --listeners 30 --judgments N -> train (pretrain, fine-tune) -> evaluate, in a
temporary folder. Reports the fine-tuned oddnet beside mel-stats and the pretrained-only
oddnet on the same held-out triplets.
Rerun: .venv/bin/python bench/loop_acceptance.py [--seed S] [--judgments N]
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
    parser.add_argument("--judgments", type=int, default=3000)
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
                    str(args.judgments),
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
        keys = ("agreement", "ci_low", "ci_high", "mel_stats", "pretrained", "ceiling")
        for key in (*keys, "n_triplets"):
            emit(f"loop.{key}", last[key], "count" if key == "n_triplets" else "fraction")
        emit("loop.retrieval_recall_at_10", last["retrieval"]["model"]["recall_at_k"], "fraction")
        emit("loop.fine_tuned_minus_mel_stats", last["agreement"] - last["mel_stats"], "fraction")
        emit("loop.fine_tuned_minus_pretrained", last["agreement"] - last["pretrained"], "fraction")
    print(
        f"# rerun: .venv/bin/python bench/loop_acceptance.py --seed {args.seed} "
        f"--judgments {args.judgments}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
