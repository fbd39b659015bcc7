"""Self-supervised pretraining of OddNet: two chunks of one track should embed close together.

Pure torch and numpy, no Django. `pretrain(config, data)` needs no human judgments: each step
draws `batch_size` different tracks, takes two random crops of each (from two different
snippets when the track has several), lightly augments them (level change, a masked band of
mel bins, a masked stretch of time) and minimises the symmetric InfoNCE loss, where the other
tracks of the batch are the negatives. Checkpoints are self-describing and a killed run
resumes from its last one, as in `training.train`.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from training.nets import OddNet, OddNetConfig, seconds_to_frames
from training.train import (
    TORCH_THREADS,
    TrainResult,
    checkpoint_read,
    save_checkpoint,
    training_state,
    training_state_restore,
)

DB_TO_LOG_POWER = np.log(10.0) / 10.0  # a level change of x dB shifts log-power by x * this


@dataclass
class PretrainConfig:
    steps: int = 150  # optimiser steps
    batch_size: int = 32  # tracks per step, two views each
    lr: float = 3e-3  # AdamW peak learning rate (warm-up, cosine decay)
    weight_decay: float = 1e-2
    temperature: float = 0.1  # InfoNCE softmax temperature on cosine similarity
    crop_seconds: float = 6.0  # s per view
    gain_db: float = 6.0  # views differ in level by up to ± this, dB
    freq_mask_bins: int = 6  # at most this many adjacent mel bins masked per view
    time_mask_seconds: float = 0.5  # s, at most this much of a view masked
    seed: int = 0
    log_every: int = 10
    checkpoint_path: str | None = None
    checkpoint_every: int = 50


@dataclass
class TrackChunks:
    features: np.ndarray  # (S, n_mels, T) float32 log-mels of every snippet, equal T
    track_of: np.ndarray  # (S,) int: the track each snippet comes from


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE of L2-normalised views (B, D): row i of z1 should pick row i of z2."""
    logits = z1 @ z2.T / temperature
    target = torch.arange(len(z1))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _augment(views: torch.Tensor, config: PretrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Level change, one masked band of mel bins and one masked stretch of time per view."""
    n, bins, frames = views.shape
    gain = rng.uniform(-config.gain_db, config.gain_db, n) * DB_TO_LOG_POWER
    out = views + torch.as_tensor(gain, dtype=views.dtype)[:, None, None]
    floor = out.amin(dim=(1, 2), keepdim=True)  # masked cells become the view's quietest level
    mask = torch.zeros_like(out, dtype=torch.bool)
    max_t = seconds_to_frames(config.time_mask_seconds)
    for i in range(n):
        width = int(rng.integers(0, config.freq_mask_bins + 1))
        start = int(rng.integers(0, bins - width + 1))
        mask[i, start : start + width, :] = True
        length = int(rng.integers(0, max_t + 1))
        start = int(rng.integers(0, max(1, frames - length + 1)))
        mask[i, :, start : start + length] = True
    return torch.where(mask, floor.expand_as(out), out)


def _views(
    data: TrackChunks, tracks: np.ndarray, crop: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two crops per track: from two different snippets when it has several."""
    total = data.features.shape[-1]
    first, second = [], []
    for track in tracks:
        snippets = np.flatnonzero(data.track_of == track)
        pick = rng.choice(snippets, 2, replace=len(snippets) < 2)
        for index, out in zip(pick, (first, second), strict=True):
            start = int(rng.integers(0, total - crop + 1))
            out.append(data.features[index, :, start : start + crop])
    as_tensor = lambda views: torch.from_numpy(np.stack(views).astype(np.float32))  # noqa: E731
    return as_tensor(first), as_tensor(second)


def pretrain(
    config: PretrainConfig,
    data: TrackChunks,
    net_config: OddNetConfig | None = None,
    progress: Callable[[dict], None] | None = None,
) -> TrainResult:
    """Pretrain OddNet with InfoNCE on same-track pairs; resumes from `config.checkpoint_path`."""
    torch.set_num_threads(TORCH_THREADS)
    tracks = np.unique(data.track_of)
    if len(tracks) < 2:
        raise ValueError("pretraining needs at least two tracks: the others are the negatives")
    net_config = net_config or OddNetConfig()
    resume = checkpoint_read(config.checkpoint_path)
    if resume is not None:
        net_config = OddNetConfig(**resume["net_config"])
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = OddNet(net_config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    step, history, resumed_from = 0, [], None
    if resume is not None:
        training_state_restore(resume, model, optimizer, rng)
        step, history, resumed_from = resume["step"], resume["history"], resume["step"]

    def checkpoint() -> None:
        if config.checkpoint_path:
            save_checkpoint(
                config.checkpoint_path,
                {
                    **training_state(model, optimizer, rng),
                    "config": asdict(config),
                    "net_config": asdict(net_config),
                    "step": step,
                    "metrics": {},
                    "history": history,
                },
            )

    crop = min(data.features.shape[-1], seconds_to_frames(config.crop_seconds))
    batch = min(config.batch_size, len(tracks))
    warmup = max(1, config.steps // 20)
    started = time.monotonic()
    model.train()
    while step < config.steps:
        scale = (
            (step + 1) / warmup
            if step < warmup
            else 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, config.steps - warmup)))
        )
        for group in optimizer.param_groups:
            group["lr"] = config.lr * scale
        chosen = rng.choice(tracks, batch, replace=False)
        first, second = _views(data, chosen, crop, rng)
        z = model(torch.cat([_augment(first, config, rng), _augment(second, config, rng)]))
        loss = info_nce(z[:batch], z[batch:], config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % config.log_every == 0 or step == config.steps:
            record = {"step": step, "loss": loss.item(), "seconds": time.monotonic() - started}
            if resumed_from is not None:
                record["resumed_from"] = resumed_from
            history.append(record)
            if progress:
                progress(record)
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            checkpoint()
    checkpoint()
    model.eval()
    metrics = {"final_loss": history[-1]["loss"] if history else float("nan")}
    if resumed_from is not None:
        metrics["resumed_from"] = resumed_from
    return TrainResult(model=model, config=config, metrics=metrics, history=history, step=step)
