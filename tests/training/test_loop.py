"""The whole loop in-process on generated music: import, embed, tasks, crowd, train,
evaluate, export (the integration test does the same on PostgreSQL, Redis and a worker)."""

import json

import pandas as pd
import pytest
from django.core.management import call_command

from annotation.models import Judgment, Triplet
from annotation.selectors import counted_judgments
from embeddings.models import Embedding, Snippet
from embeddings.services import index_path
from tests.factories import user_make
from training.models import Evaluation, ModelVersion
from training.selectors import served_version
from training.tasks import promote_model

pytestmark = pytest.mark.django_db


def last_json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_the_loop_imports_collects_trains_evaluates_and_exports(
    generated_music, tmp_path, capsys, client, settings
):
    call_command("import_audio", str(generated_music), "--snippet-seconds", "10")
    call_command("embed")
    call_command("make_tasks", "--triplets", "120", "--gold-share", "0.1", "--seed", "1")
    capsys.readouterr()

    call_command("simulate_crowd", "--listeners", "8", "--judgments", "300", "--seed", "2")
    crowd = last_json(capsys)
    assert crowd["judgments"] == Judgment.objects.count() == 300
    assert crowd["errors"] == 0
    assert 0.7 <= crowd["honest_taste_agreement"] <= 0.9

    call_command("train", "--steps", "40", "--pretrain-steps", "20")
    trained = last_json(capsys)
    version = ModelVersion.objects.get(name="oddnet")
    assert trained["model"] == version.space == "oddnet@1"
    assert version.config["pretrained"] == "oddnet-pretrained@1"
    assert version.size_bytes <= 1_000_000
    test_tracks = set(
        Triplet.objects.filter(split="test").values_list("snippet_a__track_id", flat=True)
    )
    assert not test_tracks & set(version.trained_track_ids)

    call_command("evaluate")
    summary = last_json(capsys)
    for key in (
        "model",
        "agreement",
        "ci_low",
        "ci_high",
        "random",
        "mel_stats",
        "ceiling",
        "n_triplets",
        "pretrained",
        "beats_mean",
        "previous_promoted",
        "retrieval",
    ):
        assert key in summary
    assert summary["pretrained"] is not None
    assert summary["beats_status"].startswith("no checkpoint configured")
    assert 0 <= summary["retrieval"]["model"]["recall_at_k"] <= 1
    assert summary["ci_low"] <= summary["agreement"] <= summary["ci_high"]
    assert summary["n_triplets"] > 0
    assert Evaluation.objects.filter(model_version=version).exists()

    # Every version can be taken away by researchers: ONNX, safetensors and the front end's
    # description.
    assert set(version.artifacts) == {"onnx", "onnx_waveform", "safetensors", "json"}
    client.force_login(user_make("researcher"))
    page = client.get("/models/").content.decode()
    assert f"/models/{version.space}/onnx/" in page
    download = client.get(f"/models/{version.space}/safetensors/")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="oddnet-1')
    assert client.get(f"/models/{version.space}/pickle/").status_code == 404

    # Promotion completes the version's vectors, rebuilds its index, then swaps it in.
    pretrained = ModelVersion.objects.get(name="oddnet-pretrained")
    promote_model.delay(pretrained.id)
    assert served_version() == pretrained
    Embedding.objects.filter(space=version.space, snippet_id__in=[1, 2, 3]).delete()
    promote_model.delay(version.id)
    assert served_version() == version
    assert Embedding.objects.filter(space=version.space).count() == Snippet.objects.count()
    assert index_path(version.space).is_file()
    pretrained.refresh_from_db()
    assert not pretrained.promoted

    call_command("export_dataset", "--out", str(tmp_path / "export"))
    votes = pd.read_parquet(tmp_path / "export" / "judgments.parquet")
    csv = pd.read_csv(tmp_path / "export" / "judgments.csv")
    # Repeats (consistency checks) are answered but exported as no vote.
    counted = set(counted_judgments().values_list("id", flat=True))
    assert len(votes) == len(csv) == len(counted)
    assert set(votes["judgment_id"]) == counted
    datasheet = (tmp_path / "export" / "README.md").read_text()
    assert "CC0-1.0" in datasheet and "listen_ms_a" in datasheet

    # The baseline without quality control: trained on the same answers with equal weights,
    # never promoted, reported beside the reliability-weighted version.
    call_command("train", "--steps", "20", "--pretrain-steps", "20", "--equal-weights")
    baseline = last_json(capsys)
    assert baseline["model"] == "oddnet@2" and not baseline["promoted"]
    call_command("evaluate", "--model-version", "1")
    report = last_json(capsys)
    assert report["weighting"] == "reliability"
    assert report["honest_majority_agreement"] == report["agreement"]
    assert report["equal_weights_space"] == "oddnet@2"
    assert 0 <= report["equal_weights_honest_majority_agreement"] <= 1
    assert report["equal_weights_n"] == report["honest_majority_n"] == report["n_triplets"]
    difference = report["reliability_minus_equal"]
    assert difference == pytest.approx(
        report["reliability_weights_honest_majority_agreement"]
        - report["equal_weights_honest_majority_agreement"]
    )
    low, high = report["reliability_minus_equal_ci"]
    assert low <= difference <= high
    # Only triplets on which the two choose differently can move the difference, by 1 each.
    assert abs(difference) * report["equal_weights_n"] <= report["weightings_differ_n"] + 1e-9
    assert report["weightings_differ_n"] <= report["equal_weights_n"]
