"""BEATs end to end with a small random-weight checkpoint in the official format: vectors
for every snippet, a projection head trained on human triplets as a model version, the
BEATs baseline in the evaluation, and oddnet distilled from the head."""

import json

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from embeddings.extractors import beats
from embeddings.models import Embedding, Snippet
from embeddings.services import BEATS_SPACE
from tests.embeddings.test_beats import TINY_CFG
from training.heads import HeadConfig, train_head
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def beats_checkpoint(tmp_path, settings):
    torch.manual_seed(0)
    model = beats.Beats(beats.BeatsConfig.from_dict(TINY_CFG))
    path = tmp_path / "BEATs_tiny.pt"
    torch.save({"cfg": TINY_CFG, "model": model.state_dict()}, path)
    settings.ODDBALL_BEATS_CHECKPOINT = str(path)
    return path


def test_without_a_checkpoint_a_beats_head_is_refused_with_the_reason(settings):
    settings.ODDBALL_BEATS_CHECKPOINT = ""
    with pytest.raises(CommandError, match="BEATs is unavailable: no checkpoint configured"):
        call_command("train", "--model", "beats-head")


def test_a_beats_head_is_a_version_and_oddnet_learns_from_it(
    beats_checkpoint, generated_music, capsys
):
    call_command("import_audio", str(generated_music), "--snippet-seconds", "10")
    call_command("embed")
    snippets = Snippet.objects.count()
    assert last_json(capsys)["beats"] == snippets > 0
    assert Embedding.objects.filter(space=BEATS_SPACE).count() == snippets
    call_command("make_tasks", "--triplets", "120", "--seed", "1")
    call_command("simulate_crowd", "--listeners", "8", "--judgments", "300", "--seed", "2")

    call_command("train", "--model", "beats-head", "--steps", "50")
    head = ModelVersion.objects.get(name="beats-head")
    assert last_json(capsys)["model"] == head.space == "beats-head@1"
    assert Embedding.objects.filter(space=head.space).count() == snippets

    call_command("evaluate", "--name", "beats-head")
    report = last_json(capsys)
    assert report["model"] == "beats-head@1"
    assert report["beats_status"] == "available"
    assert 0 <= report["beats_mean"] <= 1

    call_command("train", "--teacher", "beats-head@1", "--steps", "40", "--pretrain-steps", "10")
    distilled = ModelVersion.objects.get(name="oddnet")
    assert distilled.config["teacher"] == "beats-head@1"
    teacher = distilled.metrics["teacher_agreement"]
    assert teacher["triplets"] == 1000
    assert 0 <= teacher["agreement"] <= 1


def test_a_head_never_draws_the_votes_quality_control_holds_out() -> None:
    vectors = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    config = HeadConfig(in_dim=8, steps=1, batch_size=4, margin=2.0)  # every row has a loss
    with pytest.raises(ValueError, match="weighs 0"):
        train_head(config, vectors, np.array([[0, 1, 2]]), np.zeros(1))
    # One step from the same start: a held-out second row changes nothing the head saw.
    _, alone = train_head(config, vectors, np.array([[0, 1, 2]]), np.ones(1))
    _, held = train_head(config, vectors, np.array([[0, 1, 2], [3, 4, 5]]), np.array([1.0, 0.0]))
    _, both = train_head(config, vectors, np.array([[0, 1, 2], [3, 4, 5]]), np.ones(2))
    assert held["final_loss"] == pytest.approx(alone["final_loss"])
    assert both["final_loss"] != pytest.approx(alone["final_loss"])
