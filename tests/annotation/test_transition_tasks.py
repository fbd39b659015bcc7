"""Clips, renderings and transition tasks on generated music through the real importer."""

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command
from django.utils import timezone

from annotation.models import TransitionRating, TransitionTask
from annotation.services import AnnotationError
from annotation.transition_services import (
    Rating,
    transition_assignment_next,
    transition_assignment_skip,
    transition_rating_submit,
    transition_shares_parse,
    transition_task_render,
    transition_tasks_make,
)
from embeddings import audio
from embeddings.models import Clip, ClipEmbedding, Rendering, Track
from embeddings.selectors import clips_next
from embeddings.services import MEL_STATS_SPACE, rendering_make
from tests.factories import listener_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(generated_music: Path) -> list[Track]:
    call_command("import_audio", str(generated_music), stdout=StringIO())
    call_command("embed", stdout=StringIO())
    return list(Track.objects.all())


def test_import_keeps_the_original_a_whole_track_copy_and_cuts_overlapping_clips(
    imported, settings
):
    track = imported[0]
    media = Path(settings.MEDIA_ROOT)
    assert (media / track.original.name).read_bytes()[:4] == b"OggS" or track.original
    whole = audio.load_analysis(media / track.analysis.name)
    assert abs(len(whole) / audio.ANALYSIS_RATE - track.duration_s) < 0.1
    clips = list(track.clips.all())
    # 32 s tracks: one whole 25 s clip, then the 12 s left from 20 s (kept: at least 10 s).
    assert [(c.start_s, c.duration_s) for c in clips] == [(0.0, 25.0), (20.0, 12.0)]
    vectors = ClipEmbedding.objects.filter(clip__in=clips, space=MEL_STATS_SPACE)
    parts = sorted(vectors.values_list("part", flat=True))
    assert parts == ["ending", "ending", "opening", "opening"]


def test_a_hard_cut_of_the_true_continuation_is_the_original_audio(imported, settings):
    first, second = imported[0].clips.all()
    rendering, created = rendering_make(first.id, second.id, "hard_cut")
    assert created and not rendering.aligned
    assert rendering.x_seam_s == rendering.y_seam_s == 25.0
    again, created_again = rendering_make(first.id, second.id, "hard_cut")
    assert again.id == rendering.id and not created_again
    media = Path(settings.MEDIA_ROOT)
    rendered, sr = audio.decode(media / rendering.audio.name)
    original, sr_original = audio.decode(media / imported[0].original.name)
    assert sr == sr_original
    start = round((25.0 - rendering.seam_s) * sr)
    piece = original[:, start : start + rendered.shape[1]] * 10 ** (rendering.gain_x_db / 20)
    assert rendered.shape[1] == round(rendering.duration_s * sr)
    # The track ends 7 s after the seam; the renderer pads the last second with silence
    # (past the codec's few milliseconds of ringing).
    assert np.abs(rendered[:, piece.shape[1] + sr // 20 :]).max() < 1e-3
    # Vorbis twice over, so not bit-exact; but no seam: the residual stays small throughout.
    residual = np.abs(rendered[:, : piece.shape[1]] - piece).max(axis=0)
    assert np.percentile(residual, 99) < 0.05


def test_tasks_follow_the_shares_and_record_them(imported):
    shares = transition_shares_parse("model=2,random=1,true=1")
    assert shares == {"model": 0.5, "random": 0.25, "true": 0.25}
    tasks = transition_tasks_make(16, shares, proposer_space=MEL_STATS_SPACE, seed=1)
    kinds = [t.kind for t in tasks]
    assert kinds.count("model") == 8 and kinds.count("random") == 4
    assert 1 <= kinds.count("true") <= 4  # at most one true continuation per track here
    clips = Clip.objects.in_bulk([c for t in tasks for c in (t.clip_x_id, t.clip_y_id)])
    for task in tasks:
        x, y = clips[task.clip_x_id], clips[task.clip_y_id]
        assert task.shares == shares
        assert x.track.split == y.track.split == task.split
        if task.kind == "true":
            assert x.track_id == y.track_id and y.start_s <= x.end_s < y.end_s
        else:
            assert x.track_id != y.track_id
        if task.kind == "model":
            assert task.proposed_by == MEL_STATS_SPACE and task.score is not None
            best = clips_next(x.id, MEL_STATS_SPACE, k=30)
            assert y.id in [c.clip_id for c in best]


def test_without_a_proposer_no_model_task_is_faked(imported):
    tasks = transition_tasks_make(10, {"model": 1.0, "random": 0, "true": 0}, None, seed=2)
    assert tasks == []


def test_a_listener_rates_a_rendered_transition_once(imported):
    task = transition_tasks_make(1, {"model": 0, "random": 1, "true": 0}, None, seed=3)[0]
    listener = listener_make()
    assert transition_assignment_next(listener) is None  # not rendered yet: not served
    transition_task_render(task.id)
    assignment = transition_assignment_next(listener)
    assert assignment.task_id == task.id
    length = assignment.task.rendering.duration_s
    rating = Rating(assignment.id, 4, response_ms=9000, listen_ms=8000, broke_at_s=8.2)
    first = transition_rating_submit(listener, rating)
    second = transition_rating_submit(listener, rating)
    assert first.created and not second.created and first.rating.id == second.rating.id
    assert TransitionRating.objects.count() == 1
    assert TransitionTask.objects.get(id=task.id).votes == 1
    assert transition_assignment_next(listener) is None
    with pytest.raises(AnnotationError) as bad:
        transition_rating_submit(listener, Rating(assignment.id, 6, 1, 1))
    assert bad.value.status == 400
    other = listener_make()
    with pytest.raises(AnnotationError) as foreign:
        transition_rating_submit(other, rating)
    assert foreign.value.status == 403
    assert length > 8.2


def test_expired_skipped_and_out_of_range_answers_are_refused(imported):
    tasks = transition_tasks_make(3, {"model": 0, "random": 1, "true": 0}, None, seed=4)
    for task in tasks:
        transition_task_render(task.id)
    listener = listener_make()
    first = transition_assignment_next(listener)
    with pytest.raises(AnnotationError) as outside:
        transition_rating_submit(listener, Rating(first.id, 3, 1, 1, broke_at_s=999.0))
    assert outside.value.status == 400
    transition_assignment_skip(listener, first.id, "load-failed")
    with pytest.raises(AnnotationError) as skipped:
        transition_rating_submit(listener, Rating(first.id, 3, 1, 1))
    assert skipped.value.status == 409
    second = transition_assignment_next(listener)
    assert second.id != first.id
    second.expires_at = timezone.now() - timedelta(minutes=1)
    second.save()
    with pytest.raises(AnnotationError) as expired:
        transition_rating_submit(listener, Rating(second.id, 3, 1, 1))
    assert expired.value.status == 410
    late = Rating(second.id, 3, 1, 1, waited_ms=10 * 60 * 1000)
    assert transition_rating_submit(listener, late).created  # it waited in the outbox


def test_make_tasks_renders_transitions_in_every_style(imported):
    args = ["--triplets", "0", "--transitions", "12", "--seed", "5"]
    call_command("make_tasks", *args, stdout=StringIO())
    tasks = list(TransitionTask.objects.all())
    assert tasks and all(t.rendering_id for t in tasks)
    assert {t.style for t in tasks} == set(Rendering.Style.values)
    for task in tasks:
        r = task.rendering
        assert r.style == task.style and len(r.sha256) == 64
        assert (r.mask is not None) == (r.style == "overlay")
        if r.mask is not None:
            assert len(r.mask) == round(r.duration_s * r.mask_rate_hz)


def test_the_export_has_one_row_per_transition_rating_with_its_seam_and_mask(imported, tmp_path):
    tasks = transition_tasks_make(12, {"model": 0, "random": 1, "true": 0}, None, seed=6)
    overlay = next(t for t in tasks if t.style == "overlay")
    transition_task_render(overlay.id)
    listener = listener_make()
    assignment = transition_assignment_next(listener)
    transition_rating_submit(listener, Rating(assignment.id, 2, 9000, 8000, broke_at_s=7.5))
    call_command("export_dataset", "--out", str(tmp_path / "out"), stdout=StringIO())
    frame = pd.read_parquet(tmp_path / "out" / "transitions.parquet")
    assert len(frame) == 1
    row = frame.iloc[0]
    overlay.refresh_from_db()
    rendering = overlay.rendering
    assert row["style"] == "overlay" and row["rating"] == 2 and row["broke_at_s"] == 7.5
    assert row["listener"] == listener.pseudonym and row["task_kind"] == "random"
    assert json.loads(row["mask"]) == rendering.mask
    assert row["seam_s"] == rendering.seam_s and row["rendering_sha256"] == rendering.sha256
    assert "transition ratings" in (tmp_path / "out" / "README.md").read_text()


def test_signing_in_moves_a_devices_transition_ratings_but_never_doubles_a_vote(imported):
    from django.contrib.auth import get_user_model

    from annotation.services import listener_claim

    tasks = transition_tasks_make(2, {"model": 0, "random": 1, "true": 0}, None, seed=7)
    for task in tasks:
        transition_task_render(task.id)
    user = get_user_model().objects.create_user("ada", password="a-long-enough-passphrase")
    own, device = listener_make(), listener_make()
    own.user = user
    own.save()

    def rate(listener, task_id: int) -> int:
        TransitionTask.objects.exclude(id=task_id).update(active=False)
        assignment = transition_assignment_next(listener)
        TransitionTask.objects.update(active=True)
        transition_rating_submit(listener, Rating(assignment.id, 3, 9000, 8000))
        return assignment.id

    rate(own, tasks[0].id)
    shared = rate(device, tasks[0].id)
    moving = rate(device, tasks[1].id)
    assert listener_claim(device, user) == own
    ratings = TransitionRating.objects
    assert ratings.get(assignment_id=moving).listener == own
    assert ratings.get(assignment_id=shared).listener == device  # rated on both: stays
    assert ratings.count() == 3


def test_the_sweep_renders_tasks_whose_render_message_was_lost(imported):
    from annotation.tasks import sweep_renderings

    tasks = transition_tasks_make(3, {"model": 0, "random": 1, "true": 0}, None, seed=8)
    assert sweep_renderings() == []  # just made: their messages may still be on the way
    TransitionTask.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    assert sweep_renderings() == sorted(t.id for t in tasks)  # eager here: rendered at once
    assert not TransitionTask.objects.filter(rendering__isnull=True).exists()
    assert sweep_renderings() == []
