from pathlib import Path

import numpy as np
import pytest
import torch

from training.metrics import odd_positions
from training.nets import N_MELS, OddNetConfig, embed
from training.train import (
    TrainConfig,
    TripletData,
    batch_rows,
    train,
    triplet_loss,
    weights_average_add,
)

SMALL_NET = OddNetConfig(channels=8, attention_dim=8, embed_dim=16)


def _synthetic(n: int = 60, frames: int = 100, seed: int = 0):
    """Log-mels whose level in two band groups follows a hidden 2-d taste point per clip."""
    rng = np.random.default_rng(seed)
    taste = rng.standard_normal((n, 2))
    profiles = np.zeros((2, N_MELS))
    profiles[0, :16] = 1.0
    profiles[1, 40:56] = 1.0
    noise = 0.5 * rng.standard_normal((n, N_MELS, frames))
    features = (noise + (taste @ profiles)[:, :, None]).astype(np.float32)
    return features, taste


def _triplets(taste: np.ndarray, snippets: np.ndarray, n: int, rng: np.random.Generator):
    """(anchor, positive, negative) rows ordered by the noiseless taste."""
    rows = []
    for _ in range(n):
        t = rng.choice(snippets, 3, replace=False)
        odd = odd_positions(taste[t][None])[0]
        rows.append([*np.delete(t, odd), t[odd]])
    return np.array(rows)


def _taste_split() -> tuple[np.ndarray, TripletData, np.ndarray]:
    """Features, training data on clips 0-39 and test rows on the unseen clips 40-59."""
    features, taste = _synthetic()
    rng = np.random.default_rng(1)
    train_rows = _triplets(taste, np.arange(40), 400, rng)
    test_rows = _triplets(taste, np.arange(40, 60), 300, rng)
    return features, TripletData(features, train_rows, np.ones(len(train_rows))), test_rows


def test_training_on_a_synthetic_taste_agrees_with_it_on_held_out_clips() -> None:
    features, data, test_rows = _taste_split()
    config = TrainConfig(steps=25, batch_size=32, crop_seconds=1.5, eval_every=1000)
    result = train(config, data, SMALL_NET)
    vectors = embed(result.model, list(features))
    # Rows are ordered (a, p, n), so the true odd position is always 2.
    agreement = np.mean(odd_positions(vectors[test_rows], metric="cosine") == 2)
    assert agreement > 0.6  # chance is 1/3
    assert result.step == 25


@pytest.mark.parametrize("average_last", [0.0, 0.5])
def test_a_checkpointed_run_resumes_at_its_step_and_ends_where_an_unbroken_run_ends(
    tmp_path: Path, average_last: float
) -> None:
    features, taste = _synthetic(n=24, frames=60)
    rows = _triplets(taste, np.arange(24), 50, np.random.default_rng(2))
    data = TripletData(features, rows, np.ones(len(rows)))

    def config(path: Path | None) -> TrainConfig:
        return TrainConfig(
            steps=6, batch_size=8, crop_seconds=1.0, log_every=1, eval_every=1000,
            checkpoint_path=str(path) if path else None, checkpoint_every=2,
            average_last=average_last,
        )  # fmt: skip

    unbroken = train(config(None), data, SMALL_NET)

    class Killed(Exception):
        pass

    def kill_at_step_3(record: dict) -> None:
        if record["step"] == 3:
            raise Killed

    path = tmp_path / "run.pt"
    with pytest.raises(Killed):
        train(config(path), data, SMALL_NET, progress=kill_at_step_3)
    assert torch.load(path, weights_only=False)["step"] == 2

    steps_seen: list[float] = []
    resumed = train(config(path), data, SMALL_NET, progress=lambda r: steps_seen.append(r["step"]))
    assert steps_seen == [3, 4, 5, 6]
    assert resumed.step == 6
    expected, got = unbroken.model.state_dict(), resumed.model.state_dict()
    for name, value in expected.items():
        assert torch.allclose(value.float(), got[name].float(), atol=1e-6), name
    saved = torch.load(path, weights_only=False)
    assert {"model", "optimizer", "config", "net_config", "step", "metrics"} <= saved.keys()
    assert (saved["averaged"] is None) == (average_last == 0)
    assert saved["step"] == 6


def test_a_pretraining_run_resumed_from_its_checkpoint_ends_where_an_unbroken_one_does(
    tmp_path,
):
    from training.pretrain import PretrainConfig, TrackChunks, pretrain

    rng = np.random.default_rng(0)
    data = TrackChunks(
        features=rng.normal(-5, 2, (8, 64, 320)).astype(np.float32),
        track_of=np.repeat(np.arange(4), 2),
    )
    small = {"steps": 12, "batch_size": 4, "crop_seconds": 2.0, "log_every": 1}
    whole = pretrain(PretrainConfig(**small), data)
    path = str(tmp_path / "pretrain.pt")

    class Killed(Exception):
        pass

    def kill_at_step_7(record: dict) -> None:
        if record["step"] == 7:
            raise Killed

    config = PretrainConfig(**small, checkpoint_path=path, checkpoint_every=3)
    with pytest.raises(Killed):
        pretrain(config, data, progress=kill_at_step_7)
    resumed = pretrain(config, data)
    assert resumed.metrics["resumed_from"] == 6
    for key, value in whole.model.state_dict().items():
        assert torch.allclose(value, resumed.model.state_dict()[key], atol=1e-6), key


def test_the_running_average_of_weights_is_their_mean() -> None:
    models = [torch.nn.BatchNorm1d(4) for _ in range(4)]
    for k, m in enumerate(models):
        torch.nn.init.normal_(m.weight)
        m.num_batches_tracked += k
    averaged, n = None, 0
    for m in models:
        averaged, n = weights_average_add(averaged, n, m)
    assert n == 4
    expected = torch.stack([m.weight.detach() for m in models]).mean(0)
    assert torch.allclose(averaged["weight"], expected, atol=1e-6)
    assert averaged["num_batches_tracked"] == 3  # a counter takes the newest value


def test_averaging_the_last_steps_changes_the_result_and_keeps_it_learning() -> None:
    features, data, test_rows = _taste_split()
    base = {"steps": 25, "batch_size": 32, "crop_seconds": 1.5, "eval_every": 1000}
    final = train(TrainConfig(**base, average_last=0.0), data, SMALL_NET).model
    averaged = train(TrainConfig(**base, average_last=0.4), data, SMALL_NET).model
    assert not torch.allclose(averaged.head.weight, final.head.weight)
    vectors = embed(averaged, list(features))
    assert np.mean(odd_positions(vectors[test_rows], metric="cosine") == 2) > 0.6


def test_the_triplet_loss_is_the_mean_margin_violation_on_cosine_distance() -> None:
    z = torch.nn.functional.normalize(
        torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(0)), dim=-1
    )

    def d(i: int, j: int) -> torch.Tensor:
        return 1 - torch.nn.functional.cosine_similarity(z[:, i], z[:, j], dim=-1)

    expected = torch.relu(d(0, 1) - d(0, 2) + 0.1).mean()
    assert float(triplet_loss(z, 0.1)) == pytest.approx(float(expected))
    assert float(triplet_loss(z[:, [0, 0, 2]], 0.0)) == 0.0  # positive = anchor: satisfied


def test_batches_are_drawn_in_proportion_to_the_weights() -> None:
    cumulative = np.cumsum([0.0, 1.0, 3.0, 0.0, 0.5])
    rows = batch_rows(cumulative, np.random.default_rng(0), 40_000)
    counts = np.bincount(rows, minlength=5) / len(rows)
    assert counts[0] == counts[3] == 0  # held out: never drawn
    assert counts[2] == pytest.approx(3 / 4.5, abs=0.01)
    assert counts[4] == pytest.approx(0.5 / 4.5, abs=0.01)
    # One seed, weights in one proportion: the same rows, so equal weights and reliability
    # weights draw the same batches when quality control finds everyone alike.
    equal = batch_rows(np.cumsum([1.0] * 6), np.random.default_rng(1), 1000)
    alike = batch_rows(np.cumsum([0.5] * 6), np.random.default_rng(1), 1000)
    assert (equal == alike).all()


def test_training_refuses_data_where_every_row_weighs_nothing() -> None:
    features, taste = _synthetic(n=12)
    rows = _triplets(taste, np.arange(12), 20, np.random.default_rng(0))
    data = TripletData(features=features, triplets=rows, weights=np.zeros(len(rows)))
    with pytest.raises(ValueError, match="weighs 0"):
        train(TrainConfig(steps=2, batch_size=4), data, SMALL_NET)
