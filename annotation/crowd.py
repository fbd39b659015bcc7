"""The simulated crowd: a hidden taste and listeners who answer odd-one-out triplets from it.

Pure numpy, no Django. It stands in for people in the demo, tests and benchmarks.

The taste projects each snippet's standardised mel-stats vector onto a few random
directions (`taste_dims`, about 4): like people, it cares about a few aspects of the sound,
not all of them, so raw mel-stats distance is not already the answer. A listener picks the
odd position x with a Luce (softmax) choice, p(x) ∝ exp(-d(pair without x) / temperature):
the odd one is likely the one whose two partners are close together. The temperature is
calibrated so an honest listener picks the noiseless taste answer `target_agreement` of the
time. Every random draw comes from a seeded generator, so runs repeat exactly.

Transition smoothness (design note). A rendering joins clip X's ending to clip Y's opening;
the crowd rates it 1 (jarring) to 5 (seamless) from how much changes across the seam, read
from the mel-stats vectors of the two edges and the rendering's tempo estimates:

- loudness: the level jump (frame RMS mean, after the gains the renderer applied) and the
  change in dynamics (frame RMS spread);
- spectrum: log-mel band means (after the gains) and spectral shape (centroid, bandwidth,
  flatness, rolloff);
- texture: log-mel band spreads and onset-strength statistics;
- tempo: the octave-folded BPM ratio in tenths of an octave (capped), counted only as far
  as both tempos are confident (from none at 0.15 to all at 0.5: a beat nobody hears
  cannot stumble).

Each edge column is standardised by its spread over the collection; an aspect's mismatch is
the RMS of its standardised differences, so aspects of different sizes weigh alike. Hidden
aspect weights, drawn from the seed, make the mismatch a weighted mean: like people, the
crowd cares more about some aspects than others. A crossfade hides part of a mismatch
(x0.8) and an overlay a little less (x0.9) than a hard cut (x1). The mismatch m maps to an
expected rating 1 + 4·exp(-k·m), with k calibrated so the median random pair of the
collection, heard as a hard cut, expects `random_median` (2.5): a true continuation (m near
0) expects close to 5, random pairs spread below. An honest listener adds a leniency of their
own (fixed per listener) and noise per rating, then rounds into 1..5.
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

# The mel-stats layout (embeddings.extractors.mel_stats.extract), restated here so the crowd
# stays importable without torch.
MEL_STATS_DIM = 142
MEL_MEAN = slice(0, 64)  # log-mel band means (natural log of power)
RMS_MEAN_DB, TEMPO_BPM, TEMPO_STRENGTH = 136, 140, 141
NATS_PER_DB = np.log(10) / 10  # a gain of g dB adds g·NATS_PER_DB to a natural-log power
COLUMNS = {  # the mel-stats columns each aspect reads; tempo comes apart
    "loudness": np.r_[136:138],  # frame RMS mean and spread, dBFS
    "spectrum": np.r_[0:64, 128:136],  # log-mel band means, spectral shape
    "texture": np.r_[64:128, 138:140],  # log-mel band spreads, onset strength
}
ASPECTS = (*COLUMNS, "tempo")
TEMPO_STEP = 0.1  # octaves: one unit of tempo mismatch (about 7%)
TEMPO_CAP = 3.0  # units; beyond this a tempo clash cannot get worse
TEMPO_GUESS = 0.15  # tempo confidence of noise (about 0.1) and a little more: no beat heard
TEMPO_CLEAR = 0.5  # confidence at which a beat is plainly heard
SOFTENING = {"hard_cut": 1.0, "overlay": 0.9, "crossfade": 0.8}  # share of a mismatch heard
RATINGS = (1, 5)  # jarring … seamless
ALWAYS_RATING = 1  # what an always-the-same spammer presses (the first key)


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


@dataclass
class SmoothnessConfig:
    seed: int = 0  # fixes the hidden aspect weights
    random_median: float = 2.5  # expected rating of the median random pair as a hard cut
    leniency_sd: float = 0.4  # rating points: how much listeners differ in strictness
    noise: float = 0.6  # rating points: one listener's noise from rating to rating


@dataclass(frozen=True)
class Seam:
    """What the crowd hears at one rendering's seam."""

    ending: np.ndarray  # (MEL_STATS_DIM,) mel-stats of X's last seconds
    opening: np.ndarray  # (MEL_STATS_DIM,) mel-stats of Y's first seconds
    style: str = "hard_cut"
    bpm: tuple[float, float] | None = None  # X, Y; None: the edges' own mel-stats tempo
    tempo_confidence: tuple[float, float] = (0.0, 0.0)  # in [0, 1]
    gain_db: tuple[float, float] = (0.0, 0.0)  # dB the renderer applied to X and to Y


class Smoothness:
    """The crowd's hidden rule of smoothness over a collection's (N, D) clip-edge vectors
    (openings and endings alike: they only set each column's scale)."""

    def __init__(self, edges: np.ndarray, config: SmoothnessConfig | None = None) -> None:
        self.config = config or SmoothnessConfig()
        x = np.asarray(edges, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != MEL_STATS_DIM:
            raise ValueError(f"expected (N, {MEL_STATS_DIM}) mel-stats vectors, got {x.shape}")
        std = x.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        # Its own stream, so the taste and the smoothness of one seed are independent.
        rng = np.random.default_rng([self.config.seed, 1])
        weights = rng.dirichlet(np.full(len(ASPECTS), 2.0))
        self.weights = weights / weights.mean()  # (aspects,), mean 1
        self.k = 1.0

    def aspects(
        self,
        endings: np.ndarray,
        openings: np.ndarray,
        bpm: np.ndarray,
        confidence: np.ndarray,
        gain_db: np.ndarray,
    ) -> np.ndarray:
        """Per-aspect mismatch (N, 4) of N seams; `bpm`, `confidence` and `gain_db` are
        (N, 2) for X and Y."""
        a = np.asarray(endings, np.float64).reshape(-1, MEL_STATS_DIM).copy()
        b = np.asarray(openings, np.float64).reshape(-1, MEL_STATS_DIM).copy()
        gains = np.asarray(gain_db, np.float64).reshape(-1, 2)
        # Loudness matching shifts every band and the RMS level; what is heard is the rest.
        for side, g in ((a, gains[:, :1]), (b, gains[:, 1:])):
            side[:, MEL_MEAN] += g * NATS_PER_DB
            side[:, RMS_MEAN_DB] += g[:, 0]
        z = (a - b) / self.scale
        spectral = [np.sqrt((z[:, cols] ** 2).mean(axis=1)) for cols in COLUMNS.values()]
        bpm = np.asarray(bpm, np.float64).reshape(-1, 2)
        confidence = np.asarray(confidence, np.float64).reshape(-1, 2)
        known = (bpm > 0).all(axis=1)
        ratio = np.log2(np.where(known[:, None], bpm, 1.0))
        octaves = np.abs(ratio[:, 0] - ratio[:, 1]) % 1.0
        folded = np.minimum(octaves, 1.0 - octaves)  # 60 and 120 BPM share their beats
        sure = (confidence.min(axis=1) - TEMPO_GUESS) / (TEMPO_CLEAR - TEMPO_GUESS)
        heard = np.clip(sure, 0.0, 1.0) * known
        tempo = np.minimum(folded / TEMPO_STEP, TEMPO_CAP) * heard
        return np.stack([*spectral, tempo], axis=1)

    def mismatches(
        self,
        endings: np.ndarray,
        openings: np.ndarray,
        styles: Sequence[str],
        bpm: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        gain_db: np.ndarray | None = None,
    ) -> np.ndarray:
        """Weighted mismatch (N,) of N seams as heard in their styles. Without `bpm` and
        `confidence`, the edges' own mel-stats tempo and its strength stand in."""
        a = np.asarray(endings, np.float64).reshape(-1, MEL_STATS_DIM)
        b = np.asarray(openings, np.float64).reshape(-1, MEL_STATS_DIM)
        if bpm is None:
            bpm = np.stack([a[:, TEMPO_BPM], b[:, TEMPO_BPM]], axis=1)
            confidence = np.stack([a[:, TEMPO_STRENGTH], b[:, TEMPO_STRENGTH]], axis=1)
        if confidence is None:
            raise ValueError("give the tempo confidence with the tempo")
        if gain_db is None:
            gain_db = np.zeros((len(a), 2))
        per_aspect = self.aspects(a, b, bpm, confidence, gain_db)
        try:
            softening = np.array([SOFTENING[s] for s in styles])
        except KeyError as e:
            raise ValueError(f"unknown style {e.args[0]!r}: {', '.join(SOFTENING)}") from None
        return per_aspect @ self.weights / len(ASPECTS) * softening

    def calibrate(self, endings: np.ndarray, openings: np.ndarray) -> float:
        """Set k so the median of these (random) pairs, heard as hard cuts, expects
        `random_median`; returns k."""
        target = self.config.random_median
        if not RATINGS[0] < target < RATINGS[1]:
            raise ValueError(f"random_median must lie strictly between {RATINGS}")
        n = len(np.asarray(endings).reshape(-1, MEL_STATS_DIM))
        median = float(np.median(self.mismatches(endings, openings, ["hard_cut"] * n)))
        if median <= 0:
            raise ValueError("the calibration pairs do not differ at all")
        span = RATINGS[1] - RATINGS[0]
        self.k = float(np.log(span / (target - RATINGS[0])) / median)
        return self.k

    def expected(self, seam: Seam) -> float:
        """The rating a listener without bias or noise would give, in [1, 5]."""
        bpm, confidence = (None, None) if seam.bpm is None else (seam.bpm, seam.tempo_confidence)
        m = self.mismatches(
            seam.ending, seam.opening, [seam.style], bpm, confidence, np.array(seam.gain_db)
        )[0]
        return RATINGS[0] + (RATINGS[1] - RATINGS[0]) * float(np.exp(-self.k * m))


class SimulatedListener:
    """One simulated person. `honest` samples from the taste and rates transitions from the
    smoothness rule, with a `leniency` of their own; `random` and `fast` are spammers
    answering uniformly (`fast` barely plays anything); `always_a` presses 1."""

    def __init__(
        self,
        kind: ListenerKind = "honest",
        cant_tell: float = 0.02,
        leniency: float = 0.0,
        rating_noise: float = SmoothnessConfig.noise,
    ) -> None:
        if kind not in ("honest", "random", "always_a", "fast"):
            raise ValueError(f"unknown listener kind {kind!r}")
        self.kind = kind
        self.cant_tell = cant_tell
        self.leniency = leniency  # rating points added to every rating
        self.rating_noise = rating_noise  # rating points, sd per rating

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

    def rate(self, expected: float, rng: np.random.Generator) -> int:
        """A rating 1..5 of a transition whose noiseless rating is `expected`."""
        if self.kind == "always_a":
            return ALWAYS_RATING
        if self.kind in ("random", "fast"):
            return int(rng.integers(RATINGS[0], RATINGS[1] + 1))
        heard = expected + self.leniency + rng.normal(0.0, self.rating_noise)
        return int(np.clip(np.rint(heard), *RATINGS))

    def rating_listen_s(self, duration_s: float, seam_s: float, rng: np.random.Generator) -> float:
        """Seconds this listener plays a rendering before rating it: an honest one hears the
        seam and a few seconds past it."""
        if self.kind == "honest":
            heard = max(MIN_HONEST_LISTEN, seam_s + rng.uniform(2.0, 6.0))
            return float(min(heard, duration_s))
        if self.kind == "random":
            return float(rng.uniform(1.0, 3.0))
        return float(rng.uniform(0.2, 1.0))

    def broke_at(
        self, rating: int, seam_s: float, duration_s: float, rng: np.random.Generator
    ) -> float | None:
        """Where an honest listener taps "it broke here" (just after the seam, most times
        they found it jarring), or None."""
        if self.kind != "honest" or rating > 2 or rng.random() > 0.7:
            return None
        return float(np.clip(seam_s + abs(rng.normal(0.3, 0.3)), 0.0, duration_s))


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
