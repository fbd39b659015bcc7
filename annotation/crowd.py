"""The simulated crowd: a hidden taste and listeners who answer odd-one-out triplets from it.

Pure numpy, no Django. It stands in for people in the demo, tests and benchmarks.

The taste projects each snippet's standardised mel-stats vector onto a few random
directions (`taste_dims`, about 4): like people, it cares about a few aspects of the sound,
not all of them, so raw mel-stats distance is not already the answer. A listener picks the
odd position x with a Luce (softmax) choice, p(x) ∝ exp(-d(pair without x) / temperature):
the odd one is likely the one whose two partners are close together. The temperature is
calibrated so an honest listener picks the noiseless taste answer `target_agreement` of the
time. Every random draw comes from a seeded generator, so runs repeat exactly.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

N_POSITIONS = 3  # snippets per triplet
CALIBRATION_TRIPLETS = 3000  # random triplets averaged over when calibrating
SNIPPET_SECONDS = 15.0  # s, the longest a simulated listener plays one snippet
MIN_HONEST_LISTEN = 4.0  # s, an honest listener plays each snippet at least this long

ListenerKind = Literal["honest", "random", "always_a", "fast"]


@dataclass
class CrowdConfig:
    taste_dims: int = 4  # directions of the hidden taste
    seed: int = 0  # fixes the projection and everything drawn from it
    target_agreement: float = 0.8  # honest P(choosing the noiseless taste answer)
    cant_tell: float = 0.02  # probability an honest listener answers "can't tell"


class Taste:
    """The crowd's hidden taste over S snippets, from their (S, D) mel-stats vectors."""

    def __init__(self, features: np.ndarray, config: CrowdConfig | None = None) -> None:
        self.config = config or CrowdConfig()
        x = np.asarray(features, dtype=np.float64)
        std = x.std(axis=0)
        # Constant columns carry no taste; dividing by 1 keeps them at zero instead of nan.
        x = (x - x.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
        rng = np.random.default_rng(self.config.seed)
        projection = rng.standard_normal((x.shape[1], self.config.taste_dims))
        self.points = x @ projection / np.sqrt(x.shape[1])  # (S, taste_dims)
        self.temperature = 1.0

    def distances(self, triplets: np.ndarray) -> np.ndarray:
        """(N, 3) snippet indexes -> (N, 3): column x is the taste distance of the pair
        that leaves position x out."""
        t = np.asarray(triplets, dtype=np.int64).reshape(-1, N_POSITIONS)
        u = self.points[t[:, [1, 0, 0]]]
        v = self.points[t[:, [2, 2, 1]]]
        return np.linalg.norm(u - v, axis=-1)

    def answers(self, triplets: np.ndarray) -> np.ndarray:
        """The noiseless odd position of each triplet (N,)."""
        return np.argmin(self.distances(triplets), axis=1)

    def _probabilities(self, triplets: np.ndarray, temperature: float) -> np.ndarray:
        logits = -self.distances(triplets) / temperature
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def probabilities(self, i: int, j: int, k: int) -> np.ndarray:
        """Probability (3,) of each position of triplet (i, j, k) being chosen as odd."""
        return self._probabilities(np.array([[i, j, k]]), self.temperature)[0]

    def calibrate(
        self,
        target_agreement: float | None = None,
        rng: np.random.Generator | None = None,
        triplets: np.ndarray | None = None,
    ) -> float:
        """Set the temperature so the mean probability of the noiseless answer over random
        triplets (or the given ones) equals `target_agreement`; returns the temperature."""
        target = self.config.target_agreement if target_agreement is None else target_agreement
        if not 1 / N_POSITIONS < target < 1:
            raise ValueError("target agreement must lie strictly between 1/3 and 1")
        if triplets is None:
            rng = rng or np.random.default_rng(self.config.seed)
            n = len(self.points)
            triplets = np.stack(
                [rng.choice(n, N_POSITIONS, replace=False) for _ in range(CALIBRATION_TRIPLETS)]
            )
        best = self.answers(triplets)

        def agreement(temperature: float) -> float:
            p = self._probabilities(triplets, temperature)
            return float(p[np.arange(len(best)), best].mean())

        # Agreement falls monotonically from 1 (T -> 0) to 1/3 (T -> inf): bisect on log T.
        lo, hi = -12.0, 12.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if agreement(float(np.exp(mid))) > target:
                lo = mid
            else:
                hi = mid
        self.temperature = float(np.exp((lo + hi) / 2))
        return self.temperature


class SimulatedListener:
    """One simulated person. `honest` samples from the taste; `random` and `fast` are
    spammers answering uniformly (`fast` barely plays the snippets); `always_a` presses 1."""

    def __init__(self, kind: ListenerKind = "honest", cant_tell: float = 0.02) -> None:
        if kind not in ("honest", "random", "always_a", "fast"):
            raise ValueError(f"unknown listener kind {kind!r}")
        self.kind = kind
        self.cant_tell = cant_tell

    def answer(self, probabilities: np.ndarray, rng: np.random.Generator) -> int | None:
        """The odd position chosen (0, 1, 2), or None for "can't tell"."""
        if self.kind == "always_a":
            return 0
        if self.kind in ("random", "fast"):
            return int(rng.integers(N_POSITIONS))
        if rng.random() < self.cant_tell:
            return None
        return int(rng.choice(N_POSITIONS, p=probabilities))

    def listening_times(self, rng: np.random.Generator) -> np.ndarray:
        """Seconds (3,) this listener plays each snippet before answering."""
        if self.kind == "honest":
            listened = MIN_HONEST_LISTEN + rng.exponential(4.0, N_POSITIONS)
            return np.minimum(listened, SNIPPET_SECONDS)
        if self.kind == "random":
            return rng.uniform(1.0, 3.0, N_POSITIONS)
        return rng.uniform(0.2, 1.0, N_POSITIONS)  # fast and always_a: barely a listen


def simulate_votes(
    taste: Taste,
    triplets: np.ndarray,
    listeners: Sequence[SimulatedListener],
    votes_per_triplet: int | Sequence[int],
    rng: np.random.Generator,
) -> list[list[tuple[int, int | None]]]:
    """For each triplet, (listener index, answer) pairs from distinct listeners drawn at
    random; `votes_per_triplet` is one count or one per triplet."""
    t = np.asarray(triplets, dtype=np.int64)
    counts = np.broadcast_to(np.asarray(votes_per_triplet), (len(t),))
    result: list[list[tuple[int, int | None]]] = []
    for (i, j, k), n in zip(t, counts, strict=True):
        p = taste.probabilities(int(i), int(j), int(k))
        who = rng.choice(len(listeners), size=min(int(n), len(listeners)), replace=False)
        result.append([(int(w), listeners[w].answer(p, rng)) for w in who])
    return result
