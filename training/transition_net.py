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
   batch hardest negatives, Adam with cosine annealing, resumable checkpoints) and
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
    clips = TrackClips(
        frames, starts, starts + length, c.windows(c.ending_s), c.windows(c.opening_s)
    )
    if c.mel_stats:
        per = round(c.window_s * SAMPLE_RATE)  # samples per window
        wave = np.asarray(wave16k, dtype=np.float32)

        def stats(first: int, count: int) -> np.ndarray:
            if first + count > len(frames):
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
    tracks: list[TrackClips], track_ids: list[int], groups: dict[int, int] | None = None
) -> HeldOut:
    """Seams of every clip with a continuation; the candidate pool is every clip's opening
    and every continuation (each a 4 s stretch of one of these tracks)."""
    seam_rows, pool_rows, ending_stats, pool_stats = [], [], [], []
    endings, pool = [], []
    for clips, track in zip(tracks, track_ids, strict=True):
        if clips.ending_stats is None:
            raise ValueError("held-out clips need mel-stats (ClipConfig.mel_stats)")
        ow = clips.opening_windows
        for c in range(len(clips.starts)):
            pool_rows.append((track, clips.starts[c], clips.starts[c] + ow))
            pool.append(clips.opening(c))
            pool_stats.append(clips.opening_stats[c])
            if clips.has_next[c]:
                seam_rows.append((track, clips.starts[c], clips.ends[c], len(pool_rows)))
                pool_rows.append((track, clips.ends[c], clips.ends[c] + ow))
                pool.append(clips.continuation(c))
                pool_stats.append(clips.next_stats[c])
                endings.append(clips.ending(c))
                ending_stats.append(clips.ending_stats[c])
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
    steps: int = 300  # optimiser steps (~3 min on 2 busy cores with the default batch)
    batch_size: int = 256  # seams per step; each one's negatives are the others' openings
    lr: float = 2e-3  # Adam learning rate, annealed to 0 along a cosine
    margin: float = 0.2  # triplet margin on cosine distance (0..2)
    hardest_weight: float = 1.0  # weight of the hardest in-batch negative beside the mean
    grad_clip: float = 1.0  # max gradient norm (LSTMs spike early on)
    seed: int = 0
    log_every: int = 25  # steps between progress reports
    checkpoint_path: str | None = None
    checkpoint_every: int = 100  # steps between checkpoints


@dataclass
class TransitionData:
    """Training tracks: whole-track frame embeddings; seams are drawn at every window."""

    frames: list[np.ndarray]  # per track (W_i, in_dim) float32
    ending_windows: int = 8  # frames per ending (4 s of 0.5 s windows)
    opening_windows: int = 8  # frames per opening
    groups: list[int] | None = None  # tracks of one group (versions of a piece) never
    # serve as each other's negatives; None: every track is its own group


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

    `predicted` and `openings` (B, D) are normalised; row i's positive is opening i and
    `negative` (B, B) bool marks which openings may serve as its negatives. Per anchor:
    mean hinge over its negatives + hardest_weight * the hardest one's hinge.
    """
    distance = 1 - predicted @ openings.T  # (B, B)
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


def _negative_mask(seams: np.ndarray, groups: np.ndarray, data: TransitionData) -> np.ndarray:
    """(B, B) bool: opening j is a fair negative for seam i. Other groups always are; within
    one track, only openings that overlap neither i's ending nor its true continuation."""
    track, at = seams[:, 0], seams[:, 1]
    same_group = groups[track][:, None] == groups[track][None, :]
    same_track = track[:, None] == track[None, :]
    overlaps = (at[None, :] < at[:, None] + data.opening_windows) & (
        at[None, :] + data.opening_windows > at[:, None] - data.ending_windows
    )
    return ~same_group | (same_track & ~overlaps)


def train_transitions(
    config: TransitionTrainConfig,
    data: TransitionData,
    net_config: TransitionNetConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> TransitionResult:
    """Train a TransitionNet on seams drawn uniformly from every position of `data`'s tracks.

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
    groups = np.asarray(data.groups if data.groups is not None else range(len(data.frames)))
    tracks = [torch.from_numpy(np.ascontiguousarray(f, np.float32)) for f in data.frames]
    ew, ow = data.ending_windows, data.opening_windows
    started = time.monotonic()
    model.train()
    while step < config.steps:
        seams = table[rng.integers(0, len(table), config.batch_size)]
        endings = torch.stack([tracks[t][a - ew : a] for t, a in seams])
        openings = torch.stack([tracks[t][a : a + ow] for t, a in seams])
        negative = torch.from_numpy(_negative_mask(seams, groups, data))
        loss = transition_loss(
            model(endings), model.encode_opening(openings), negative, config.margin,
            config.hardest_weight,
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
