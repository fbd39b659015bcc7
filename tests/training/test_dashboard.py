"""The dashboard for curators: start a retraining, follow it, see why it failed, promote,
and see how well each transition model finds what plays next."""

import numpy as np
import pytest
from django.utils.html import escape

from tests.factories import track_make, user_make
from training.models import Evaluation, ModelVersion, TrainingRun
from training.transition_metrics import evaluate_transitions

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator(client):
    client.force_login(user_make("curator", username="cura"))
    return client


def test_a_curator_starts_a_retraining_and_a_second_press_does_not_start_another(
    curator, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as enqueued:
        response = curator.post("/dashboard/retrain/", follow=True)
    assert "Training run" in response.content.decode()
    assert len(enqueued) == 1
    run = TrainingRun.objects.get()
    assert run.reason == "started by cura"
    again = curator.post("/dashboard/retrain/", follow=True)
    assert "already queued or running" in again.content.decode()
    assert TrainingRun.objects.count() == 1


def test_the_dashboard_shows_a_running_jobs_progress_and_refreshes(curator):
    TrainingRun.objects.create(
        status="running",
        progress={"phase": "fine-tune", "step": 120, "steps": 300, "epoch": 2.5, "loss": 0.0312},
    )
    html = curator.get("/dashboard/").content.decode()
    assert "fine-tune, step 120 of 300, epoch 2.5, loss 0.031" in html
    assert 'http-equiv="refresh"' in html
    assert "Start retraining now" not in html


def test_the_dashboard_shows_why_a_run_failed(curator):
    TrainingRun.objects.create(status="failed", error="ValueError: no accepted judgments yet")
    html = curator.get("/dashboard/").content.decode()
    assert "ValueError: no accepted judgments yet" in html
    assert "Start retraining now" in html
    assert "BEATs: unavailable (no checkpoint configured" in html


@pytest.mark.parametrize("role", ["", "researcher"])
def test_only_curators_may_retrain_or_promote(client, role):
    assert client.post("/dashboard/retrain/").status_code == 302  # to the login page
    client.force_login(user_make(role, is_staff=True))  # the staff flag alone is no role
    assert client.post("/dashboard/retrain/").status_code == 403
    assert client.post("/dashboard/promote/1/").status_code == 403
    assert client.post("/dashboard/train-transitions/").status_code == 403
    assert TrainingRun.objects.count() == 0


def transition_version_make(spearman_n: int = 12) -> ModelVersion:
    """A transnet version with an evaluation shaped like `transition_evaluate`'s, from
    random scores: 30 seams among 50 candidates."""
    rng = np.random.default_rng(0)
    candidates = np.stack([rng.permutation(60)[:50] for _ in range(30)])
    results = evaluate_transitions(
        candidates, rng.normal(size=(30, 8)), rng.normal(size=(60, 8)),
        rng.normal(size=(30, 5)), rng.normal(size=(60, 5)), rng.normal(size=(30, 4)),
        rng.normal(size=(60, 4)), rng,
    )  # fmt: skip
    results |= {
        "space": "transnet@2", "held_out_tracks": 4, "distractor_tracks": 5, "pool": 60,
        "spearman": {"model": 0.4123, "melstats": 0.1877, "n": spearman_n, "ratings": 40},
    }  # fmt: skip
    version = ModelVersion.objects.create(
        name="transnet", version=2, checkpoint="models/transnet-2.pt", n_params=10, size_bytes=40
    )
    Evaluation.objects.create(space=version.space, model_version=version, results=results)
    return version


def test_the_dashboard_shows_each_transition_version_beside_mel_stats_and_chance(curator):
    version = transition_version_make()
    html = curator.get("/dashboard/").content.decode()
    results = Evaluation.objects.get(model_version=version).results
    assert '<h2 id="transitions">Transitions</h2>' in html
    assert "Among 50 candidates" in html
    for row in ("model", "melstats"):
        for k in ("recall_at_1", "recall_at_10"):
            assert f"<td>{results[row][k]:.3f}</td>" in html
    assert "<td>0.020</td><td>0.200</td>" in html  # chance among 50
    assert "30 held-out seams of 4 test-split tracks" in html
    assert "people's mean rating: 0.412 (mel-stats 0.188) on 12 rated pairs." in html
    for pick in ("model's pick", "mel-stats' pick", "true continuation", "random candidate"):
        assert f'<th scope="row">{escape(pick)}</th>' in html
    assert html.count("<polyline points=") == 2
    # Its evaluation is not an agreement with people: the agreement table leaves it out.
    assert "No model trained yet." in html
    assert 'action="/dashboard/promote/' not in html


def test_too_few_rated_pairs_show_no_correlation(curator):
    transition_version_make(spearman_n=2)
    ModelVersion.objects.filter(name="transnet").update(version=3)
    Evaluation.objects.update(
        results={**Evaluation.objects.get().results, "spearman": {"model": None,
                 "melstats": None, "n": 2, "ratings": 3}}
    )  # fmt: skip
    html = curator.get("/dashboard/").content.decode()
    assert "n/a (mel-stats n/a) on 2 rated pairs, too few for a correlation" in html


def test_a_curator_starts_the_transition_model_training(
    curator, django_capture_on_commit_callbacks
):
    refused = curator.post("/dashboard/train-transitions/", follow=True).content.decode()
    assert "no approved train-split track has a whole-track copy" in refused
    assert not TrainingRun.objects.exists()
    track_make(analysis="tracks/ab/abcd/analysis.flac")
    with django_capture_on_commit_callbacks() as enqueued:
        response = curator.post("/dashboard/train-transitions/", follow=True)
    assert "(transition model) queued" in response.content.decode()
    assert len(enqueued) == 1
    run = TrainingRun.objects.get()
    assert (run.model_name, run.reason) == ("transnet", "transitions, started by cura")


def test_a_transition_version_cannot_be_promoted_from_the_dashboard(
    curator, django_capture_on_commit_callbacks
):
    version = transition_version_make()
    with django_capture_on_commit_callbacks() as enqueued:
        response = curator.post(f"/dashboard/promote/{version.id}/", follow=True)
    assert "it is not promoted" in response.content.decode()
    assert not enqueued
