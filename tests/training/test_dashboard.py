"""The dashboard for curators: start a retraining, follow it, see why it failed, promote."""

import pytest

from training.models import TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator(client, django_user_model):
    user = django_user_model.objects.create_user("cura", password="pw-long-enough", is_staff=True)
    client.force_login(user)
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


def test_only_staff_may_retrain_or_promote(client, django_user_model):
    user = django_user_model.objects.create_user("visitor", password="pw-long-enough")
    client.force_login(user)
    assert client.post("/dashboard/retrain/").status_code == 302
    assert client.post("/dashboard/promote/1/").status_code == 302
    assert TrainingRun.objects.count() == 0
