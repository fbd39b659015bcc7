"""Retraining as a background service: one run at a time, started by beat when enough new
judgments arrived or by a curator, watched on the dashboard, swept when its worker dies."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Assignment, Judgment
from tests.factories import listener_make, triplet_make
from training import services, tasks
from training.models import TrainingRun

pytestmark = pytest.mark.django_db


def judgments_make(n: int) -> None:
    triplet = triplet_make()
    for _ in range(n):
        listener = listener_make()
        assignment = Assignment.objects.create(
            triplet=triplet, listener=listener, order="abc", expires_at=timezone.now()
        )
        Judgment.objects.create(
            assignment=assignment,
            triplet=triplet,
            listener=listener,
            odd_slot=0,
            response_ms=5000,
            listen_ms=[4000, 4000, 4000],
        )


def test_only_one_training_run_is_queued_or_running_at_a_time():
    first = services.training_run_create(reason="first")
    with pytest.raises(services.TrainingBusy):
        services.training_run_create(reason="second")
    TrainingRun.objects.filter(id=first.id).update(status=TrainingRun.Status.DONE)
    assert services.training_run_create(reason="third").reason == "third"


def test_unknown_training_options_are_refused_with_their_names():
    with pytest.raises(ValueError, match="unknown training options: colour"):
        services.training_run_create({"colour": "red"})
    with pytest.raises(ValueError, match="unknown teacher"):
        services.training_run_create({"teacher": "nobody@9"})


def test_beat_starts_a_retraining_once_enough_new_judgments_have_arrived(
    settings, django_capture_on_commit_callbacks
):
    settings.ODDBALL_RETRAIN_EVERY = 3
    judgments_make(2)
    assert tasks.retrain_if_due() is None
    judgments_make(1)
    with django_capture_on_commit_callbacks() as enqueued:
        run_id = tasks.retrain_if_due()
    run = TrainingRun.objects.get(id=run_id)
    assert run.reason == "3 new accepted judgments since the last run"
    assert run.judgments_at_start == 3
    assert len(enqueued) == 1  # the train task, sent once the run row is committed
    # Counting starts again from this run.
    TrainingRun.objects.filter(id=run_id).update(status=TrainingRun.Status.DONE)
    assert tasks.retrain_if_due() is None


def test_a_run_whose_worker_went_quiet_is_found_by_the_sweep_and_a_live_one_is_not(settings):
    settings.ODDBALL_TRAINING_STALE_S = 60
    run = services.training_run_create()
    TrainingRun.objects.filter(id=run.id).update(
        status=TrainingRun.Status.RUNNING, heartbeat_at=timezone.now()
    )
    assert services.training_runs_stale(60) == []
    # Another delivery of a live run leaves it to its worker.
    assert services.training_run_execute(run.id) is None
    TrainingRun.objects.filter(id=run.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert [r.id for r in services.training_runs_stale(60)] == [run.id]


def test_a_lost_queue_message_is_found_by_the_sweep(settings):
    run = services.training_run_create()
    TrainingRun.objects.filter(id=run.id).update(created_at=timezone.now() - timedelta(minutes=10))
    assert [r.id for r in services.training_runs_stale(300)] == [run.id]


def test_a_failed_run_records_its_reason():
    run = services.training_run_create()
    with pytest.raises(ValueError, match="no accepted judgments"):
        services.training_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "no accepted judgments on training tracks yet" in run.error


def test_the_automatic_promotion_rule_needs_every_rival_beaten_or_tied():
    results = {"agreement": 0.7, "mel_stats": 0.6, "pretrained": 0.5, "previous_promoted": 0.7}
    assert services.promotion_earned(results)
    assert not services.promotion_earned({**results, "mel_stats": 0.71})
    assert services.promotion_earned({**results, "previous_promoted": None})
