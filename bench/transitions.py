"""Does the transition model find a clip's true continuation better than mel-stats?

Cut every recording of ../shared/corpus (MANIFEST.csv) into 25 s clips with 5 s overlap
(16 kHz mono), hold out ~25% of the pieces (versions of one piece, a stem and its mix or a
fast variant, stay on one side), train the transition model on the rest, and rank each
held-out clip's true continuation among 100 candidates: up to 20 other openings of the same
track and other held-out tracks' openings (DESIGN.md, "Transition evaluation, calibrated").
Prints recall@1 and @10 for the model and the mel-stats nearest neighbour on the same
candidates, chance, the number of held-out seams and the training time, one JSON object per
line: {"name", "value", "unit"}.

Rerun from the repo root: .venv/bin/python bench/transitions.py [--seeds 0 1 2] [--steps 300]
"""

import argparse
import csv
import json
import re
import time
from pathlib import Path

import numpy as np

from embeddings.audio import ANALYSIS_RATE, decode, resample, to_mono
from training.transition_metrics import build_candidates, evaluate_transitions
from training.transition_net import (
    ClipConfig,
    TrackClips,
    TransitionData,
    TransitionTrainConfig,
    embed_openings,
    held_out,
    predict_next,
    track_clips,
    train_transitions,
)

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
HOLD_OUT = 0.25  # share of pieces held out
RERUN = ".venv/bin/python bench/transitions.py"


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit}), flush=True)


def piece(path: str) -> str:
    """Versions of one piece share a key: Metal_madness_song / _guitar, celtic / celtic_fast."""
    stem = Path(path).with_suffix("").as_posix()
    return re.sub(r"_(fast|song|guitar)$", "", stem)


def load_corpus(corpus: Path, config: ClipConfig) -> tuple[list[TrackClips], list[str]]:
    """Clips of every manifest recording long enough for one clip and a continuation, and
    the piece of each."""
    with open(corpus / "MANIFEST.csv", newline="") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    tracks, pieces = [], []
    for path in paths:
        audio, rate = decode(corpus / path)
        clips = track_clips(resample(to_mono(audio), rate, ANALYSIS_RATE), config)
        if clips.has_next.any():
            tracks.append(clips)
            pieces.append(piece(path))
    return tracks, pieces


def run(seed: int, steps: int, tracks: list[TrackClips], pieces: list[str]) -> dict:
    rng = np.random.default_rng(seed)
    names = sorted(set(pieces))
    test_pieces = set(rng.permutation(names)[: round(HOLD_OUT * len(names))])
    group_of = {name: g for g, name in enumerate(names)}
    test = [t for t, p in enumerate(pieces) if p in test_pieces]
    train = [t for t, p in enumerate(pieces) if p not in test_pieces]
    data = TransitionData(
        frames=[tracks[t].frames for t in train],
        ending_windows=tracks[0].ending_windows,
        opening_windows=tracks[0].opening_windows,
        groups=[group_of[pieces[t]] for t in train],
    )
    started = time.monotonic()
    result = train_transitions(TransitionTrainConfig(steps=steps, seed=seed), data)
    seconds = time.monotonic() - started

    groups = {t: group_of[pieces[t]] for t in test}
    evaluation = held_out([tracks[t] for t in test], test, groups)
    candidates = build_candidates(evaluation.seams, np.random.default_rng(seed + 1000))
    summary = evaluate_transitions(
        candidates,
        predict_next(result.model, evaluation.endings),
        embed_openings(result.model, evaluation.pool),
        evaluation.ending_stats,
        evaluation.pool_stats,
        evaluation.ending_edge,
        evaluation.pool_edge,
        np.random.default_rng(seed + 2000),
    )
    same_track = (
        evaluation.seams.pool_track[candidates[:, 1:]] == evaluation.seams.seam_track[:, None]
    )
    return {
        "model_recall_at_1": summary["model"]["recall_at_1"],
        "model_recall_at_10": summary["model"]["recall_at_10"],
        "melstats_recall_at_1": summary["melstats"]["recall_at_1"],
        "melstats_recall_at_10": summary["melstats"]["recall_at_10"],
        "chance_recall_at_1": summary["chance"]["recall_at_1"],
        "chance_recall_at_10": summary["chance"]["recall_at_10"],
        "model_mean_rank": summary["model_mean_rank"],
        "melstats_mean_rank": summary["melstats_mean_rank"],
        "cosine_true_median": summary["cosine_true"]["quantiles"]["0.5"],
        "cosine_random_median": summary["cosine_random"]["quantiles"]["0.5"],
        "seam_sc_true": summary["seam"]["true"]["spectral_convergence"],
        "seam_sc_model": summary["seam"]["model"]["spectral_convergence"],
        "seam_sc_random": summary["seam"]["random"]["spectral_convergence"],
        "seam_logmel_mse_true": summary["seam"]["true"]["log_mel_mse"],
        "seam_logmel_mse_model": summary["seam"]["model"]["log_mel_mse"],
        "seam_logmel_mse_random": summary["seam"]["random"]["log_mel_mse"],
        "same_track_distractors_mean": same_track.sum(axis=1).mean(),
        "held_out_seams": summary["seams"],
        "held_out_tracks": len(test),
        "train_tracks": len(train),
        "train_seconds": seconds,
        "final_loss": result.metrics["final_loss"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=TransitionTrainConfig.steps)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    seeds = " ".join(map(str, args.seeds))
    print(f"# rerun: {RERUN} --seeds {seeds} --steps {args.steps}", flush=True)
    started = time.monotonic()
    tracks, pieces = load_corpus(args.corpus, ClipConfig())
    emit("tracks", len(tracks), "count")
    emit("clips", sum(len(t.starts) for t in tracks), "count")
    emit("prepare_seconds", time.monotonic() - started, "s")
    units = {"seconds": "s", "seams": "count", "tracks": "count", "rank": "rank"}
    units |= {"logmel_mse": "nat^2", "seam_sc": "ratio", "cosine": "cosine", "loss": "loss"}
    units |= {"distractors": "count"}
    for seed in args.seeds:
        for name, value in run(seed, args.steps, tracks, pieces).items():
            unit = next((u for k, u in units.items() if k in name), "fraction")
            emit(f"seed{seed}.{name}", value, unit)


if __name__ == "__main__":
    main()
