"""OddNet: a small log-mel embedding model whose distances should agree with people.

Pure torch, no Django. The model reads a log-mel spectrogram (B, n_mels, T) of any length
of at least about one second and returns an L2-normalised embedding (B, embed_dim):

    log-mel ─BN─┬─ conv blocks (frame level) ─┐
                └────────── mel bands ────────┴─ mean and std per ~1 s window
        ─ attentive statistics pooling over the windows ─ BN ─ linear ─ lift ─ L2

Why this shape: what people hear as the feel of a clip is mostly how its spectrum sits and
moves (level, brightness, spread), so the model keeps the normalised mel bands beside the
conv features and summarises windows by their mean *and* spread. Attentive statistics
pooling (as in ECAPA-TDNN) lets it weigh the windows that matter. All pooling is over
tensor axes, never a Python loop over time, so the model exports to ONNX with a dynamic
time axis.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn

from embeddings.extractors.mel_stats import HOP, LOG_FLOOR, N_FFT, N_MELS, SAMPLE_RATE

# The analysis settings are the mel-stats extractor's, so the model and the baseline see the
# same spectrogram: 16 kHz, 1024-sample (64 ms) frames, 320-sample (20 ms) hop, 64 mel bands.
MAX_PARAM_BYTES = 1_000_000  # bytes of float32 weights the design allows


@dataclass
class OddNetConfig:
    n_mels: int = N_MELS  # input mel bands
    sample_rate: int = SAMPLE_RATE  # Hz
    hop: int = HOP  # samples between log-mel frames
    window_frames: int = 50  # frames per window (50 frames × 20 ms = 1 s)
    # Sizes were tuned on simulated votes (bench/oddnet_vs_melstats.py): with ~1000 votes on
    # 15 training tracks, wider convs (32, 64, 96 channels) and a 64-d output generalised
    # worse to unseen tracks; a low-dimensional output acts as a strong regulariser.
    channels: int = 16  # conv channels at frame level
    kernel: int = 3  # frames per conv kernel
    blocks: int = 1  # residual conv blocks at frame level
    attention_dim: int = 64  # hidden size of the attention over windows
    embed_dim: int = 16  # output size, including the constant lift coordinate
    dropout: float = 0.1  # on the pooled statistics


class ConvBlock(nn.Module):
    """Residual conv over time: conv, BN, GELU, conv, BN, plus the input."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 1)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.bn1(self.conv1(x)))
        return F.gelu(x + self.bn2(self.conv2(h)))


def window_stats(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, C, T) -> (B, 2C, ceil(T / frames)): mean and std of non-overlapping windows.
    The last, partial window is averaged over the frames it has."""
    # Zero-pad to whole windows and count the real frames, rather than avg_pool1d's
    # ceil_mode: ONNX runtimes disagree on the divisor of a window that hangs past the end
    # (tract and rten divided by the kernel size), and a clip of whole seconds always ends
    # with a one-frame window. Two passes, not E[x²] - E[x]²: on digital silence that
    # difference is rounding noise, which made PyTorch and onnxruntime differ by ~1e-4.
    b, c, t = x.shape
    pad = (-t) % frames
    real = F.pad(torch.ones_like(x[:1, :1]), (0, pad)).reshape(1, 1, -1, frames)
    windows = F.pad(x, (0, pad)).reshape(b, c, -1, frames)
    count = real.sum(dim=3)
    mean = windows.sum(dim=3) / count
    deviation = (windows - mean[..., None]) * real
    std = torch.sqrt(torch.clamp((deviation * deviation).sum(dim=3) / count, min=1e-6))
    return torch.cat([mean, std], dim=1)


class AttentiveStatsPool(nn.Module):
    """Attention-weighted mean and std over the time axis: (B, C, W) -> (B, 2C)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(channels, hidden, 1), nn.Tanh(), nn.Conv1d(hidden, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.attention(x), dim=2)
        mean = torch.sum(w * x, dim=2)
        std = torch.sqrt(torch.clamp(torch.sum(w * x * x, dim=2) - mean * mean, min=1e-6))
        return torch.cat([mean, std], dim=1)


class OddNet(nn.Module):
    """Log-mel (B, n_mels, T) -> L2-normalised embedding (B, embed_dim)."""

    def __init__(self, config: OddNetConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or OddNetConfig()
        # Running statistics standardise each band, as the crowd's mel-stats taste does.
        self.input_norm = nn.BatchNorm1d(c.n_mels)
        self.stem = nn.Conv1d(c.n_mels, c.channels, c.kernel, padding=c.kernel // 2)
        self.stem_bn = nn.BatchNorm1d(c.channels)
        self.blocks = nn.ModuleList(ConvBlock(c.channels, c.kernel) for _ in range(c.blocks))
        window_channels = 2 * (c.channels + c.n_mels)  # mean and std of conv and mel bands
        self.pool = AttentiveStatsPool(window_channels, c.attention_dim)
        self.pool_bn = nn.BatchNorm1d(2 * window_channels)
        self.dropout = nn.Dropout(c.dropout)
        # One output coordinate is a constant (see forward), so the head makes embed_dim - 1.
        self.head = nn.Linear(2 * window_channels, c.embed_dim - 1)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        c = self.config
        x = self.input_norm(logmel)
        h = F.gelu(self.stem_bn(self.stem(x)))
        for block in self.blocks:
            h = block(h)
        windows = window_stats(torch.cat([h, x], dim=1), c.window_frames)
        pooled = self.pool(windows)
        z = self.head(self.dropout(self.pool_bn(pooled)))
        # Lift onto the sphere beside a constant coordinate instead of normalising z itself:
        # plain normalisation throws away |z| and bends distances, while the lift keeps them
        # nearly Euclidean for small z, so weight decay on the head acts as a margin and the
        # cosine geometry still follows the (Euclidean) taste. Measured: a linear map of
        # mel-stats trained with plain normalisation agreed ~0.55, with the lift ~0.75.
        return F.normalize(torch.cat([z, torch.ones_like(z[:, :1])], dim=1), dim=1)


def param_bytes(model: nn.Module) -> int:
    """Bytes the model's parameters take as float32."""
    return 4 * sum(p.numel() for p in model.parameters())


# torchaudio's Spectrogram defaults (periodic Hann window, centred frames, reflect padding)
# and MelScale's filterbank (HTK mel scale, no normalisation), as the mel-stats extractor uses.
_WINDOW = torch.hann_window(N_FFT)
MEL_FILTERBANK = torchaudio.transforms.MelScale(
    n_mels=N_MELS, sample_rate=SAMPLE_RATE, f_min=0.0, f_max=SAMPLE_RATE / 2, n_stft=N_FFT // 2 + 1
).fb  # (N_FFT // 2 + 1, N_MELS)
CHUNK_FRAMES = 500  # log-mel frames per STFT call (10 s)


def log_mel(wave16k: torch.Tensor) -> torch.Tensor:
    """Natural-log mel power spectrogram (n_mels, T) or (B, n_mels, T) of mono 16 kHz audio
    (N,) or (B, N): the mel-stats extractor's spectrogram, batched and in torch."""
    wave = wave16k.float()
    frames = 1 + wave.shape[-1] // HOP
    # Centre the frames once, then transform ten seconds at a time: on a whole song the
    # spectra of one call outgrow the cache, and the log-mel took up to twice as long. The
    # frames are those of one torch.stft(center=True) call.
    padded = F.pad(wave.reshape(-1, wave.shape[-1]), (N_FFT // 2, N_FFT // 2), mode="reflect")
    window, bank = _WINDOW.to(wave.device), MEL_FILTERBANK.to(wave.device)
    parts = []
    for start in range(0, frames, CHUNK_FRAMES):
        stop = min(frames, start + CHUNK_FRAMES)
        segment = padded[:, start * HOP : (stop - 1) * HOP + N_FFT]
        spec = torch.stft(segment, N_FFT, HOP, window=window, center=False, return_complex=True)
        # re² + im², not torchaudio's abs().pow(2), which takes a square root first (slower;
        # the same log-mel within 1e-6).
        power = (spec.real.square() + spec.imag.square()).transpose(1, 2)
        parts.append(torch.matmul(power, bank))
    mel = torch.cat(parts, dim=1).transpose(1, 2)
    return torch.log(torch.clamp(mel, min=LOG_FLOOR)).reshape(*wave.shape[:-1], -1, frames)


@torch.no_grad()
def embed(model: OddNet, logmels: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """Embeddings (N, embed_dim) of log-mels (n_mels, T_i) of any lengths, in eval mode.
    Clips of equal length are batched together."""
    was_training = model.training
    model.eval()
    out = np.zeros((len(logmels), model.config.embed_dim), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, m in enumerate(logmels):
        by_length.setdefault(m.shape[-1], []).append(i)
    for idx in by_length.values():
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            x = torch.from_numpy(np.stack([logmels[i] for i in part]).astype(np.float32))
            out[part] = model(x).numpy()
    model.train(was_training)
    return out


def seconds_to_frames(seconds: float, sample_rate: int = SAMPLE_RATE, hop: int = HOP) -> int:
    """Log-mel frames covering `seconds` of audio."""
    return math.ceil(seconds * sample_rate / hop)
