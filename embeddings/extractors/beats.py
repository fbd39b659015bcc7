"""BEATs (Chen et al. 2022, "Audio Pre-Training with Acoustic Tokenizers"), loading official files.

A fresh implementation of the microsoft/unilm `beats/` model whose parameter names match the
official checkpoints (BEATs_iter3_AS2M.pt, BEATs_iter3_plus_AS2M.pt, ...): a `torch.save`d
dict with `cfg` (the BEATsConfig fields) and `model` (the state dict). Pure torch + numpy.

Pipeline: 16 kHz mono × 2**15 → Kaldi fbank (128 bins, 25 ms / 10 ms) → normalised with the
AudioSet statistics → 16×16 patches (time-major: each 160 ms step gives 128/16 = 8 tokens) →
layer norm → projection to the encoder width → a post-norm (deep norm) transformer with a
convolutional positional embedding and a gated relative position bias shared by all layers.

Design note on padding. The reference maps a sample padding mask onto fbank frames and then
onto patch tokens by cutting it into equal chunks (`_fold_mask`). That is kept in
`Beats.extract_features` so it matches the reference, but it can leave a partly padded 160 ms
step unmasked. `Beats.encode` and `snippet_vectors` instead mask every token whose patch
touches a padded frame, so a clip batched with longer ones gives the same vector as alone.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from torch import Tensor, nn

NAME = "beats"
VERSION = 1
DIM = 768  # encoder width of the official iter3 / iter3+ checkpoints
SAMPLE_RATE = 16_000  # Hz
WAVE_SCALE = 2**15  # the fbank statistics were measured on int16-scaled samples
N_MELS = 128  # mel bins of the fbank
FRAME_LENGTH_MS = 25.0  # ms
FRAME_SHIFT_MS = 10.0  # ms
FRAME_LENGTH = 400  # samples (25 ms at 16 kHz)
FRAME_SHIFT = 160  # samples (10 ms at 16 kHz)
FBANK_MEAN = 15.41663  # natural-log mel energy, AudioSet mean used by the reference
FBANK_STD = 6.55582  # the reference divides by twice this
GATE_PROJECTIONS = 8  # grep_linear outputs: two gates, each a sum of four projections
UNAVAILABLE_UNSET = "no checkpoint configured (set ODDBALL_BEATS_CHECKPOINT)"


class BeatsUnavailable(RuntimeError):
    """BEATs cannot be used; the message says why (no file, not a checkpoint, wrong weights)."""


@dataclass(frozen=True)
class BeatsConfig:
    """The reference's BEATsConfig fields; defaults as there, except the usual patch size 16."""

    input_patch_size: int = 16  # fbank frames and bins per patch (both axes)
    embed_dim: int = 512  # patch embedding width
    conv_bias: bool = False  # bias in the patch embedding conv
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"  # relu | gelu | gelu_accurate | tanh | linear
    layer_wise_gradient_decay_ratio: float = 1.0  # gradient scale per layer when fine-tuning
    layer_norm_first: bool = False  # pre-norm layers (else post-norm)
    deep_norm: bool = False  # post-norm with the residual scaled by (2 * layers) ** 0.25
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0  # probability of skipping a layer while training
    dropout_input: float = 0.0
    conv_pos: int = 128  # tokens spanned by the convolutional positional embedding
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320  # relative position buckets, half per direction
    max_distance: int = 1280  # tokens; farther offsets share the last bucket
    gru_rel_pos: bool = False  # gate the relative position bias by the query
    finetuned_model: bool = False  # has the AudioSet `predictor` head
    predictor_dropout: float = 0.1
    predictor_class: int = 527  # AudioSet classes

    @classmethod
    def from_dict(cls, cfg: Mapping[str, object]) -> BeatsConfig:
        """Build from a checkpoint's `cfg` dict, ignoring keys this model does not use."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})


def _activation(name: str) -> Callable[[Tensor], Tensor]:
    if name == "gelu":
        return lambda x: F.gelu(x.float()).type_as(x)
    if name == "gelu_accurate":
        return lambda x: F.gelu(x, approximate="tanh")
    if name in ("relu", "tanh"):
        return getattr(torch, name)
    if name == "linear":
        return lambda x: x
    raise ValueError(f"activation_fn {name!r} is not supported")


def _relative_buckets(length: int, num_buckets: int, max_distance: int) -> Tensor:
    """(length, length) bucket of each key offset from each query (T5-style, bidirectional)."""
    offset = torch.arange(length)[None, :] - torch.arange(length)[:, None]  # key - query
    half = num_buckets // 2  # one half for keys after the query, one for keys before
    exact = half // 2  # offsets below this get a bucket each; beyond, buckets grow log-spaced
    distance = offset.abs()
    log_ratio = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return (offset > 0).long() * half + torch.where(distance < exact, distance, far)


class _WeightNormConv1d(nn.Module):
    """Grouped "same" conv whose weight is direction `weight_v` times magnitude `weight_g`.

    The checkpoints were saved with torch's legacy `weight_norm(dim=2)`: one magnitude per
    kernel tap, the norm taken over output and input channels.
    """

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        kernel = self.weight_v.shape[-1]
        norm = self.weight_v.square().sum(dim=(0, 1), keepdim=True).sqrt()  # 3x faster than .norm
        weight = self.weight_v * (self.weight_g / norm)
        y = F.conv1d(x, weight, self.bias, padding=kernel // 2, groups=self.groups)
        # An even kernel with padding k/2 yields one step too many; drop it from the end.
        return y[..., :-1] if kernel % 2 == 0 else y


class _SelfAttention(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim, heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, cfg.attention_dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        if cfg.relative_position_embedding:
            self.relative_attention_bias = nn.Embedding(cfg.num_buckets, heads)
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(dim // heads, GATE_PROJECTIONS)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, position_bias: Tensor | None, key_mask: Tensor | None) -> Tensor:
        """x (B, T, C); position_bias (H, T, T); key_mask (B, 1, 1, T) with -inf at padding."""
        b, t, c = x.shape
        q, k, v = (
            proj(x).view(b, t, self.heads, -1).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        bias = key_mask
        if position_bias is not None:
            rel = position_bias.unsqueeze(0)
            if self.gru_rel_pos:
                # The gate reads the unscaled query: per head and query, a factor in (1, 1+a).
                gates = torch.sigmoid(self.grep_linear(q).view(b, self.heads, t, 2, 4).sum(-1))
                gate_a, gate_b = gates.chunk(2, dim=-1)
                rel = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * rel
            bias = rel if bias is None else rel + bias
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, c))


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.self_attn = _SelfAttention(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = _activation(cfg.activation_fn)
        self.pre_norm = cfg.layer_norm_first
        self.alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0
        self.drop = nn.Dropout(cfg.dropout)
        self.drop_activation = nn.Dropout(cfg.activation_dropout)

    def _ffn(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop_activation(self.activation(self.fc1(x)))))

    def forward(self, x: Tensor, position_bias: Tensor | None, key_mask: Tensor | None) -> Tensor:
        if self.pre_norm:
            x = x + self.drop(self.self_attn(self.self_attn_layer_norm(x), position_bias, key_mask))
            return x + self._ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(
            x * self.alpha + self.drop(self.self_attn(x, position_bias, key_mask))
        )
        return self.final_layer_norm(x * self.alpha + self._ffn(x))


class _Encoder(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.cfg = cfg
        # nn.Sequential so the conv's weights are named pos_conv.0.* as in the checkpoints.
        self.pos_conv = nn.Sequential(
            _WeightNormConv1d(dim, cfg.conv_pos, cfg.conv_pos_groups), nn.GELU()
        )
        self.layers = nn.ModuleList(_EncoderLayer(cfg) for _ in range(cfg.encoder_layers))
        if cfg.relative_position_embedding:
            # One table for all layers, as in the reference; every layer still lists it, so
            # the state dict has a copy per layer, like the official files.
            table = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = table
        self.layer_norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """x (B, T, C) tokens, padding_mask (B, T) True at padding → (B, T, C)."""
        cfg = self.cfg
        key_mask = None
        if padding_mask is not None:
            # Zero padding so the positional conv sees it as the conv's own zero padding.
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
            key_mask = torch.zeros(padding_mask.shape, dtype=x.dtype, device=x.device)
            key_mask = key_mask.masked_fill(padding_mask, float("-inf"))[:, None, None, :]
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not cfg.layer_norm_first:
            x = self.layer_norm(x)
        x = self.drop(x)
        position_bias = None
        if cfg.relative_position_embedding:
            buckets = _relative_buckets(x.shape[1], cfg.num_buckets, cfg.max_distance)
            table = self.layers[0].self_attn.relative_attention_bias
            # Contiguous: every layer multiplies it by its gate, 4x faster than on the view.
            position_bias = table(buckets.to(x.device)).permute(2, 0, 1).contiguous()  # (H, T, T)
        ratio = cfg.layer_wise_gradient_decay_ratio
        for layer in self.layers:
            if self.training:
                if ratio != 1.0:  # forward unchanged, gradient scaled by `ratio`
                    x = x * ratio + x.detach() * (1.0 - ratio)
                if torch.rand(()) < cfg.encoder_layerdrop:
                    continue
            x = layer(x, position_bias, key_mask)
        return self.layer_norm(x) if cfg.layer_norm_first else x


def _fold_mask(mask: Tensor, length: int) -> Tensor:
    """The reference's map of a padding mask onto `length` positions: cut it into `length`
    equal chunks (the remainder dropped); a position is padding when its whole chunk is."""
    extra = mask.shape[1] % length
    if extra:
        mask = mask[:, :-extra]
    return mask.reshape(mask.shape[0], length, -1).all(-1)


class Beats(nn.Module):
    """The BEATs model; parameter names follow the official checkpoints."""

    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        size = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(
            1, cfg.embed_dim, kernel_size=size, stride=size, bias=cfg.conv_bias
        )
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        if cfg.embed_dim != cfg.encoder_embed_dim:
            self.post_extract_proj = nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
        else:
            self.post_extract_proj = None
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = _Encoder(cfg)
        if cfg.finetuned_model:
            self.predictor_dropout = nn.Dropout(cfg.predictor_dropout)
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)
        else:
            self.predictor = None
        self.reset_parameters()

    @property
    def dim(self) -> int:
        return self.cfg.encoder_embed_dim

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Random weights of sensible scale (BERT-style); a checkpoint replaces them."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, 0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
        conv = self.encoder.pos_conv[0]
        fan = self.cfg.conv_pos * self.cfg.encoder_embed_dim
        conv.weight_v.normal_(0.0, math.sqrt(4.0 / fan))
        conv.weight_g.copy_(conv.weight_v.square().sum(dim=(0, 1), keepdim=True).sqrt())
        conv.bias.zero_()

    def _tokens(self, features: Tensor) -> Tensor:
        """Normalised fbank (B, T, bins) → patch tokens (B, T/16 · bins/16, embed_dim)."""
        x = self.patch_embedding(features.unsqueeze(1))  # (B, D, steps, bins/16)
        return self.layer_norm(x.flatten(2).transpose(1, 2))  # time-major token order

    def _encode_tokens(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(self.dropout_input(x), padding_mask=mask)

    def extract_features(
        self, waves: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Last-layer tokens (B, P, D) of waves (B, N) and their padding mask, as the reference.

        `padding_mask` (B, N) is True at padded samples; it reaches the tokens by the
        reference's equal-chunk mapping (see the module note). Use `encode` for exact masks.
        """
        features, _ = fbank(waves)
        if padding_mask is not None:
            padding_mask = _fold_mask(padding_mask, features.shape[1])
        x = self._tokens(features)
        if padding_mask is not None:
            padding_mask = _fold_mask(padding_mask, x.shape[1])
        return self._encode_tokens(x, padding_mask), padding_mask

    def encode(self, features: Tensor, frame_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Last-layer tokens (B, P, D) of normalised fbank (B, T, bins) and an exact mask (B, P).

        A token is padding when any fbank frame of its patch is (`frame_mask` True).
        """
        x = self._tokens(features)
        size = self.cfg.input_patch_size
        steps, per_step = features.shape[1] // size, features.shape[2] // size
        if frame_mask is None:
            mask = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        else:
            step_mask = frame_mask[:, : steps * size].reshape(-1, steps, size).any(-1)
            mask = step_mask.repeat_interleave(per_step, dim=1)
        return self._encode_tokens(x, mask if mask.any() else None), mask

    def predict(self, waves: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """AudioSet class probabilities (B, predictor_class) of a fine-tuned checkpoint."""
        if self.predictor is None:
            raise BeatsUnavailable("this checkpoint has no AudioSet head (finetuned_model)")
        x, mask = self.extract_features(waves, padding_mask)
        logits = self.predictor(self.predictor_dropout(x))
        if mask is not None and mask.any():
            logits = logits.masked_fill(mask.unsqueeze(-1), 0.0).sum(1)
            logits = logits / (~mask).sum(1, keepdim=True)
        else:
            logits = logits.mean(1)
        return torch.sigmoid(logits)


def frame_count(samples: int) -> int:
    """Number of fbank frames (10 ms apart, 25 ms long) Kaldi makes from `samples` samples."""
    return 0 if samples < FRAME_LENGTH else 1 + (samples - FRAME_LENGTH) // FRAME_SHIFT


def fbank(waves: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Normalised Kaldi fbank (B, T, 128) of 16 kHz waves (B, N) in [-1, 1], as the reference.

    Returns the features and a frame padding mask (B, T): True where a frame reaches past the
    clip's length (`lengths` (B,) in samples; None means every clip fills N).
    """
    rows = [
        kaldi.fbank(
            wave.unsqueeze(0) * WAVE_SCALE,
            num_mel_bins=N_MELS,
            sample_frequency=SAMPLE_RATE,
            frame_length=FRAME_LENGTH_MS,
            frame_shift=FRAME_SHIFT_MS,
        )
        for wave in waves
    ]
    features = (torch.stack(rows) - FBANK_MEAN) / (2 * FBANK_STD)
    frames = torch.arange(features.shape[1], device=features.device)
    if lengths is None:
        return features, torch.zeros(features.shape[:2], dtype=torch.bool)
    valid = torch.tensor([frame_count(int(n)) for n in lengths], device=features.device)
    return features, frames[None, :] >= valid[:, None]


@torch.no_grad()
def snippet_vectors(model: Beats, waves: list[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """The mean last-layer token (N, D) float32 of each 16 kHz mono clip, padding excluded.

    Clips are batched by length; each vector is the same as for the clip alone.
    """
    size = model.cfg.input_patch_size
    shortest = FRAME_LENGTH + (size - 1) * FRAME_SHIFT  # samples for one patch of frames
    for i, wave in enumerate(waves):
        if np.ndim(wave) != 1 or len(wave) < shortest:
            raise ValueError(
                f"clip {i}: need mono audio of at least {shortest} samples "
                f"({shortest / SAMPLE_RATE:.3f} s), got shape {np.shape(wave)}"
            )
    out = np.zeros((len(waves), model.dim), np.float32)
    order = sorted(range(len(waves)), key=lambda i: -len(waves[i]))  # similar lengths together
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        lengths = torch.tensor([len(waves[i]) for i in chosen])
        batch = torch.zeros(len(chosen), int(lengths.max()))
        for row, i in enumerate(chosen):
            batch[row, : len(waves[i])] = torch.from_numpy(np.asarray(waves[i], np.float32))
        features, frame_mask = fbank(batch, lengths)
        x, mask = model.encode(features.to(device), frame_mask.to(device))
        keep = (~mask).unsqueeze(-1).to(x.dtype)
        means = (x * keep).sum(1) / keep.sum(1)
        out[chosen] = means.cpu().numpy()
    return out


def _read(path: Path) -> tuple[BeatsConfig, dict[str, Tensor]]:
    """The config and state dict of a checkpoint file; BeatsUnavailable with the reason."""
    if not path.is_file():
        raise BeatsUnavailable(f"file not found: {path}")
    try:
        # mmap: reading only what is used keeps availability() cheap and loading lean.
        ckpt = torch.load(
            path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)
        )
    except Exception as e:  # torch.load raises many types (pickle, zip, EOF, runtime)
        raise BeatsUnavailable(f"not a BEATs checkpoint: {path} (unreadable: {e})") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("cfg"), dict):
        raise BeatsUnavailable(f"not a BEATs checkpoint: {path} (no 'cfg' dict)")
    if not isinstance(ckpt.get("model"), dict):
        raise BeatsUnavailable(f"not a BEATs checkpoint: {path} (no 'model' state dict)")
    try:
        cfg = BeatsConfig.from_dict(ckpt["cfg"])
    except TypeError as e:
        raise BeatsUnavailable(f"not a BEATs checkpoint: {path} (bad cfg: {e})") from e
    state = ckpt["model"]
    if "predictor.weight" in state and not cfg.finetuned_model:
        # A head in the weights wins over the flag, so fine-tuned files always load it.
        classes = int(state["predictor.weight"].shape[0])
        cfg = replace(cfg, finetuned_model=True, predictor_class=classes)
    return cfg, state


def _check_keys(path: Path, model: Beats, state: Mapping[str, Tensor]) -> None:
    expected = model.state_dict()
    shared = "self_attn.relative_attention_bias.weight"
    missing = [
        k
        for k in expected
        if k not in state and not (k.endswith(shared) and f"encoder.layers.0.{shared}" in state)
    ]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = (
        ("missing weights", missing),
        ("unexpected weights", unexpected),
        ("weights of the wrong shape", wrong),
    )
    for label, keys in problems:
        if keys:
            raise BeatsUnavailable(
                f"not a BEATs checkpoint: {path} ({len(keys)} {label}, e.g. {keys[0]})"
            )


def load_checkpoint(path: Path | str, device: str = "cpu") -> Beats:
    """The BEATs model of an official checkpoint file, in eval mode; BeatsUnavailable if not."""
    path = Path(path)
    cfg, state = _read(path)
    try:
        model = Beats(cfg)
    except (ValueError, TypeError) as e:
        raise BeatsUnavailable(f"not a BEATs checkpoint: {path} (bad cfg: {e})") from e
    _check_keys(path, model, state)
    model.load_state_dict(state, strict=False)  # strictness checked above, shared table aside
    return model.to(device).eval()


def availability(path: str | None) -> tuple[bool, str]:
    """Whether a BEATs checkpoint is usable at `path`, and why not ("ok" when it is)."""
    if not path:
        return False, UNAVAILABLE_UNSET
    try:
        cfg, state = _read(Path(path))
        with torch.device("meta"):  # the names and shapes of the weights, without memory
            model = Beats(cfg)
        _check_keys(Path(path), model, state)
    except BeatsUnavailable as e:
        return False, str(e)
    except (ValueError, TypeError) as e:
        return False, f"not a BEATs checkpoint: {path} (bad cfg: {e})"
    return True, "ok"
