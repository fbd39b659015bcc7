"""embeddings.extractors.beats: BEATs from official-format checkpoints, on a tiny random model."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from embeddings.extractors import beats

SR = beats.SAMPLE_RATE
# A tiny model with every feature of the iter3 / iter3+ AS2M checkpoints (deep norm, gated
# relative position bias, AudioSet head), saved the way the official files are.
TINY_CFG = {
    "input_patch_size": 16,
    "embed_dim": 32,
    "conv_bias": False,
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 0.6,
    "layer_norm_first": False,
    "deep_norm": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "finetuned_model": True,
    "predictor_dropout": 0.0,
    "predictor_class": 10,
}
# Weight names and shapes of the official checkpoints (microsoft/unilm beats/BEATs.py and
# backbone.py): pos_conv is nn.Sequential(weight_norm(Conv1d, dim=2), SamePad, GELU), and
# every layer lists the relative position table that layer 0 owns.
OFFICIAL_TOP = {
    "patch_embedding.weight": (32, 1, 16, 16),
    "layer_norm.weight": (32,),
    "layer_norm.bias": (32,),
    "post_extract_proj.weight": (64, 32),
    "post_extract_proj.bias": (64,),
    "encoder.pos_conv.0.weight_g": (1, 1, 16),
    "encoder.pos_conv.0.weight_v": (64, 16, 16),
    "encoder.pos_conv.0.bias": (64,),
    "encoder.layer_norm.weight": (64,),
    "encoder.layer_norm.bias": (64,),
    "predictor.weight": (10, 64),
    "predictor.bias": (10,),
}
OFFICIAL_LAYER = {
    "self_attn.k_proj.weight": (64, 64),
    "self_attn.k_proj.bias": (64,),
    "self_attn.v_proj.weight": (64, 64),
    "self_attn.v_proj.bias": (64,),
    "self_attn.q_proj.weight": (64, 64),
    "self_attn.q_proj.bias": (64,),
    "self_attn.out_proj.weight": (64, 64),
    "self_attn.out_proj.bias": (64,),
    "self_attn.relative_attention_bias.weight": (320, 4),
    "self_attn.grep_linear.weight": (8, 16),
    "self_attn.grep_linear.bias": (8,),
    "self_attn.grep_a": (1, 4, 1, 1),
    "self_attn_layer_norm.weight": (64,),
    "self_attn_layer_norm.bias": (64,),
    "fc1.weight": (128, 64),
    "fc1.bias": (128,),
    "fc2.weight": (64, 128),
    "fc2.bias": (64,),
    "final_layer_norm.weight": (64,),
    "final_layer_norm.bias": (64,),
}


def official_shapes(layers: int) -> dict[str, tuple[int, ...]]:
    shapes = dict(OFFICIAL_TOP)
    for i in range(layers):
        shapes.update({f"encoder.layers.{i}.{k}": v for k, v in OFFICIAL_LAYER.items()})
    return shapes


def seeded_state() -> dict[str, torch.Tensor]:
    """Official-format weights drawn from a fixed generator, independent of the module's init."""
    g = torch.Generator().manual_seed(7)
    state = {}
    for key, shape in sorted(official_shapes(layers=2).items()):
        noise = torch.randn(shape, generator=g)
        if key.endswith(("norm.weight", "weight_g", "grep_a")):
            state[key] = 1.0 + 0.1 * noise
        elif len(shape) == 1:
            state[key] = 0.1 * noise
        else:
            state[key] = noise / shape[-1] ** 0.5
    table = "self_attn.relative_attention_bias.weight"
    state[f"encoder.layers.1.{table}"] = state[f"encoder.layers.0.{table}"]
    return state


def music(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * 330.0 * t) * (1 + np.sin(2 * np.pi * 2.0 * t)) / 2
    return (tone + rng.normal(0, 0.03, len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = beats.Beats(beats.BeatsConfig.from_dict(TINY_CFG))
    with torch.no_grad():  # move norms, gates and biases off their neutral values too
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.state_dict()


@pytest.fixture(scope="module")
def checkpoint(tiny_state: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("beats") / "BEATs_tiny_AS2M.pt"
    torch.save({"cfg": TINY_CFG, "model": tiny_state}, path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint: Path) -> beats.Beats:
    return beats.load_checkpoint(checkpoint)


def test_the_state_dict_has_the_official_weight_names_and_shapes(tiny_state):
    shapes = {k: tuple(v.shape) for k, v in tiny_state.items()}
    assert shapes == official_shapes(layers=2)
    shared = "self_attn.relative_attention_bias.weight"
    assert torch.equal(
        tiny_state[f"encoder.layers.0.{shared}"], tiny_state[f"encoder.layers.1.{shared}"]
    )


def test_a_checkpoint_loads_in_eval_mode_with_its_weights(model, tiny_state):
    assert not model.training
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in tiny_state.items())
    assert model.dim == 64 and model.predictor is not None


def test_it_gives_the_numbers_the_reference_implementation_gives(tmp_path):
    # Computed once with microsoft/unilm beats/BEATs.py (extract_features, with and without
    # its predictor) on the seeded_state() weights and music(1.0): 48 tokens.
    path = tmp_path / "seeded.pt"
    torch.save({"cfg": TINY_CFG, "model": seeded_state()}, path)
    model = beats.load_checkpoint(path)
    wave = torch.from_numpy(music(1.0))[None]
    with torch.no_grad():
        frames, _ = model.extract_features(wave)
        probabilities = model.predict(wave)
    reference_mean = [-0.328267, 0.502628, 0.519629, 0.494337, -1.049591, 0.646282]
    reference_token_5 = [-1.087879, 0.669479, 0.826552, 0.886392]
    reference_probabilities = [0.356606, 0.663041, 0.608792, 0.5863]
    assert frames.shape == (1, 48, 64)
    np.testing.assert_allclose(frames[0].mean(0)[:6], reference_mean, atol=1e-4)
    np.testing.assert_allclose(frames[0, 5, :4], reference_token_5, atol=1e-4)
    np.testing.assert_allclose(probabilities[0, :4], reference_probabilities, atol=1e-4)
    vector = beats.snippet_vectors(model, [music(1.0)])[0]
    np.testing.assert_allclose(vector[:6], reference_mean, atol=1e-4)


def test_the_config_ignores_keys_it_does_not_know():
    cfg = beats.BeatsConfig.from_dict({**TINY_CFG, "some_future_field": 3})
    assert cfg.encoder_embed_dim == 64
    assert beats.BeatsConfig().encoder_embed_dim == beats.DIM == 768


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("text", "unreadable"),
        ({"model": {}}, "no 'cfg' dict"),
        ({"cfg": TINY_CFG}, "no 'model' state dict"),
        ("drop fc1", "missing weights, e.g. encoder.layers.1.fc1.weight"),
        ("extra key", "unexpected weights, e.g. label_embs_concat"),
        ("wide cfg", "weights of the wrong shape, e.g. encoder.layers.0.fc1.weight"),
    ],
)
def test_loading_rejects_a_broken_file_with_the_reason(tmp_path, tiny_state, content, reason):
    path = tmp_path / "broken.pt"
    if content == "text":
        path.write_text("not a checkpoint")
    elif content == "drop fc1":
        state = {k: v for k, v in tiny_state.items() if k != "encoder.layers.1.fc1.weight"}
        torch.save({"cfg": TINY_CFG, "model": state}, path)
    elif content == "extra key":
        torch.save(
            {"cfg": TINY_CFG, "model": {**tiny_state, "label_embs_concat": torch.ones(2)}}, path
        )
    elif content == "wide cfg":
        torch.save({"cfg": {**TINY_CFG, "encoder_ffn_embed_dim": 256}, "model": tiny_state}, path)
    else:
        torch.save(content, path)
    with pytest.raises(beats.BeatsUnavailable, match="not a BEATs checkpoint") as error:
        beats.load_checkpoint(path)
    assert reason in str(error.value)
    assert beats.availability(str(path)) == (False, str(error.value))


def test_availability_says_why_beats_cannot_be_used(tmp_path, checkpoint):
    assert beats.availability(None) == (
        False,
        "no checkpoint configured (set ODDBALL_BEATS_CHECKPOINT)",
    )
    missing = tmp_path / "BEATs_iter3_plus_AS2M.pt"
    assert beats.availability(str(missing)) == (False, f"file not found: {missing}")
    with pytest.raises(beats.BeatsUnavailable, match="file not found"):
        beats.load_checkpoint(missing)
    assert beats.availability(str(checkpoint)) == (True, "ok")


def test_fbank_gives_about_100_frames_a_second_of_128_bins():
    features, mask = beats.fbank(torch.from_numpy(music(2.5))[None])
    assert features.shape == (1, 1 + (40_000 - 400) // 160, 128) == (1, 248, 128)
    assert not mask.any()


def test_fbank_scales_to_int16_and_applies_the_reference_normalisation():
    wave = torch.from_numpy(music(1.0))
    kaldi_fbank = kaldi.fbank(wave[None] * 32768, num_mel_bins=128, frame_length=25, frame_shift=10)
    features, _ = beats.fbank(wave[None])
    torch.testing.assert_close(features[0], (kaldi_fbank - 15.41663) / (2 * 6.55582))
    # Digital silence floors every mel energy at float32 epsilon.
    silence, _ = beats.fbank(torch.zeros(1, SR))
    expected = (math.log(torch.finfo(torch.float32).eps) - 15.41663) / (2 * 6.55582)
    assert silence.mean().item() == pytest.approx(expected, abs=1e-4)


def test_frame_features_have_one_token_per_16_by_16_patch(model):
    frames, mask = model.extract_features(torch.from_numpy(music(2.0))[None])
    steps = (1 + (32_000 - 400) // 160) // 16  # 198 fbank frames make 12 steps of 160 ms
    assert frames.shape == (1, steps * 128 // 16, 64) == (1, 96, 64)
    assert mask is None


def test_extract_features_folds_the_sample_mask_onto_tokens_as_the_reference(model):
    short, long = music(1.3, seed=1), music(2.1, seed=2)
    waves = torch.zeros(2, len(long))
    waves[0, : len(short)], waves[1] = torch.from_numpy(short), torch.from_numpy(long)
    samples = torch.zeros(2, len(long), dtype=torch.bool)
    samples[0, len(short) :] = True
    frames, mask = model.extract_features(waves, samples)
    # 208 frames → 104 tokens; the reference folds 161 samples a frame, 2 frames a token, so
    # tokens from 65 on are padding (the exact count alone is 64: see the module note).
    assert frames.shape == (2, 104, 64)
    assert mask[0].nonzero().min() == 65 and mask[0, 65:].all() and not mask[1].any()
    alone, _ = model.extract_features(waves[1:])
    torch.testing.assert_close(frames[1], alone[0], atol=1e-5, rtol=0)


def test_a_padded_clip_gives_the_same_tokens_and_vector_as_alone(model):
    short, long = music(1.3, seed=1), music(2.1, seed=2)
    waves = torch.zeros(2, len(long))
    waves[0, : len(short)], waves[1] = torch.from_numpy(short), torch.from_numpy(long)
    features, frame_mask = beats.fbank(waves, torch.tensor([len(short), len(long)]))
    tokens, mask = model.encode(features, frame_mask)
    alone, alone_mask = model.encode(beats.fbank(torch.from_numpy(short)[None])[0])
    assert (~mask[0]).sum() == alone.shape[1] == 64 and not alone_mask.any()
    torch.testing.assert_close(tokens[0, :64], alone[0], atol=1e-4, rtol=0)

    together = beats.snippet_vectors(model, [short, long])
    each = np.concatenate([beats.snippet_vectors(model, [x]) for x in (short, long)])
    np.testing.assert_allclose(together, each, atol=1e-4, rtol=0)


def test_two_calls_give_identical_vectors(model):
    clips = [music(1.0, seed=3), music(1.7, seed=4)]
    np.testing.assert_array_equal(
        beats.snippet_vectors(model, clips), beats.snippet_vectors(model, clips)
    )


def test_snippet_vectors_are_finite_with_one_entry_per_model_dimension(model):
    vectors = beats.snippet_vectors(model, [music(1.0), music(1.5, seed=5), music(0.5)])
    assert vectors.shape == (3, model.dim) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])


def test_a_clip_shorter_than_one_patch_is_rejected(model):
    with pytest.raises(ValueError, match="at least 2800 samples"):
        beats.snippet_vectors(model, [music(0.1)])


def test_predict_gives_a_probability_per_audioset_class(model):
    probabilities = model.predict(torch.from_numpy(music(1.0))[None])
    assert probabilities.shape == (1, 10)
    assert ((probabilities > 0) & (probabilities < 1)).all()
