"""Export OddNet for players outside Python: ONNX, safetensors and a JSON front-end spec.

Pure torch and numpy, no Django. One model version becomes three files (`export_all`):

    <stem>.onnx          log-mel (batch, n_mels, frames) -> embedding (batch, embed_dim)
    <stem>.safetensors   the float32 weights, for burn or candle, with string metadata
    <stem>.json          `frontend_spec`: everything needed to turn audio into that log-mel
                         and to rebuild the network, plus the caller's metadata

and, where the runtime has the ONNX STFT operator (onnxruntime does), `<stem>-waveform.onnx`
takes 16 kHz mono samples instead, so a player needs no DSP code of its own. `export_head`
writes the same three files for a projection head over BEATs vectors, `export_transition`
two ONNX graphs (ending -> predicted next, opening -> embedding) for the transition model.

Every ONNX graph comes from the TorchScript exporter (`dynamo=False`), which keeps the batch
and time axes dynamic as declared (the dynamo exporter fixes them to the example).
"""

import copy
import hashlib
import json
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from embeddings.extractors.mel_stats import HOP, LOG_FLOOR, N_FFT
from training.heads import ProjectionHead
from training.nets import MEL_FILTERBANK, N_MELS, SAMPLE_RATE, OddNet, OddNetConfig, log_mel
from training.transition_net import TransitionNet

SPEC_VERSION = 1  # bump when the meaning of a field in frontend_spec changes
ONNX_OPSET = 17  # the first opset with STFT
INPUT_NAME = "logmel"  # (batch, n_mels, frames) float32
WAVE_INPUT_NAME = "wave16k"  # (batch, samples) float32, mono at 16 kHz
VECTOR_INPUT_NAME = "vector"  # (batch, in_dim) float32, a projection head's input
ENDING_INPUT_NAME = "ending"  # (batch, windows, in_dim) float32, frames before a seam
OPENING_INPUT_NAME = "opening"  # (batch, windows, in_dim) float32, frames after a seam
OUTPUT_NAME = "embedding"  # (batch, embed_dim) float32, unit length
CHECK_TOLERANCE = 1e-4  # max |onnx - torch| export_all accepts on its own check
EXAMPLE_FRAMES = 301  # 6 s; any length traces the same graph


@contextmanager
def _quiet_export() -> Iterator[None]:
    # The TorchScript exporter and real-valued stft are deprecated, not broken: the tests
    # check every graph against PyTorch, which is what would catch their removal.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message=".*return_complex=False")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        # The LSTM's initial state is zeros shaped from the input's batch, and its shape
        # checks are constants of the trace; the transition export checks batches of 1, 2
        # and 3 and several lengths against PyTorch.
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size")
        warnings.filterwarnings("ignore", message="Converting a tensor to a Python boolean")
        yield


def _frozen(model: nn.Module) -> nn.Module:
    """A CPU copy in eval mode, so exporting never changes the caller's model."""
    return copy.deepcopy(model).cpu().eval()


def _onnx_write(
    net: nn.Module, example: torch.Tensor, path: Path, input_name: str, axes: dict
) -> Path:
    """Export with the TorchScript exporter (dynamo=False: the dynamo one fixes the time axis)."""
    with _quiet_export(), torch.no_grad():
        torch.onnx.export(
            net,
            (example,),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[input_name],
            output_names=[OUTPUT_NAME],
            dynamic_axes={input_name: axes, OUTPUT_NAME: {0: "batch"}},
        )
    return path


def export_onnx(model: OddNet, path: Path | str) -> Path:
    """Write `model` as ONNX: `logmel` (batch, n_mels, frames) -> `embedding` (batch, dim),
    with dynamic batch and frames axes. Returns the path."""
    net = _frozen(model)
    example = torch.randn(1, net.config.n_mels, EXAMPLE_FRAMES)
    return _onnx_write(net, example, Path(path), INPUT_NAME, {0: "batch", 2: "frames"})


class _WaveformOddNet(nn.Module):
    """16 kHz mono samples -> embedding, with the front end spelled in ONNX-exportable ops.

    Export only: the STFT is the real-valued form that maps onto ONNX's STFT operator (the
    complex one does not export); `nets.log_mel` stays the reference it must match."""

    def __init__(self, model: OddNet) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.register_buffer("mel_fb", MEL_FILTERBANK.clone())

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        padded = F.pad(wave[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")[:, 0]
        spec = torch.stft(
            padded, N_FFT, HOP, window=self.window, center=False, return_complex=False
        )  # (batch, bins, frames, 2): real and imaginary parts
        power = spec.pow(2).sum(dim=-1).transpose(1, 2)
        mel = torch.matmul(power, self.mel_fb).transpose(1, 2)
        return self.model(torch.log(torch.clamp(mel, min=LOG_FLOOR)))


def export_onnx_waveform(model: OddNet, path: Path | str) -> Path:
    """Write the whole pipeline as ONNX: `wave16k` (batch, samples) of mono 16 kHz float32
    audio (more than N_FFT // 2 samples) -> `embedding` (batch, dim). Needs a runtime with
    the opset-17 STFT operator (onnxruntime has it). Returns the path."""
    net = _WaveformOddNet(_frozen(model)).eval()
    example = torch.randn(1, EXAMPLE_FRAMES * HOP) * 0.1
    return _onnx_write(net, example, Path(path), WAVE_INPUT_NAME, {0: "batch", 1: "samples"})


def onnx_check(
    path: Path | str, model: nn.Module, inputs: np.ndarray | Sequence[np.ndarray]
) -> float:
    """Max |onnxruntime - PyTorch| over `inputs`, on the CPU provider.

    `inputs` is one batch or a list of batches (or of single clips, any lengths), in what
    the file takes: log-mels (n_mels, frames) for `export_onnx`, 16 kHz samples for
    `export_onnx_waveform`, whose reference is then `model(nets.log_mel(wave))`, vectors
    (batch, in_dim) for `export_head`."""
    import onnxruntime  # on use: the Django processes that import this module rarely check

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    net = _frozen(model)
    batches = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    worst = 0.0
    for batch in batches:
        x = np.asarray(batch, dtype=np.float32)
        x = x[None] if x.ndim == (2 if name == INPUT_NAME else 1) else x
        with torch.no_grad():
            t = torch.from_numpy(x)
            expected = net(log_mel(t) if name == WAVE_INPUT_NAME else t).numpy()
        got = session.run([OUTPUT_NAME], {name: x})[0]
        worst = max(worst, float(np.max(np.abs(got - expected))))
    return worst


def state_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as contiguous float32 CPU tensors, BatchNorm running statistics
    included, without the `num_batches_tracked` counters (inference never reads them)."""
    return {
        k: v.detach().cpu().float().contiguous()
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def export_safetensors(
    model: OddNet | ProjectionHead | TransitionNet,
    path: Path | str,
    metadata: dict[str, Any],
    config_key: str = "net_config",
) -> Path:
    """Write the weights with `metadata` as strings (non-strings JSON-encoded); the model's
    config is added under `config_key`. Returns the path."""
    path = Path(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta[config_key] = json.dumps(asdict(model.config))
    save_file(state_tensors(model), str(path), metadata=meta)
    return path


def load_safetensors(path: Path | str) -> tuple[OddNet, dict[str, str]]:
    """An OddNet in eval mode from `export_safetensors`' file, and the file's metadata."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    model = OddNet(OddNetConfig(**json.loads(meta["net_config"])))
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ValueError(f"not an OddNet file: missing {missing}, unexpected {unexpected}")
    return model.eval(), meta


def _sparse_filterbank() -> list[dict[str, Any]]:
    """Each mel band's first non-zero FFT bin and its run of weights (float32 values)."""
    bands = []
    for column in MEL_FILTERBANK.T.numpy():
        nonzero = np.flatnonzero(column)
        start, stop = int(nonzero[0]), int(nonzero[-1]) + 1
        bands.append({"start_bin": start, "weights": [float(w) for w in column[start:stop]]})
    return bands


def _output_spec(embed_dim: int) -> dict[str, str]:
    return {
        "name": OUTPUT_NAME,
        "shape": f"(batch, {embed_dim})",
        "norm": "L2-normalised",
        "compare": "cosine similarity (the dot product); distance = 1 - cosine",
    }


def frontend_spec(config: OddNetConfig) -> dict[str, Any]:
    """A JSON-able description of audio -> log-mel -> embedding, exact enough for another
    implementation (burn, candle, tract, ort) to reproduce the embedding."""
    front_end = (N_FFT // 2 + 1, config.n_mels, config.hop, config.sample_rate)
    if front_end != (*MEL_FILTERBANK.shape, HOP, SAMPLE_RATE):
        raise ValueError(f"nets.log_mel is fixed at {N_MELS} bands, {HOP} hop, {SAMPLE_RATE} Hz")
    net = OddNet(config)
    rate, bins = config.sample_rate, N_FFT // 2 + 1
    return {
        "spec_version": SPEC_VERSION,
        "model": "oddnet",
        "input": {
            "channels": "mono: the mean of all channels, sample by sample",
            "sample_rate_hz": rate,
            "samples": "float32, full scale ±1",
            "resampling": (
                "band-limited windowed-sinc, as torchaudio.functional.resample(orig, 16000) "
                "with its defaults: sinc_interp_hann, lowpass_filter_width 6, rolloff 0.99; "
                "the reference downmixes first, then resamples"
            ),
            "min_samples": N_FFT // 2 + 1,
        },
        "stft": {
            "n_fft": N_FFT,
            "win_length": N_FFT,
            "hop_length": config.hop,
            "window": f"periodic Hann: w[n] = 0.5 - 0.5 cos(2 pi n / {N_FFT}), n = 0..{N_FFT - 1}",
            "center": True,
            "padding": (
                f"reflect {N_FFT // 2} samples at each end, edge sample not repeated "
                "(numpy.pad mode='reflect'); frame t is padded[t*hop : t*hop + n_fft]"
            ),
            "onesided_bins": bins,
            "normalized": False,
            "power": "2: |X[k]|^2 = re^2 + im^2 of the unnormalised DFT of the windowed frame",
            "frames": "1 + floor(samples / hop_length)",
        },
        "mel": {
            "n_mels": config.n_mels,
            "f_min_hz": 0.0,
            "f_max_hz": rate / 2,
            "scale": "htk: mel(f) = 2595 log10(1 + f / 700), f(mel) = 700 (10^(mel / 2595) - 1)",
            "norm": None,
            "construction": (
                "torchaudio.functional.melscale_fbanks: bin k is at k * (sr / 2) / (bins - 1) "
                "Hz; n_mels + 2 points equally spaced in mel from mel(f_min) to mel(f_max), "
                "back to Hz as p[0..n_mels+1]; band m weighs bin f by "
                "max(0, min((f - p[m]) / (p[m+1] - p[m]), (p[m+2] - f) / (p[m+2] - p[m+1])))"
            ),
            "apply": "mel[m, t] = sum over k of filterbank[k, m] * power[k, t]",
            "filterbank": {
                "shape": [bins, config.n_mels],
                "layout": "per band m: weights for bins start_bin, start_bin + 1, ...; 0 elsewhere",
                "bands": _sparse_filterbank(),
            },
        },
        "log": {"function": "natural log", "floor": LOG_FLOOR, "formula": "ln(max(mel, 1e-6))"},
        "tensor": {
            "name": INPUT_NAME,
            "layout": f"(batch, {config.n_mels}, frames) float32; one clip is batch 1",
            "any_length": "every frames >= 1 works; clips in one batch share a length",
        },
        "network": {
            "config": asdict(config),
            "parameters": sum(p.numel() for p in net.parameters()),
            "mode": (
                "eval: dropout off; BatchNorm1d(x) = (x - running_mean) / sqrt(running_var "
                "+ 1e-5) * weight + bias per channel; Conv1d weights are (out, in, kernel), "
                "cross-correlation with bias; Linear y = x weight^T + bias"
            ),
            "forward": [
                "x = input_norm(logmel)  # BatchNorm1d over the mel bands",
                "h = gelu(stem_bn(stem(x)))  # Conv1d, kernel k, padding k // 2; exact erf gelu",
                "for each blocks.i: h = gelu(h + bn2(conv2(gelu(bn1(conv1(h))))))",
                "u = concat([h, x], channel axis)",
                (
                    f"windows of {config.window_frames} frames from frame 0, the last one "
                    "partial: mean and std = sqrt(max(mean((u - mean)^2), 1e-6)) per channel; "
                    "s = concat([means, stds], channel axis)  # (batch, 2 C, windows)"
                ),
                (
                    "a = softmax over windows of pool.attention.2(tanh(pool.attention.0(s))) "
                    "(1x1 Conv1d); mean = sum(a s), std = sqrt(max(sum(a s^2) - mean^2, 1e-6)); "
                    "p = concat([mean, std])"
                ),
                "z = head(pool_bn(p))  # BatchNorm1d, then Linear",
                "embedding = concat([z, 1]) / |concat([z, 1])|",
            ],
            "tensors": {k: list(v.shape) for k, v in state_tensors(net).items()},
        },
        "output": _output_spec(config.embed_dim),
        "files": {
            "onnx": f"{INPUT_NAME} -> {OUTPUT_NAME}, opset {ONNX_OPSET}, batch and frames dynamic",
            "onnx_waveform": f"{WAVE_INPUT_NAME} (batch, samples) -> {OUTPUT_NAME}, uses STFT",
            "safetensors": "the tensors above; metadata: net_config and the exporter's, strings",
        },
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_all(
    model: OddNet,
    out_dir: Path | str,
    stem: str,
    metadata: dict[str, Any],
    waveform: bool = True,
) -> dict[str, Path]:
    """Write `<stem>.onnx`, `<stem>.safetensors`, `<stem>.json` (front-end spec, metadata,
    file hashes) and, with `waveform`, `<stem>-waveform.onnx` into `out_dir`.

    Each ONNX file is checked against PyTorch on a random input before it is kept;
    ValueError if one differs by more than CHECK_TOLERANCE. Returns the paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "onnx": export_onnx(model, out / f"{stem}.onnx"),
        "safetensors": export_safetensors(model, out / f"{stem}.safetensors", metadata),
    }
    rng = np.random.default_rng(0)
    checks = {"onnx": rng.normal(-5, 3, (2, model.config.n_mels, 777)).astype(np.float32)}
    if waveform:
        paths["onnx_waveform"] = export_onnx_waveform(model, out / f"{stem}-waveform.onnx")
        checks["onnx_waveform"] = rng.normal(0, 0.1, (2, 7 * 16_000 + 123)).astype(np.float32)
    for kind, inputs in checks.items():
        difference = onnx_check(paths[kind], model, inputs)
        if difference > CHECK_TOLERANCE:
            raise ValueError(f"{paths[kind].name} differs from PyTorch by {difference:.2g}")
    card = model_card(model, metadata, paths)
    paths["json"] = out / f"{stem}.json"
    paths["json"].write_text(json.dumps(card, indent=1) + "\n")
    return paths


def model_card(model: OddNet, metadata: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
    """The JSON beside the exported files: front-end spec, metadata, and each file's name
    and SHA-256."""
    return {
        "frontend": frontend_spec(model.config),
        "metadata": metadata,
        "files": {k: {"name": p.name, "sha256": _sha256(p)} for k, p in files.items()},
    }


def export_head(
    head: ProjectionHead, out_dir: Path | str, stem: str, metadata: dict[str, Any]
) -> dict[str, Path]:
    """Write a projection head as `<stem>.onnx` (`vector` (batch, in_dim) -> `embedding`,
    dynamic batch), `<stem>.safetensors` (config as `head_config`) and `<stem>.json`.

    The ONNX file is checked against PyTorch first; ValueError if it differs by more than
    CHECK_TOLERANCE. Returns the paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net, config = _frozen(head), head.config
    example = torch.randn(2, config.in_dim)
    paths = {
        "onnx": _onnx_write(net, example, out / f"{stem}.onnx", VECTOR_INPUT_NAME, {0: "batch"})
    }
    paths["safetensors"] = export_safetensors(
        head, out / f"{stem}.safetensors", metadata, config_key="head_config"
    )
    rng = np.random.default_rng(0)
    vectors = net.mean.numpy() + net.std.numpy() * rng.normal(size=(8, config.in_dim))
    difference = onnx_check(paths["onnx"], head, vectors.astype(np.float32))
    if difference > CHECK_TOLERANCE:
        raise ValueError(f"{paths['onnx'].name} differs from PyTorch by {difference:.2g}")
    spec = {
        "spec_version": SPEC_VERSION,
        "model": "projection head",
        "input": {
            "name": VECTOR_INPUT_NAME,
            "shape": f"(batch, {config.in_dim}) float32",
            "what": (
                "a snippet's BEATs vector: the mean last-layer token of the BEATs encoder, "
                "padding excluded (embeddings/extractors/beats.py, snippet_vectors)"
            ),
        },
        "network": {
            "config": asdict(config),
            "forward": [
                "z = linear((vector - mean) / std)  # Linear y = x weight^T + bias",
                "embedding = concat([z, 1]) / |concat([z, 1])|",
            ],
            "tensors": {k: list(v.shape) for k, v in state_tensors(net).items()},
        },
        "output": _output_spec(config.embed_dim),
    }
    card = {
        "head": spec,
        "metadata": metadata,
        "files": {k: {"name": p.name, "sha256": _sha256(p)} for k, p in paths.items()},
    }
    paths["json"] = out / f"{stem}.json"
    paths["json"].write_text(json.dumps(card, indent=1) + "\n")
    return paths


class _OpeningEncoder(nn.Module):
    """The transition model's opening encoder as a module of its own, for export."""

    def __init__(self, model: TransitionNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, opening: torch.Tensor) -> torch.Tensor:
        return self.model.encode_opening(opening)


def export_transition(
    model: TransitionNet,
    out_dir: Path | str,
    stem: str,
    metadata: dict[str, Any],
    windows: tuple[int, int] = (8, 8),
) -> dict[str, Path]:
    """Write the transition model as `<stem>-ending.onnx` (`ending` (batch, windows, in_dim)
    -> predicted next `embedding`), `<stem>-opening.onnx` (`opening` -> `embedding`), both
    with dynamic batch and windows axes, `<stem>.safetensors` and `<stem>.json` (how frames
    are made from audio, the ending and opening lengths it was trained with, `windows`).

    Each ONNX file is checked against PyTorch on random frames of several lengths first;
    ValueError if one differs by more than CHECK_TOLERANCE. Returns the paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net, config = _frozen(model), model.config
    opening = _OpeningEncoder(net).eval()
    axes = {0: "batch", 1: "windows"}
    example = torch.randn(1, windows[0], config.in_dim)
    paths = {
        "onnx_ending": _onnx_write(
            net, example, out / f"{stem}-ending.onnx", ENDING_INPUT_NAME, axes
        ),
        "onnx_opening": _onnx_write(
            opening, example, out / f"{stem}-opening.onnx", OPENING_INPUT_NAME, axes
        ),
    }
    paths["safetensors"] = export_safetensors(model, out / f"{stem}.safetensors", metadata)
    # Frames around the training distribution: the model standardises them first.
    rng = np.random.default_rng(0)
    mean, std = net.feature_mean.numpy(), net.feature_std.numpy()
    frames = [
        (mean + std * rng.standard_normal((b, t, config.in_dim))).astype(np.float32)
        for b, t in ((1, windows[0]), (3, windows[1]), (2, 1), (2, 23))
    ]
    for kind, module in (("onnx_ending", net), ("onnx_opening", opening)):
        difference = onnx_check(paths[kind], module, frames)
        if difference > CHECK_TOLERANCE:
            raise ValueError(f"{paths[kind].name} differs from PyTorch by {difference:.2g}")
    front = frontend_spec(OddNetConfig())
    spec = {
        "spec_version": SPEC_VERSION,
        "model": "transition model (BiLSTM over window frames)",
        "audio_to_log_mel": {k: front[k] for k in ("input", "stft", "mel", "log")},
        "frames": {
            "window_s": config.window_s,
            "log_mel_frames_per_window": round(config.window_s * SAMPLE_RATE / HOP),
            "features": (
                f"per window of consecutive log-mel frames from frame 0 (a last partial window "
                f"is dropped): the mean of each of the {N_MELS} bands, then each band's "
                "population standard deviation (divide by n) -> "
                f"{config.in_dim} float32 numbers"
            ),
            "ending": f"the {windows[0]} windows just before the seam, oldest first",
            "opening": f"the {windows[1]} windows from the seam on",
        },
        "network": {
            "config": asdict(config),
            "parameters": sum(p.numel() for p in net.parameters()),
            "tensors": {k: list(v.shape) for k, v in state_tensors(net).items()},
            "source": "training/transition_net.py, TransitionNet (forward, encode_opening)",
        },
        "output": {
            **_output_spec(config.embed_dim),
            "score": "cosine of the ending's prediction and a candidate opening's embedding",
        },
        "files": {
            "onnx_ending": f"{ENDING_INPUT_NAME} -> {OUTPUT_NAME}, batch and windows dynamic",
            "onnx_opening": f"{OPENING_INPUT_NAME} -> {OUTPUT_NAME}, batch and windows dynamic",
            "safetensors": "the tensors above; metadata: net_config and the exporter's, strings",
        },
    }
    card = {
        "transition": spec,
        "metadata": metadata,
        "files": {k: {"name": p.name, "sha256": _sha256(p)} for k, p in paths.items()},
    }
    paths["json"] = out / f"{stem}.json"
    paths["json"].write_text(json.dumps(card, indent=1) + "\n")
    return paths
