"""Transition model: from the frames of a clip's ending, predict the embedding of what follows.

Pure torch, numpy and FAISS, no Django. Three parts:

1. Clips. `track_clips(wave16k)` cuts a 16 kHz mono track into ordered clips (25 s with 5 s
   overlap by default) over one array of frame embeddings for the whole track: per 0.5 s
   window, the mean and spread of each of the 64 log-mel bands (128 numbers). A clip's
   *ending* is its last 4 s of windows, its *opening* its first 4 s, and its *continuation*
   the 4 s that start where the clip stops (so it never overlaps the context).
2. Model. `TransitionNet` reads an ending (B, T, 128) of any length T with a bidirectional
   LSTM and predicts an L2-normalised embedding of what should follow; `encode_opening`
   embeds candidate openings into the same space, so retrieval is an inner product.
3. Training and retrieval. `train_transitions` (triplet margin loss on cosine distance, in-
   batch hardest negatives, Adam with cosine annealing, resumable checkpoints; pairs people
   rated well or badly, `RatedPairs`, join each batch as extra positives and negatives) and
   `opening_index` / `next_clips` (FAISS inner product over normalised openings).

Design note: why these frames and this pooling
----------------------------------------------
Window statistics of the log-mel are what the mel-stats baseline sees, so the model starts
from the baseline's information and is cheap (one log-mel pass per track, then slicing: any
seam on the 0.5 s grid is a view, which lets training draw seams at every position of every
track rather than only at clip boundaries, ~20x more training pairs). "More weight near the
seam" is a recency prior in the pooling: attention logits over the LSTM outputs minus
softplus(r) * (seconds before the seam), with r learned and initialised so the last second
weighs about e times the one before. The LSTM's last output joins the pooled vector too.
Everything is tensor ops over the time axis (no Python loop, no arange of a traced length),
so the model exports to ONNX with `dynamo=False` and a dynamic time axis.
"""

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embeddings.extractors import mel_stats
from embeddings.extractors.mel_stats import FRAME_RATE, N_MELS, SAMPLE_RATE
from training.nets import log_mel
from training.train import (
    checkpoint_read,
    save_checkpoint,
    training_state,
    training_state_restore,
)
from training.transition_metrics import SeamSet

TORCH_THREADS = 2  # the worker machines have 2 cores
FEATURE_DIM = 2 * N_MELS  # mean and spread of each mel band per window


@dataclass
class ClipConfig:
    clip_s: float = 25.0  # s, clip length
    overlap_s: float = 5.0  # s shared by consecutive clips
    ending_s: float = 4.0  # s of a clip's end the model reads
    opening_s: float = 4.0  # s of a clip's start that candidates are judged by
    window_s: float = 0.5  # s of audio per frame embedding
    mel_stats: bool = True  # also compute mel-stats vectors for the baseline

    def windows(self, seconds: float) -> int:
        return round(seconds / self.window_s)


@dataclass
class TrackClips:
    """A track's frame embeddings and its ordered clips, in window units (0.5 s)."""

    frames: np.ndarray  # (W, FEATURE_DIM) float32, the whole track
    starts: np.ndarray  # (C,) int, first window of each clip
    ends: np.ndarray  # (C,) int, one past the last window of each clip
    ending_windows: int
    opening_windows: int
    # mel-stats of each clip's ending, opening and continuation (C, DIM); NaN rows when the
    # track stops before a continuation, None when not computed.
    ending_stats: np.ndarray | None = None
    opening_stats: np.ndarray | None = None
    next_stats: np.ndarray | None = None

    @property
    def has_next(self) -> np.ndarray:
        """(C,) bool: the track goes on for a whole opening after the clip."""
        return self.ends + self.opening_windows <= len(self.frames)

    def ending(self, clip: int) -> np.ndarray:
        return self.frames[self.ends[clip] - self.ending_windows : self.ends[clip]]

    def opening(self, clip: int) -> np.ndarray:
        return self.frames[self.starts[clip] : self.starts[clip] + self.opening_windows]

    def continuation(self, clip: int) -> np.ndarray:
        return self.frames[self.ends[clip] : self.ends[clip] + self.opening_windows]


def frame_features(wave16k: np.ndarray, window_s: float = 0.5) -> np.ndarray:
    """(W, 128) float32: mean and std of each log-mel band over consecutive windows of
    16 kHz mono audio; a last partial window is dropped."""
    per_window = round(window_s * FRAME_RATE)
    with torch.no_grad():
        mel = log_mel(torch.from_numpy(np.ascontiguousarray(wave16k, dtype=np.float32)))
    n = mel.shape[-1] // per_window
    windows = mel[:, : n * per_window].reshape(N_MELS, n, per_window)
    return torch.cat([windows.mean(-1), windows.std(-1, correction=0)]).T.contiguous().numpy()


def track_clips(wave16k: np.ndarray, config: ClipConfig | None = None) -> TrackClips:
    """Cut 16 kHz mono audio into ordered clips with frame embeddings (see the module note).

    Only whole clips are kept, so a track shorter than one clip has none.
    """
    c = config or ClipConfig()
    frames = frame_features(wave16k, c.window_s)
    length, hop = c.windows(c.clip_s), c.windows(c.clip_s - c.overlap_s)
    if hop <= 0 or c.windows(c.ending_s) > length or c.windows(c.opening_s) > length:
        raise ValueError(f"inconsistent clip layout: {c}")
    starts = np.arange(0, max(0, len(frames) - length + 1), hop, dtype=np.int64)
    return _clips_with_stats(wave16k, frames, starts, starts + length, c)


def clips_at(
    wave16k: np.ndarray, spans_s: np.ndarray, config: ClipConfig | None = None
) -> TrackClips:
    """Clips of 16 kHz mono audio at given (start, end) seconds (C, 2), e.g. a catalogue's
    own clips, on the window grid: starts rounded, ends rounded down to whole windows so
    an ending never reaches past its clip or the audio."""
    c = config or ClipConfig()
    frames = frame_features(wave16k, c.window_s)
    spans = np.asarray(spans_s, dtype=np.float64).reshape(-1, 2)
    starts = np.round(spans[:, 0] / c.window_s).astype(np.int64)
    # A tolerance for floating-point error: an end on the grid stays on it.
    ends = np.minimum(np.floor(spans[:, 1] / c.window_s + 1e-6).astype(np.int64), len(frames))
    return _clips_with_stats(wave16k, frames, starts, ends, c)


def _clips_with_stats(
    wave16k: np.ndarray, frames: np.ndarray, starts: np.ndarray, ends: np.ndarray, c: ClipConfig
) -> TrackClips:
    clips = TrackClips(frames, starts, ends, c.windows(c.ending_s), c.windows(c.opening_s))
    if c.mel_stats:
        per = round(c.window_s * SAMPLE_RATE)  # samples per window
        wave = np.asarray(wave16k, dtype=np.float32)

        def stats(first: int, count: int) -> np.ndarray:
            if first < 0 or first + count > len(frames):
                return np.full(mel_stats.DIM, np.nan, dtype=np.float32)
            return mel_stats.extract(wave[first * per : (first + count) * per])

        ew, ow = clips.ending_windows, clips.opening_windows

        def rows(firsts: np.ndarray, count: int) -> np.ndarray:
            return np.array([stats(f, count) for f in firsts]).reshape(-1, mel_stats.DIM)

        clips.ending_stats = rows(clips.ends - ew, ew)
        clips.opening_stats = rows(starts, ow)
        clips.next_stats = rows(clips.ends, ow)
    return clips


@dataclass
class HeldOut:
    """Held-out seams and candidate openings as arrays, ready for `evaluate_transitions`."""

    seams: SeamSet  # spans in windows
    endings: np.ndarray  # (Q, ending_windows, in_dim) frames before each seam
    pool: np.ndarray  # (P, opening_windows, in_dim) frames of each candidate opening
    ending_stats: np.ndarray  # (Q, mel_stats.DIM)
    pool_stats: np.ndarray  # (P, mel_stats.DIM)
    ending_edge: np.ndarray  # (Q, N_MELS) mean log-mel of the last window before the seam
    pool_edge: np.ndarray  # (P, N_MELS) mean log-mel of each candidate's first window


def held_out(
    tracks: list[TrackClips],
    track_ids: list[int],
    groups: dict[int, int] | None = None,
    seam_tracks: set[int] | None = None,
) -> HeldOut:
    """Seams of every clip with a continuation (of the `seam_tracks` only, when given); the
    candidate pool is every clip's opening and every seam's continuation (each a 4 s
    stretch of one of these tracks), so other tracks can widen the pool of distractors."""
    seam_rows, pool_rows, ending_stats, pool_stats = [], [], [], []
    endings, pool = [], []
    for clips, track in zip(tracks, track_ids, strict=True):
        if clips.ending_stats is None:
            raise ValueError("held-out clips need mel-stats (ClipConfig.mel_stats)")
        ow = clips.opening_windows
        for c in range(len(clips.starts)):
            if clips.starts[c] + ow > len(clips.frames) or clips.ends[c] < clips.ending_windows:
                continue  # too short for a whole opening or ending
            pool_rows.append((track, clips.starts[c], clips.starts[c] + ow))
            pool.append(clips.opening(c))
            pool_stats.append(clips.opening_stats[c])
            if clips.has_next[c] and (seam_tracks is None or track in seam_tracks):
                seam_rows.append((track, clips.starts[c], clips.ends[c], len(pool_rows)))
                pool_rows.append((track, clips.ends[c], clips.ends[c] + ow))
                pool.append(clips.continuation(c))
                pool_stats.append(clips.next_stats[c])
                endings.append(clips.ending(c))
                ending_stats.append(clips.ending_stats[c])
    if not seam_rows:
        raise ValueError("no held-out clip is followed by a whole opening")
    seam_table, pool_table = np.array(seam_rows).reshape(-1, 4), np.array(pool_rows)
    seams = SeamSet(
        seam_track=seam_table[:, 0],
        seam_span=seam_table[:, 1:3],
        seam_truth=seam_table[:, 3],
        pool_track=pool_table[:, 0],
        pool_span=pool_table[:, 1:3],
        track_group=groups,
    )
    endings_a, pool_a = np.stack(endings), np.stack(pool)
    return HeldOut(
        seams, endings_a, pool_a, np.stack(ending_stats), np.stack(pool_stats),
        endings_a[:, -1, :N_MELS], pool_a[:, 0, :N_MELS],
    )  # fmt: skip


@dataclass
class TransitionNetConfig:
    in_dim: int = FEATURE_DIM  # features per frame
    hidden: int = 128  # LSTM units per direction
    layers: int = 2  # stacked LSTM layers
    dropout: float = 0.2  # between LSTM layers and before the head
    embed_dim: int = 64  # output embedding size
    window_s: float = 0.5  # s per input frame, so the recency prior is in seconds
    recency_per_s: float = 1.0  # initial log-weight lost per second before the seam


class TransitionNet(nn.Module):
    """Ending frames (B, T, in_dim) -> predicted next embedding (B, embed_dim), and
    opening frames (B, T', in_dim) -> opening embedding (B, embed_dim); both L2-normalised."""

    def __init__(self, config: TransitionNetConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or TransitionNetConfig()
        # Per-feature standardisation, fitted on training frames and saved with the weights.
        self.register_buffer("feature_mean", torch.zeros(c.in_dim))
        self.register_buffer("feature_std", torch.ones(c.in_dim))
        self.lstm = nn.LSTM(
            c.in_dim, c.hidden, c.layers, batch_first=True, bidirectional=True, dropout=c.dropout
        )
        self.attention = nn.Linear(2 * c.hidden, 1)
        # softplus(r) = recency_per_s at the start; softplus keeps the prior pointing forward.
        self.recency = nn.Parameter(torch.tensor(math.log(math.expm1(c.recency_per_s))))
        self.head = nn.Sequential(
            nn.Dropout(c.dropout),
            nn.Linear(4 * c.hidden + c.in_dim, 2 * c.hidden),
            nn.GELU(),
            nn.Linear(2 * c.hidden, c.embed_dim),
        )
        self.opening_head = nn.Sequential(
            nn.Linear(2 * c.in_dim, 2 * c.hidden), nn.GELU(), nn.Linear(2 * c.hidden, c.embed_dim)
        )

    def _standardise(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames - self.feature_mean) / self.feature_std

    def forward(self, ending: torch.Tensor) -> torch.Tensor:
        x = self._standardise(ending)
        h, _ = self.lstm(x)  # (B, T, 2H)
        # Seconds before the seam of each frame, counted from the end: T-1, ..., 1, 0.
        age = torch.flip(torch.cumsum(torch.ones_like(h[..., :1]), dim=1), [1]) - 1
        logits = self.attention(h) - F.softplus(self.recency) * age * self.config.window_s
        pooled = torch.sum(torch.softmax(logits, dim=1) * h, dim=1)
        # The last frame's raw features too: the baseline's strongest cue is that the
        # spectrum just before the seam carries on after it.
        z = self.head(torch.cat([pooled, h[:, -1], x[:, -1]], dim=1))
        return F.normalize(z, dim=1)

    def encode_opening(self, opening: torch.Tensor) -> torch.Tensor:
        x = self._standardise(opening)
        # The whole opening's mean and its first window, which sits against the seam.
        z = self.opening_head(torch.cat([x.mean(dim=1), x[:, 0]], dim=1))
        return F.normalize(z, dim=1)


@torch.no_grad()
def predict_next(model: TransitionNet, endings: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Predicted next embeddings (N, D) of endings (N, T, in_dim), in eval mode."""
    return _batched(model.eval(), model.forward, endings, batch_size)


@torch.no_grad()
def embed_openings(model: TransitionNet, openings: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Opening embeddings (N, D) of openings (N, T, in_dim), in eval mode."""
    return _batched(model.eval(), model.encode_opening, openings, batch_size)


def _batched(model: TransitionNet, fn: Callable, x: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.zeros((len(x), model.config.embed_dim), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        part = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], np.float32))
        out[start : start + len(part)] = fn(part).numpy()
    return out


def opening_index(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """An exact inner-product FAISS index of L2-normalised opening embeddings under int ids."""
    index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(np.ascontiguousarray(vectors, np.float32), np.asarray(ids, np.int64))
    return index


def next_clips(index: faiss.Index, predicted: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best next clips (ids, cosine scores), each (M, k), best first, for predictions
    (M, D) or (D,)."""
    query = np.ascontiguousarray(np.atleast_2d(predicted), np.float32)
    scores, ids = index.search(query, min(k, index.ntotal))
    return ids, scores


@dataclass
class TransitionTrainConfig:
    steps: int = 300  # optimiser steps (~0.1 s each with the default batch on 2 busy cores)
    batch_size: int = 256  # seams per step; each one's negatives are the others' openings
    lr: float = 2e-3  # Adam learning rate, annealed to 0 along a cosine
    margin: float = 0.2  # triplet margin on cosine distance (0..2)
    hardest_weight: float = 1.0  # weight of the hardest in-batch negative beside the mean
    grad_clip: float = 1.0  # max gradient norm (LSTMs spike early on)
    seed: int = 0
    log_every: int = 25  # steps between progress reports
    checkpoint_path: str | None = None
    checkpoint_every: int = 100  # steps between checkpoints
    rated_per_step: int = 32  # rated pairs of each kind added to every batch, when any


@dataclass
class RatedPairs:
    """Transitions people rated, between training tracks, in window units: the ending before
    window `ending[i, 1]` of track `ending[i, 0]` flowing into the opening from window
    `opening[i, 1]` of track `opening[i, 0]`."""

    ending: np.ndarray  # (N, 2) int: track, seam window
    opening: np.ndarray  # (N, 2) int: track, first window
    good: np.ndarray  # (N,) bool: rated well (an extra positive) or badly (an extra negative)


@dataclass
class TransitionData:
    """Training tracks: whole-track frame embeddings; seams are drawn at every window."""

    frames: list[np.ndarray]  # per track (W_i, in_dim) float32
    ending_windows: int = 8  # frames per ending (4 s of 0.5 s windows)
    opening_windows: int = 8  # frames per opening
    groups: list[int] | None = None  # tracks of one group (versions of a piece) never
    # serve as each other's negatives; None: every track is its own group
    rated: RatedPairs | None = None  # human ratings as an extra signal (see train_transitions)


@dataclass
class TransitionResult:
    model: TransitionNet
    config: TransitionTrainConfig
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0


def transition_loss(
    predicted: torch.Tensor,
    openings: torch.Tensor,
    negative: torch.Tensor,
    margin: float,
    hardest_weight: float = 1.0,
) -> torch.Tensor:
    """Triplet margin loss on cosine distance with in-batch negatives.

    `predicted` (B, D) and `openings` (C, D), C >= B, are normalised; row i's positive is
    opening i and `negative` (B, C) bool marks which openings may serve as its negatives.
    Per anchor: mean hinge over its negatives + hardest_weight * the hardest one's hinge.
    """
    distance = 1 - predicted @ openings.T  # (B, C)
    positive = torch.diagonal(distance)[:, None]
    hinge = F.relu(positive - distance + margin) * negative
    mean = hinge.sum(dim=1) / negative.sum(dim=1).clamp(min=1)
    return (mean + hardest_weight * hinge.max(dim=1).values).mean()


def _seam_table(data: TransitionData) -> np.ndarray:
    """(N, 2) int: (track, window) of every seam with a whole ending before and opening after."""
    rows = [
        np.stack([np.full(n, t), np.arange(data.ending_windows, data.ending_windows + n)], 1)
        for t, f in enumerate(data.frames)
        if (n := len(f) - data.ending_windows - data.opening_windows + 1) > 0
    ]
    if not rows:
        raise ValueError("no track is long enough for one ending and one opening")
    return np.concatenate(rows)


def _rated_rows(data: TransitionData) -> tuple[np.ndarray, np.ndarray]:
    """The usable rated pairs as (N, 4) int rows (ending track, seam, opening track, first
    window): (positives, negatives).

    A negative is contrasted with the ending's own continuation, so one is used only where
    the track goes on after the seam and the rated opening is not that continuation."""
    empty = np.zeros((0, 4), dtype=np.int64)
    if data.rated is None or len(data.rated.good) == 0:
        return empty, empty
    ew, ow = data.ending_windows, data.opening_windows
    rows = np.concatenate([data.rated.ending, data.rated.opening], axis=1).astype(np.int64)
    lengths = np.array([len(f) for f in data.frames])
    if rows[:, [0, 2]].min() < 0 or rows[:, [0, 2]].max() >= len(lengths):
        raise ValueError("a rated pair names a track that is not in the training data")
    fits = (rows[:, 1] >= ew) & (rows[:, 1] <= lengths[rows[:, 0]])
    fits &= (rows[:, 3] >= 0) & (rows[:, 3] + ow <= lengths[rows[:, 2]])
    good = np.asarray(data.rated.good, dtype=bool)
    continues = rows[:, 1] + ow <= lengths[rows[:, 0]]
    own = (rows[:, 0] == rows[:, 2]) & (np.abs(rows[:, 3] - rows[:, 1]) < ow + ew)
    return rows[fits & good], rows[fits & ~good & continues & ~own]


def _negative_mask(
    endings: np.ndarray,
    openings: np.ndarray,
    columns: np.ndarray,
    groups: np.ndarray,
    data: TransitionData,
) -> np.ndarray:
    """(B, C) bool: opening column j is a fair negative for row i.

    Row i reads the ending before `endings[i]` (track, window) and its positive is the
    opening at `openings[i]`; `columns` (C, 2) are every opening in the batch. A column is
    unfair when it shares a group with either side of the row, unless it is on the same
    track and overlaps neither the row's ending with its true continuation nor the row's
    positive. For a natural seam (opening = continuation) this is: other groups always;
    within one track, only openings that overlap neither the ending nor the continuation.
    """
    ew, ow = data.ending_windows, data.opening_windows
    column_track, column_at = columns[:, 0][None, :], columns[:, 1][None, :]
    fair = np.ones((len(endings), len(columns)), dtype=bool)
    for (track, at), before in ((endings.T, ew), (openings.T, 0)):
        track, at = track[:, None], at[:, None]
        overlaps = (column_at < at + ow) & (column_at + ow > at - before)
        same_group = groups[track] == groups[column_track]
        fair &= ~(same_group & ((track != column_track) | overlaps))
    return fair


def train_transitions(
    config: TransitionTrainConfig,
    data: TransitionData,
    net_config: TransitionNetConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> TransitionResult:
    """Train a TransitionNet on seams drawn uniformly from every position of `data`'s tracks.

    With `data.rated`, each batch also holds up to `config.rated_per_step` pairs people
    rated well, as extra (ending, positive) rows, and as many rated badly, as rows whose
    positive is the ending's true continuation and whose rated opening is an extra column
    that is a negative for that row whatever its track.

    Resumes from `config.checkpoint_path` if it exists (its saved net config wins); with the
    same seed and data, a resumed run ends where an unbroken one would.
    """
    torch.set_num_threads(TORCH_THREADS)
    net_config = net_config or TransitionNetConfig()
    resume = checkpoint_read(config.checkpoint_path)
    if resume is not None:
        net_config = TransitionNetConfig(**resume["net_config"])
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = TransitionNet(net_config)
    all_frames = np.concatenate(data.frames).astype(np.float64)
    model.feature_mean.copy_(torch.from_numpy(all_frames.mean(0)).float())
    model.feature_std.copy_(torch.from_numpy(np.maximum(all_frames.std(0), 1e-3)).float())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.steps)
    step, history, resumed_from = 0, [], None
    if resume is not None:
        training_state_restore(resume, model, optimizer, rng)
        schedule.load_state_dict(resume["schedule"])
        step, history, resumed_from = resume["step"], resume["history"], resume["step"]
    metrics: dict[str, float] = {}

    def checkpoint() -> None:
        if config.checkpoint_path:
            save_checkpoint(
                config.checkpoint_path,
                {
                    **training_state(model, optimizer, rng),
                    "schedule": schedule.state_dict(),
                    "config": asdict(config),
                    "net_config": asdict(net_config),
                    "step": step,
                    "metrics": metrics,
                    "history": history,
                },
            )

    table = _seam_table(data)
    positives, negatives = _rated_rows(data)
    groups = np.asarray(data.groups if data.groups is not None else range(len(data.frames)))
    tracks = [torch.from_numpy(np.ascontiguousarray(f, np.float32)) for f in data.frames]
    ew, ow = data.ending_windows, data.opening_windows
    started = time.monotonic()
    model.train()
    while step < config.steps:
        seams = table[rng.integers(0, len(table), config.batch_size)]
        ending_at, opening_at, extra = [seams], [seams], np.zeros((0, 2), dtype=np.int64)
        if len(positives) and config.rated_per_step:
            rows = rng.permutation(positives)[: config.rated_per_step]
            ending_at.append(rows[:, :2])
            opening_at.append(rows[:, 2:])
        if len(negatives) and config.rated_per_step:
            rows = rng.permutation(negatives)[: config.rated_per_step]
            ending_at.append(rows[:, :2])
            opening_at.append(rows[:, :2])  # the true continuation starts at the seam
            extra = rows[:, 2:]
        ending_at, opening_at = np.concatenate(ending_at), np.concatenate(opening_at)
        columns = np.concatenate([opening_at, extra])
        endings = torch.stack([tracks[t][a - ew : a] for t, a in ending_at])
        openings = torch.stack([tracks[t][a : a + ow] for t, a in columns])
        mask = _negative_mask(ending_at, opening_at, columns, groups, data)
        # A rated-bad opening is a negative for its own row, whatever its track.
        bad = np.arange(len(extra))
        mask[len(ending_at) - len(extra) + bad, len(opening_at) + bad] = True
        loss = transition_loss(
            model(endings), model.encode_opening(openings), torch.from_numpy(mask),
            config.margin, config.hardest_weight,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        step += 1
        if step % config.log_every == 0 or step == config.steps:
            record: dict[str, float] = {"step": step, "loss": loss.item()}
            record["seconds"] = time.monotonic() - started
            if resumed_from is not None:
                record["resumed_from"] = resumed_from
            history.append(record)
            if progress:
                progress(record)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            checkpoint()
    metrics = {"final_loss": history[-1]["loss"] if history else float("nan")}
    metrics |= {"rated_positives": len(positives), "rated_negatives": len(negatives)}
    if resumed_from is not None:
        metrics["resumed_from"] = resumed_from
    checkpoint()
    model.eval()
    return TransitionResult(model, config, metrics, history, step)


def load_transition_model(path: str) -> TransitionNet:
    """A trained TransitionNet from a checkpoint written by `train_transitions`."""
    state: dict[str, Any] = torch.load(path, weights_only=False)
    model = TransitionNet(TransitionNetConfig(**state["net_config"]))
    model.load_state_dict(state["model"])
    return model.eval()
