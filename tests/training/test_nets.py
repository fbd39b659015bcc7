import numpy as np
import pytest
import torch

from embeddings.extractors import mel_stats
from training.nets import (
    MAX_PARAM_BYTES,
    N_MELS,
    SAMPLE_RATE,
    OddNet,
    OddNetConfig,
    embed,
    log_mel,
    param_bytes,
)


def test_any_input_length_gives_a_unit_length_embedding() -> None:
    torch.manual_seed(0)
    model = OddNet().eval()
    for frames in (50, 77, 751):
        with torch.no_grad():
            z = model(torch.randn(2, N_MELS, frames))
        assert z.shape == (2, model.config.embed_dim)
        assert torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)


def test_the_default_model_fits_in_one_megabyte() -> None:
    assert param_bytes(OddNet()) <= MAX_PARAM_BYTES


def test_log_mel_gives_64_bands_at_50_frames_per_second() -> None:
    wave = torch.sin(torch.arange(2 * SAMPLE_RATE) * 2 * torch.pi * 440 / SAMPLE_RATE)
    m = log_mel(wave)
    assert m.shape == (N_MELS, 101)
    assert torch.isfinite(m).all()
    # A 440 Hz tone puts its energy in a low band, not the top one.
    assert m.mean(dim=1).argmax() < N_MELS // 2


def test_embed_keeps_input_order_across_clips_of_different_lengths() -> None:
    torch.manual_seed(0)
    model = OddNet(OddNetConfig(channels=8))
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((N_MELS, t)).astype(np.float32) for t in (60, 90, 60)]
    together = embed(model, clips)
    one_by_one = np.concatenate([embed(model, [c]) for c in clips])
    assert together.shape == (3, model.config.embed_dim)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
    assert model.training  # embed restores the mode it found


@pytest.mark.filterwarnings("ignore::FutureWarning")  # jit.trace is deprecated but simple
def test_a_traced_model_still_works_for_another_length() -> None:
    # A trace bakes in any Python-level dependence on T; ONNX export would too.
    torch.manual_seed(0)
    model = OddNet(OddNetConfig(channels=8)).eval()
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.randn(1, N_MELS, 100))
        x = torch.randn(1, N_MELS, 173)
        assert torch.allclose(traced(x), model(x), atol=1e-5)


def test_log_mel_matches_the_mel_stats_extractor() -> None:
    wave = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    ours = log_mel(torch.from_numpy(np.stack([wave, wave])))
    np.testing.assert_allclose(ours[1].numpy(), mel_stats.log_mel(wave), atol=1e-4)
