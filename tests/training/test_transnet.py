"""The transition model end to end on generated music: trained by the train command or a
worker, registered with its files, clip vectors and index, evaluated on held-out tracks,
fed by people's ratings, and kept apart from the promoted embedding model."""

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from django.core.management import CommandError, call_command

from annotation.models import TransitionAssignment, TransitionRating, TransitionTask
from embeddings.models import Clip, ClipEmbedding, Rendering, Split, Track
from embeddings.selectors import clip_index_path, clip_spaces, clips_next
from embeddings.services import track_analysis_audio
from tests.factories import listener_make
from training import services, tasks
from training.models import Evaluation, ModelVersion, TrainingRun
from training.selectors import rated_transitions, served_version
from training.transition_net import frame_features
from training.transition_services import transition_model_load

pytestmark = pytest.mark.django_db

FEW_STEPS = "6"
EVALUATION_KEYS = {
    "space", "seams", "candidates", "chance", "model", "melstats", "model_mean_rank",
    "melstats_mean_rank", "cosine_true", "cosine_random", "seam", "held_out_tracks",
    "distractor_tracks", "pool", "spearman",
}  # fmt: skip


def last_json(capsys: pytest.CaptureFixture) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture
def music(generated_music: Path, capsys: pytest.CaptureFixture) -> Path:
    call_command("import_audio", str(generated_music), "--snippet-seconds", "10")
    capsys.readouterr()
    return generated_music


def rated_pair(x: Clip, y: Clip, ratings: list[int], split: str = Split.TRAIN) -> TransitionTask:
    """A rendered task from X into Y (seams as the renderer sets them, no audio file) with
    one accepted rating per value in `ratings`."""
    continues = x.track_id == y.track_id and y.start_s <= x.end_s < y.end_s
    rendering = Rendering.objects.create(
        clip_x=x, clip_y=y, style="hard_cut", version=1, x_seam_s=x.end_s,
        y_seam_s=x.end_s if continues else y.start_s, seam_s=8.0, duration_s=16.0, config={},
        gain_x_db=0.0, gain_y_db=0.0, lufs_x=-18.0, lufs_y=-18.0, tempo_x={}, tempo_y={},
        sample_rate=44_100, audio=f"renderings/{x.id}-{y.id}.ogg", sha256="0" * 64,
    )  # fmt: skip
    task = TransitionTask.objects.create(
        clip_x=x, clip_y=y, style="hard_cut", kind="true" if continues else "random",
        shares={"random": 1.0}, split=split, rendering=rendering,
    )  # fmt: skip
    for rating in ratings:
        listener = listener_make()
        assignment = TransitionAssignment.objects.create(
            task=task, listener=listener, expires_at=task.created_at
        )
        TransitionRating.objects.create(
            assignment=assignment, task=task, listener=listener, rating=rating,
            response_ms=9000, listen_ms=9000,
        )  # fmt: skip
    return task


def first_clips(split: str) -> list[Clip]:
    """The first clip of each of the split's tracks."""
    return [t.clips.order_by("position").first() for t in Track.objects.filter(split=split)]


def test_train_transitions_registers_a_version_with_clip_vectors_an_index_and_its_files(
    music, capsys, settings
):
    x, y, z = first_clips(Split.TEST)
    for pair, ratings in (((x, y), [5, 4]), ((y, z), [1]), ((z, x), [3, 3, 4])):
        rated_pair(*pair, ratings, split=Split.TEST)

    call_command("train", "--transitions", "--steps", FEW_STEPS, "--seed", "1")
    summary = last_json(capsys)
    version = ModelVersion.objects.get(name="transnet")
    assert summary["model"] == version.space == "transnet@1"
    assert summary["steps"] == 6
    for key in ("recall_at_1", "recall_at_10"):
        assert set(summary["evaluation"][key]) == {"model", "melstats", "chance"}
    assert summary["evaluation"]["spearman"]["n"] == 3

    # Trained on the train split only; the test split is what it is evaluated on.
    trained = set(version.trained_track_ids)
    assert trained == set(Track.objects.filter(split=Split.TRAIN).values_list("id", flat=True))
    evaluation = Evaluation.objects.get(model_version=version)
    assert evaluation.space == "transnet@1"
    assert set(evaluation.results) >= EVALUATION_KEYS
    assert evaluation.results["held_out_tracks"] == 3
    assert evaluation.results["distractor_tracks"] == 3
    assert evaluation.results["seams"] == 3  # one clip per 32 s track has a continuation
    assert 2 <= evaluation.results["candidates"] <= 100
    assert version.n_params > 0 and version.size_bytes == 4 * version.n_params

    # Every clip has an ending and an opening vector, and the openings an index.
    clips = Clip.objects.count()
    assert ClipEmbedding.objects.filter(space=version.space).count() == 2 * clips
    assert clip_index_path(version.space).is_file()
    assert clip_spaces()[0] == version.space
    ranked = clips_next(x.id, version.space, k=5)
    assert len(ranked) == 5 and ranked[0].score >= ranked[-1].score
    # Clips of a track imported later get their vectors from the beat's sweep.
    ClipEmbedding.objects.filter(space=version.space, clip__track=y.track).delete()
    tasks.sweep()
    assert ClipEmbedding.objects.filter(space=version.space).count() == 2 * clips

    # The ONNX files give the stored vectors from frames of the track's audio.
    assert set(version.artifacts) == {"onnx_ending", "onnx_opening", "safetensors", "json"}
    frames = frame_features(track_analysis_audio(x.track))
    edge = version.config["windows"]["ending"]
    end, start = round(x.end_s / 0.5), round(x.start_s / 0.5)
    for kind, part, inputs in (
        ("onnx_ending", "ending", frames[end - edge : end]),
        ("onnx_opening", "opening", frames[start : start + edge]),
    ):
        path = Path(settings.MEDIA_ROOT) / version.artifacts[kind]
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {part: inputs[None].astype(np.float32)})[0][0]
        stored = ClipEmbedding.objects.get(clip=x, part=part, space=version.space).as_array()
        np.testing.assert_allclose(got, stored, atol=1e-4)

    # It answers what plays next; the promoted embedding model stays as it was.
    assert served_version() is None
    with pytest.raises(ValueError, match="is a transition model"):
        services.model_promote(version.id)
    assert not ModelVersion.objects.filter(promoted=True).exists()


def test_evaluate_transitions_prints_every_metric_and_says_when_there_is_no_version(music, capsys):
    with pytest.raises(CommandError, match="no transnet version"):
        call_command("evaluate", "--transitions")
    call_command("train", "--transitions", "--steps", FEW_STEPS)
    capsys.readouterr()
    call_command("evaluate", "--transitions", "--model-version", "transnet@1")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("transnet@1: recall@1 ")
    results = json.loads(lines[-1])
    assert set(results) >= EVALUATION_KEYS
    assert set(results["seam"]) == {"true", "model", "melstats", "random"}
    for pick in results["seam"].values():
        assert set(pick) == {"spectral_convergence", "log_mel_mse"}
    assert sum(results["cosine_true"]["counts"]) == results["seams"]
    assert results["spearman"] == {"model": None, "melstats": None, "n": 0, "ratings": 0}
    assert Evaluation.objects.filter(space="transnet@1").count() == 2
    with pytest.raises(CommandError, match="no transnet version"):
        call_command("evaluate", "--transitions", "--model-version", "7")


def test_train_transitions_says_clearly_when_there_is_nothing_to_train_on():
    with pytest.raises(CommandError, match="no approved train-split track"):
        call_command("train", "--transitions")
    assert not TrainingRun.objects.exists()


def test_ratings_of_train_split_pairs_are_averaged_per_pair_at_the_rendered_seam(music):
    x, y, *_ = first_clips(Split.TRAIN)
    after_x = Clip.objects.get(track=x.track, position=1)
    rated_pair(x, y, [5, 4])
    rated_pair(x, after_x, [2, 1, 3])
    rated_pair(y, x, [3])
    rejected = TransitionRating.objects.filter(task__clip_x=y).get()
    rejected.status = "rejected"
    rejected.save()
    rated_pair(*first_clips(Split.TEST)[:2], [5], split=Split.TEST)

    pairs = {(p.clip_x_id, p.clip_y_id): p for p in rated_transitions(Split.TRAIN)}
    assert set(pairs) == {(x.id, y.id), (x.id, after_x.id)}
    assert pairs[(x.id, y.id)].mean == 4.5
    assert pairs[(x.id, y.id)].y_seam_s == y.start_s
    # The true continuation came in where X stopped, not where the next clip starts.
    assert pairs[(x.id, after_x.id)].y_seam_s == x.end_s == 25.0
    assert pairs[(x.id, after_x.id)].mean == 2.0

    call_command("train", "--transitions", "--steps", "2")
    metrics = ModelVersion.objects.get(name="transnet").metrics
    assert (metrics["rated_pairs"], metrics["rated_good"], metrics["rated_bad"]) == (2, 1, 1)
    assert metrics["rated_positives"] == 1
    # A bad rating of X's own continuation has nothing to be contrasted with.
    assert metrics["rated_negatives"] == 0


def test_a_transition_run_killed_midway_resumes_from_its_checkpoint(music, settings):
    settings.ODDBALL_TRAINING_STALE_S = 0  # its worker is gone at once

    class WorkerLost(BaseException):
        """Not an Exception: the run is not marked failed, as when a worker dies."""

    def die_at_step_3(record: dict) -> None:
        if record.get("phase") == "transitions" and record["step"] == 3:
            raise WorkerLost

    config = {"steps": 4, "batch_size": 32, "log_every": 1, "checkpoint_every": 2}
    run = services.training_run_create(config, model_name="transnet")
    with pytest.raises(WorkerLost):
        services.training_run_execute(run.id, die_at_step_3)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING
    assert run.progress["phase"] == "transitions" and run.progress["step"] == 3

    version = services.training_run_execute(run.id)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.DONE
    assert version.metrics["resumed_from"] == 2
    assert services.training_run_execute(run.id) == version  # delivered again: no new one
    assert transition_model_load(version).config.hidden == 128


def test_unknown_transition_options_are_refused_with_their_names():
    with pytest.raises(ValueError, match="unknown transition training options: colour"):
        services.training_run_create({"colour": "red"}, model_name="transnet")
