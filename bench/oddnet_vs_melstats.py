"""Does OddNet, trained on simulated odd-one-out votes, beat the mel-stats baseline?

For each seed: cut the hedgewars, wesnoth and fof_sectoid folders into consecutive 15 s
snippets (16 kHz mono), split tracks 60/20/20 into train/val/test, draw triplets of three
different tracks within each split, let 30 calibrated honest simulated listeners vote
(3–5 votes per triplet, ~1500 votes), train OddNet on the train votes, and report agreement
with the majority on the test triplets for OddNet, raw mel-stats, random and the human
ceiling. Beside the 75-odd voted test triplets (a bootstrap interval about ±0.1 wide), a
"taste probe" scores OddNet and mel-stats against the crowd's noiseless taste on 2000 test
triplets: the low-variance view of how much of the taste was learned.
Prints one JSON object per line: {"name", "value", "unit"}.

Rerun from the repo root: .venv/bin/python bench/oddnet_vs_melstats.py [--seeds 0 1 2]
"""

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from annotation.crowd import CrowdConfig, SimulatedListener, Taste, simulate_votes
from embeddings.extractors import mel_stats
from training.metrics import (
    bootstrap_ci,
    human_ceiling,
    majority_scores,
    odd_positions,
    vote_scores,
)
from training.nets import SAMPLE_RATE, embed, log_mel
from training.train import TrainConfig, TripletData, train

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
FOLDERS = ("hedgewars", "wesnoth", "fof_sectoid")
SNIPPET_SECONDS = 15  # s
TOTAL_VOTES = 1500  # simulated answers per seed, over all splits
LISTENERS = 30  # honest simulated listeners
VOTES_PER_TRIPLET = (3, 5)  # inclusive range of answers per triplet
PROBE_TRIPLETS = 2000  # noiseless test triplets for the taste probe
SPLIT = (0.6, 0.2, 0.2)  # share of tracks in train, val, test
RERUN = ".venv/bin/python bench/oddnet_vs_melstats.py"


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit}), flush=True)


def load_snippets(corpus: Path) -> tuple[np.ndarray, np.ndarray]:
    """16 kHz mono snippets (S, 15 s of samples) and the track number of each (S,)."""
    size = SNIPPET_SECONDS * SAMPLE_RATE
    snippets, tracks = [], []
    files = sorted(f for folder in FOLDERS for f in (corpus / folder).glob("*.ogg"))
    for t, path in enumerate(files):
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
        mono = torch.from_numpy(audio.mean(axis=1))
        wave = torchaudio.functional.resample(mono, rate, SAMPLE_RATE)
        for start in range(0, len(wave) - size + 1, size):
            snippets.append(wave[start : start + size].numpy())
            tracks.append(t)
    return np.stack(snippets), np.array(tracks)


def split_tracks(tracks: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Track numbers of the train, val and test splits."""
    order = rng.permutation(np.unique(tracks))
    n_train = round(SPLIT[0] * len(order))
    n_val = round(SPLIT[1] * len(order))
    return [order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :]]


def draw_triplets(tracks: np.ndarray, split: np.ndarray, n: int, rng: np.random.Generator):
    """n triplets of snippets from three different tracks of one split."""
    out = []
    for _ in range(n):
        chosen = rng.choice(split, 3, replace=False)
        out.append([rng.choice(np.flatnonzero(tracks == t)) for t in chosen])
    return np.array(out)


@dataclass
class Crowd:
    taste: Taste
    splits: list[np.ndarray]  # track numbers of train, val, test
    triplets: list[np.ndarray]  # per split, (N, 3) voted triplets
    votes: list[list[list[int]]]  # per split, the odd positions voted on each triplet


def crowd_votes(seed: int, stats: np.ndarray, tracks: np.ndarray) -> Crowd:
    """The simulated crowd's votes on triplets drawn within each split."""
    rng = np.random.default_rng(seed)
    taste = Taste(stats, CrowdConfig(seed=seed))
    taste.calibrate(rng=rng)
    listeners = [SimulatedListener("honest") for _ in range(LISTENERS)]
    mean_votes = (VOTES_PER_TRIPLET[0] + VOTES_PER_TRIPLET[1]) / 2
    crowd = Crowd(taste, split_tracks(tracks, rng), [], [])
    for share, split in zip(SPLIT, crowd.splits, strict=True):
        n = round(share * TOTAL_VOTES / mean_votes)
        triplets = draw_triplets(tracks, split, n, rng)
        counts = rng.integers(VOTES_PER_TRIPLET[0], VOTES_PER_TRIPLET[1] + 1, n)
        raw = simulate_votes(taste, triplets, listeners, counts, rng)
        votes = [[a for _, a in v if a is not None] for v in raw]
        keep = [i for i, v in enumerate(votes) if v]  # all "can't tell": no answer
        crowd.triplets.append(triplets[keep])
        crowd.votes.append([votes[i] for i in keep])
    return crowd


def training_rows(triplets: np.ndarray, votes: list[list[int]]) -> np.ndarray:
    """Each vote on (a, b, c) with odd c teaches (a, b, c) and (b, a, c)."""
    rows = []
    for triplet, answers in zip(triplets, votes, strict=True):
        for odd in answers:
            a, b = np.delete(triplet, odd)
            rows += [(a, b, triplet[odd]), (b, a, triplet[odd])]
    return np.array(rows)


def run(seed: int, logmels: np.ndarray, stats: np.ndarray, tracks: np.ndarray) -> dict:
    crowd = crowd_votes(seed, stats, tracks)
    taste = crowd.taste
    (train_t, val_t, test_t), (train_v, val_v, test_v) = crowd.triplets, crowd.votes
    rows = training_rows(train_t, train_v)
    data = TripletData(
        features=logmels,
        triplets=rows,
        weights=np.ones(len(rows), dtype=np.float32),
        val_triplets=val_t,
        val_answers=val_v,
    )
    started = time.monotonic()
    result = train(TrainConfig(seed=seed), data)
    seconds = time.monotonic() - started

    vectors = embed(result.model, list(logmels))
    standard = (stats - stats.mean(0)) / np.where(stats.std(0) > 0, stats.std(0), 1)
    model_odd = odd_positions(vectors[test_t], metric="cosine")
    mel_odd = odd_positions(standard[test_t], metric="euclidean")
    oddnet = majority_scores(model_odd, test_v)
    mel = majority_scores(mel_odd, test_v)
    ceiling, ceiling_votes = human_ceiling(test_v)
    # Many noiseless test triplets: a low-variance check of how much of the taste was learned.
    probe_rng = np.random.default_rng(seed + 1000)
    probe = draw_triplets(tracks, crowd.splits[2], PROBE_TRIPLETS, probe_rng)
    truth = taste.answers(probe)
    return {
        "oddnet_agreement": oddnet.mean(),
        "oddnet_ci_low": bootstrap_ci(oddnet)[0],
        "oddnet_ci_high": bootstrap_ci(oddnet)[1],
        "oddnet_vote_agreement": vote_scores(model_odd, test_v).mean(),
        "melstats_agreement": mel.mean(),
        "oddnet_minus_melstats": oddnet.mean() - mel.mean(),
        "taste_agreement": majority_scores(taste.answers(test_t), test_v).mean(),
        "oddnet_taste_probe": np.mean(odd_positions(vectors[probe], metric="cosine") == truth),
        "melstats_taste_probe": np.mean(odd_positions(standard[probe]) == truth),
        "random_agreement": 1 / 3,
        "human_ceiling": ceiling,
        "human_ceiling_votes": ceiling_votes,
        "test_triplets": len(test_t),
        "test_votes": sum(map(len, test_v)),
        "train_votes": len(rows) // 2,
        "val_agreement": result.metrics.get("val_agreement", float("nan")),
        "train_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    print(f"# rerun: {RERUN} --seeds {' '.join(map(str, args.seeds))}", flush=True)
    started = time.monotonic()
    waves, tracks = load_snippets(args.corpus)
    logmels = log_mel(torch.from_numpy(waves)).numpy()
    stats = np.stack([mel_stats.extract(w) for w in waves])
    emit("snippets", len(waves), "count")
    emit("tracks", len(np.unique(tracks)), "count")
    emit("prepare_seconds", time.monotonic() - started, "s")
    units = {"seconds": "s", "votes": "count", "triplets": "count"}
    for seed in args.seeds:
        for name, value in run(seed, logmels, stats, tracks).items():
            unit = next((u for k, u in units.items() if name.endswith(k)), "fraction")
            emit(f"seed{seed}.{name}", value, unit)


if __name__ == "__main__":
    main()
