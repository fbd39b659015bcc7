import csv
import functools
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from embeddings.audio import decode, resample, to_mono
from training.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    WAVE_INPUT_NAME,
    export_all,
    export_head,
    export_onnx,
    export_onnx_waveform,
    export_safetensors,
    frontend_spec,
    load_safetensors,
    onnx_check,
)
from training.heads import HeadConfig, ProjectionHead
from training.nets import SAMPLE_RATE, OddNet, OddNetConfig, log_mel, window_stats

# ONNX graphs and the reference are float32; 1e-4 on a unit vector is far below what moves
# a nearest neighbour, and far above the ~1e-6 an exact export shows.
ONNX_TOLERANCE = 1e-4


@functools.cache
def _recording(corpus: Path) -> np.ndarray:
    """16 kHz mono samples of the first corpus recording at least 60 s long."""
    with open(corpus / "MANIFEST.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if float(r["duration_s"]) >= 60.0)
    audio, rate = decode(corpus / row["path"])
    return resample(to_mono(audio), rate, SAMPLE_RATE)


def _clip(wave: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    start = round(start_s * SAMPLE_RATE)
    return wave[start : start + round(seconds * SAMPLE_RATE)]


def _log_mel(wave: np.ndarray) -> np.ndarray:
    return log_mel(torch.from_numpy(np.ascontiguousarray(wave))).numpy()


@functools.cache
def _model(corpus: Path) -> OddNet:
    """A random OddNet whose BatchNorm layers have seen real music, in eval mode."""
    torch.manual_seed(0)
    model = OddNet()
    for module in model.modules():  # non-trivial affine BatchNorm parameters too
        if isinstance(module, torch.nn.BatchNorm1d):
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
            torch.nn.init.normal_(module.bias, 0.0, 0.3)
    crops = _log_mel(_recording(corpus))[:, : 60 * 50].reshape(64, 4, -1).transpose(1, 0, 2)
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.from_numpy(np.ascontiguousarray(crops)))
    return model.eval()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export")


@functools.cache
def _onnx_file(corpus: Path, folder: Path, kind: str) -> Path:
    """The model exported once per test module: "logmel" or "waveform" input."""
    export = export_onnx if kind == "logmel" else export_onnx_waveform
    return export(_model(corpus), folder / f"{kind}.onnx")


def test_the_onnx_model_matches_pytorch_on_5_s_and_60_s_of_real_music(corpus, folder):
    wave = _recording(corpus)
    path = _onnx_file(corpus, folder, "logmel")
    # The 60 s clip starts with the recording's digital silence; the 5 s one is music.
    for clip in (_clip(wave, 30.0, 5.0), _clip(wave, 0.0, 60.0)):
        assert onnx_check(path, _model(corpus), _log_mel(clip)) < ONNX_TOLERANCE


def test_the_onnx_model_takes_any_batch_size_and_length(corpus, folder):
    wave = _recording(corpus)
    path = _onnx_file(corpus, folder, "logmel")
    pair = np.stack([_log_mel(_clip(wave, s, 7.3)) for s in (10.0, 40.0)])
    odd_lengths = [_log_mel(_clip(wave, 20.0, s)) for s in (0.7, 7.3, 61.1)]
    assert onnx_check(path, _model(corpus), [pair, *odd_lengths]) < ONNX_TOLERANCE


def test_the_onnx_graph_has_named_dynamic_axes_and_no_ceil_mode_pooling(corpus, folder):
    graph = onnx.load(_onnx_file(corpus, folder, "logmel")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert (graph.input[0].name, graph.output[0].name) == (INPUT_NAME, OUTPUT_NAME)
    assert dims == ["batch", 64, "frames"]
    # Runtimes disagree on how ceil_mode pooling divides a window that hangs off the end.
    assert "AveragePool" not in {node.op_type for node in graph.node}


def test_the_waveform_onnx_matches_the_pytorch_pipeline_on_real_music(corpus, folder):
    wave = _recording(corpus)
    path = _onnx_file(corpus, folder, "waveform")
    assert onnx.load(path).graph.input[0].name == WAVE_INPUT_NAME
    clips = [_clip(wave, 30.0, 5.0), _clip(wave, 0.0, 60.0), _clip(wave, 20.0, 7.3)]
    pair = np.stack([_clip(wave, 10.0, 7.3), _clip(wave, 40.0, 7.3)])
    assert onnx_check(path, _model(corpus), [*clips, pair]) < ONNX_TOLERANCE


def test_safetensors_round_trip_gives_identical_embeddings_and_keeps_metadata(corpus, tmp_path):
    model = _model(corpus)
    path = export_safetensors(model, tmp_path / "m.safetensors", {"version": 3, "name": "x"})
    loaded, meta = load_safetensors(path)
    x = torch.from_numpy(_log_mel(_clip(_recording(corpus), 30.0, 15.0)))[None]
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert meta["version"] == "3" and meta["name"] == "x"
    assert OddNetConfig(**json.loads(meta["net_config"])) == model.config


def _numpy_front_end(wave: np.ndarray, spec: dict) -> np.ndarray:
    """The log-mel computed from the JSON spec alone, in float64 numpy."""
    stft, mel = spec["stft"], spec["mel"]
    n_fft, hop = stft["n_fft"], stft["hop_length"]
    assert stft["center"] and "reflect" in stft["padding"] and not stft["normalized"]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    padded = np.pad(wave.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop] * window
    assert len(frames) == 1 + len(wave) // hop  # the spec's frame count formula
    spectrum = np.fft.rfft(frames, axis=1)
    power = spectrum.real**2 + spectrum.imag**2  # (frames, bins)
    bank = np.zeros(mel["filterbank"]["shape"])
    for m, band in enumerate(mel["filterbank"]["bands"]):
        bank[band["start_bin"] : band["start_bin"] + len(band["weights"]), m] = band["weights"]
    return np.log(np.maximum(power @ bank, spec["log"]["floor"])).T


def test_the_frontend_spec_alone_reproduces_log_mel_on_real_music(corpus):
    spec = json.loads(json.dumps(frontend_spec(OddNetConfig())))  # as a player reads it
    clip = _clip(_recording(corpus), 0.0, 20.0)  # silence, then music
    ours = _numpy_front_end(clip, spec)
    reference = _log_mel(clip)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_the_spec_filterbank_follows_its_htk_formulas():
    mel_spec = frontend_spec(OddNetConfig())["mel"]
    n_mels, f_max = mel_spec["n_mels"], mel_spec["f_max_hz"]
    bins = mel_spec["filterbank"]["shape"][0]
    freqs = np.linspace(0.0, f_max, bins)
    points = 700.0 * (
        10 ** (np.linspace(0.0, 2595.0 * np.log10(1 + f_max / 700), n_mels + 2) / 2595) - 1
    )
    expected = np.zeros((bins, n_mels))
    for m in range(n_mels):
        rise = (freqs - points[m]) / (points[m + 1] - points[m])
        fall = (points[m + 2] - freqs) / (points[m + 2] - points[m + 1])
        expected[:, m] = np.maximum(0.0, np.minimum(rise, fall))
    for m, band in enumerate(mel_spec["filterbank"]["bands"]):
        got = np.zeros(bins)
        got[band["start_bin"] : band["start_bin"] + len(band["weights"])] = band["weights"]
        np.testing.assert_allclose(got, expected[:, m], atol=1e-5)


def _ceil_mode_window_stats(x: torch.Tensor, frames: int) -> torch.Tensor:
    """window_stats as first written, with avg_pool1d's ceil_mode."""
    mean = F.avg_pool1d(x, frames, frames, ceil_mode=True)
    square = F.avg_pool1d(x * x, frames, frames, ceil_mode=True)
    return torch.cat([mean, torch.sqrt(torch.clamp(square - mean * mean, min=1e-6))], dim=1)


def test_window_stats_agrees_with_ceil_mode_pooling_on_any_length():
    torch.manual_seed(0)
    for frames in (1, 7, 49, 50, 51, 100, 251, 751, 3001):
        x = torch.randn(2, 80, frames) * 2 + 1
        np.testing.assert_allclose(window_stats(x, 50), _ceil_mode_window_stats(x, 50), atol=1e-6)


def test_window_stats_of_digital_silence_is_exact():
    # E[x²] - E[x]² of a constant is rounding noise; the two-pass std is exactly the floor,
    # in the five whole windows and in the one-frame window that ends a 5 s clip.
    x = torch.full((1, 3, 251), -4.6051702)
    std = window_stats(x, 50)[:, 3:]
    assert torch.equal(std, torch.sqrt(torch.full((1, 3, 6), 1e-6)))


def test_export_all_writes_onnx_safetensors_and_a_json_card(corpus, tmp_path):
    paths = export_all(_model(corpus), tmp_path, "oddnet-7", {"version": 7}, waveform=False)
    assert {k: p.name for k, p in paths.items()} == {
        "onnx": "oddnet-7.onnx",
        "safetensors": "oddnet-7.safetensors",
        "json": "oddnet-7.json",
    }
    card = json.loads(paths["json"].read_text())
    assert card["metadata"] == {"version": 7}
    assert card["frontend"]["stft"]["n_fft"] == 1024
    with safe_open(paths["safetensors"], framework="pt") as f:
        assert set(card["frontend"]["network"]["tensors"]) == set(f.keys())
        assert not any(k.endswith("num_batches_tracked") for k in f.keys())  # noqa: SIM118


def test_export_head_writes_a_checked_onnx_safetensors_and_json(tmp_path):
    torch.manual_seed(0)
    head = ProjectionHead(HeadConfig(in_dim=32, embed_dim=8))
    head.mean.normal_(0.0, 2.0)
    head.std.uniform_(0.5, 3.0)
    paths = export_head(head, tmp_path, "beats-head-1", {"space": "beats-head@1"})
    assert sorted(paths) == ["json", "onnx", "safetensors"]
    vectors = (head.mean + head.std * torch.randn(5, 32)).numpy()
    assert onnx_check(paths["onnx"], head, vectors) < ONNX_TOLERANCE
    with safe_open(paths["safetensors"], framework="pt") as f:
        assert json.loads(f.metadata()["head_config"])["in_dim"] == 32
        assert torch.equal(f.get_tensor("std"), head.std)
    card = json.loads(paths["json"].read_text())
    assert card["head"]["input"]["shape"] == "(batch, 32) float32"
    assert card["metadata"] == {"space": "beats-head@1"}
