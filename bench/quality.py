"""Quality control on a crowd with spammers, on fresh SQLite databases.

import_audio (hedgewars, wesnoth, fof_sectoid) -> embed -> make_tasks, once; then per seed,
on a copy of that database: simulate_crowd --listeners 60 --judgments 4000 --spammers 0.2
(which ends by running quality control) and reports spammer_recall and honest_flagged. On
every seed it also trains oddnet twice, with reliability weights and with --equal-weights
(every vote weighing 1, flagged listeners included), and evaluates both against the
held-out majority of honest listeners; the last lines give the mean difference and on how
many seeds reliability weights did at least as well.
The simulator answers at machine speed, so the API rate limits are turned off here, and so
is the slow-down of too-fast listeners (annotation/limits.py flags them too): the figures
are quality control's own. Each seed runs twice more without the listening rule
(ODDBALL_QUALITY_MAX_FAST_SHARE=1), to show what gold, consensus, repeats and positions
catch on their own (in the simulator every spammer kind also answers before listening).
Rerun: .venv/bin/python bench/quality.py [--seeds 0 1 2] [--judgments 4000]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FOLDERS = ("hedgewars", "wesnoth", "fof_sectoid")
RATES = (
    "SERVE_LISTENER",
    "SERVE_ADDRESS",
    "ANSWER_LISTENER",
    "ANSWER_ADDRESS",
    "LISTENER_CREATE",
)


def emit(name: str, value: float | None, unit: str) -> None:
    print(json.dumps({"name": name, "value": value, "unit": unit}), flush=True)


def manage(var_dir: str, *argv: str, extra: dict | None = None) -> dict | None:
    """Run one management command in `var_dir`; its last stdout line, parsed if JSON."""
    env = {**os.environ, "ODDBALL_VAR_DIR": var_dir, "SECRET_KEY": "bench-only", "DEBUG": "0"}
    env.update({f"ODDBALL_RATE_{r}": "" for r in RATES})
    env["ODDBALL_SLOW_STREAK"] = str(10**9)
    env.update(extra or {})
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "manage.py", *argv], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--judgments", type=int, default=4000)
    parser.add_argument("--no-train", action="store_true", help="flags only, no training")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(json.dumps({"name": "quality", "skipped": f"{CORPUS} not found"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        base = str(Path(tmp) / "base")
        Path(base).mkdir()
        started = time.monotonic()
        manage(base, "migrate", "--noinput")
        manage(base, "import_audio", *(str(CORPUS / f) for f in FOLDERS))
        manage(base, "embed")
        manage(base, "make_tasks", "--seed", "0")
        emit("quality.setup.seconds", round(time.monotonic() - started, 1), "s")
        crowd_args = ["--listeners", "60", "--judgments", str(args.judgments), "--spammers", "0.2"]
        compared = []
        for seed in args.seeds:
            without = str(Path(tmp) / f"seed-{seed}-no-listening-rule")
            shutil.copytree(base, without)
            off = {"ODDBALL_QUALITY_MAX_FAST_SHARE": "1"}
            crowd = manage(without, "simulate_crowd", *crowd_args, "--seed", str(seed), extra=off)
            for key in ("spammer_recall", "honest_flagged"):
                emit(f"quality.seed{seed}.no_listening_rule.{key}", crowd[key], "fraction")
            shutil.rmtree(without)
            var = str(Path(tmp) / f"seed-{seed}")
            shutil.copytree(base, var)
            crowd = manage(var, "simulate_crowd", *crowd_args, "--seed", str(seed))
            emit(f"quality.seed{seed}.spammer_recall", crowd["spammer_recall"], "fraction")
            emit(f"quality.seed{seed}.honest_flagged", crowd["honest_flagged"], "fraction")
            if args.no_train:
                continue
            started = time.monotonic()
            manage(var, "train", "--seed", str(seed), "--equal-weights")
            manage(var, "train", "--seed", str(seed))
            result = manage(var, "evaluate")
            emit("quality.train_and_evaluate.seconds", round(time.monotonic() - started, 1), "s")
            for key in (
                "reliability_weights_honest_majority_agreement",
                "equal_weights_honest_majority_agreement",
            ):
                emit(f"quality.seed{seed}.{key}", result[key], "fraction")
            emit(f"quality.seed{seed}.held_out_triplets", result["equal_weights_n"], "count")
            emit(f"quality.seed{seed}.weightings_differ", result["weightings_differ_n"], "count")
            compared.append(result["reliability_minus_equal"])
        if compared:
            emit(
                "quality.reliability_minus_equal.mean",
                round(sum(compared) / len(compared), 4),
                "fraction",
            )
            emit("quality.reliability_at_least_equal.seeds", sum(d >= 0 for d in compared), "count")
            emit("quality.seeds", len(compared), "count")
    print(
        f"# rerun: .venv/bin/python bench/quality.py --seeds {' '.join(map(str, args.seeds))} "
        f"--judgments {args.judgments}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
