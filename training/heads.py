"""A small projection head trained on human triplets over frozen vectors (BEATs means).

Pure torch and numpy, no Django. The head standardises its input with statistics fixed at
training time, maps it linearly to `embed_dim - 1` values and lifts the result onto the
sphere beside a constant coordinate, as OddNet does (see training/nets.py for why).
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.train import TORCH_THREADS, batch_rows, triplet_loss


@dataclass
class HeadConfig:
    in_dim: int = 768  # BEATs encoder width
    embed_dim: int = 16  # output size, including the lift coordinate
    steps: int = 400
    batch_size: int = 64  # triplets per step
    lr: float = 1e-2
    weight_decay: float = 1e-1
    margin: float = 0.05  # triplet margin on cosine distance
    seed: int = 0


class ProjectionHead(nn.Module):
    """(B, in_dim) frozen vectors -> (B, embed_dim) L2-normalised embeddings."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(config.in_dim))
        self.register_buffer("std", torch.ones(config.in_dim))
        self.linear = nn.Linear(config.in_dim, config.embed_dim - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear((x - self.mean) / self.std)
        return F.normalize(torch.cat([z, torch.ones_like(z[:, :1])], dim=1), dim=1)


def train_head(
    config: HeadConfig, vectors: np.ndarray, triplets: np.ndarray, weights: np.ndarray
) -> tuple[ProjectionHead, dict]:
    """Fit a head with the triplet margin loss, drawing triplets in proportion to `weights`
    as oddnet does; `triplets` (N, 3) index `vectors` as anchor, positive, negative. Returns
    the head (eval mode) and its metrics."""
    torch.set_num_threads(TORCH_THREADS)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    head = ProjectionHead(config)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp(min=1e-6))
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
    if not len(cumulative) or cumulative[-1] <= 0:
        raise ValueError("every training triplet weighs 0: nothing to learn from")
    loss = torch.tensor(float("nan"))
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * 0.5 * (1 + np.cos(np.pi * step / config.steps))
        rows = batch_rows(cumulative, rng, config.batch_size)
        z = head(x[torch.as_tensor(triplets[rows].reshape(-1))]).reshape(len(rows), 3, -1)
        loss = triplet_loss(z, config.margin)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    head.eval()
    return head, {"final_loss": float(loss.item()), "steps": config.steps, **asdict(config)}


@torch.no_grad()
def head_embed(head: ProjectionHead, vectors: np.ndarray) -> np.ndarray:
    return head(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))).numpy()
