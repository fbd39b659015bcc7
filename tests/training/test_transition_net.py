from pathlib import Path

import numpy as np
import pytest
import torch

from embeddings.extractors import mel_stats
from training.transition_metrics import (
    SeamSet,
    build_candidates,
    candidates_possible,
    evaluate_transitions,
    log_mel_mse,
    rankdata,
    recall_at,
    spearman,
    spectral_convergence,
)
from training.transition_net import (
    FEATURE_DIM,
    ClipConfig,
    RatedPairs,
    TransitionData,
    TransitionNet,
    TransitionNetConfig,
    TransitionTrainConfig,
    clips_at,
    embed_openings,
    held_out,
    load_transition_model,
    next_clips,
    opening_index,
    predict_next,
    track_clips,
    train_transitions,
)

SMALL_NET = TransitionNetConfig(hidden=16, layers=2, embed_dim=8)


def _toy_tracks(n: int = 12, windows: int = 60, seed: int = 0) -> list[np.ndarray]:
    """Frames on a per-track rotation: every frame, hence the continuation, follows from the
    frames before it."""
    rng = np.random.default_rng(seed)
    tracks = []
    for _ in range(n):
        phase = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0.1, 0.6)
        basis = rng.standard_normal((2, FEATURE_DIM))
        t = phase + speed * np.arange(windows)
        tracks.append((np.stack([np.cos(t), np.sin(t)], 1) @ basis).astype(np.float32))
    return tracks


def test_the_model_embeds_endings_and_openings_of_any_length_on_the_unit_sphere() -> None:
    model = TransitionNet(SMALL_NET).eval()
    for frames in (1, 5, 13):
        x = torch.randn(3, frames, FEATURE_DIM)
        predicted, opening = model(x), model.encode_opening(x)
        assert predicted.shape == opening.shape == (3, SMALL_NET.embed_dim)
        assert torch.allclose(predicted.norm(dim=1), torch.ones(3), atol=1e-5)
        assert torch.allclose(opening.norm(dim=1), torch.ones(3), atol=1e-5)


def test_clips_are_ordered_and_each_continuation_starts_where_its_clip_stops() -> None:
    wave = 0.1 * np.random.default_rng(0).standard_normal(70 * 16_000).astype(np.float32)
    clips = track_clips(wave, ClipConfig())
    # 25 s clips every 20 s of 0.5 s windows: 70 s holds clips at 0, 20 and 40 s.
    assert clips.frames.shape == (140, FEATURE_DIM)
    assert clips.starts.tolist() == [0, 40, 80]
    assert clips.ends.tolist() == [50, 90, 130]
    assert clips.has_next.tolist() == [True, True, True]
    assert clips.ending(1).shape == clips.continuation(1).shape == (8, FEATURE_DIM)
    np.testing.assert_array_equal(clips.ending(1), clips.frames[82:90])
    np.testing.assert_array_equal(clips.continuation(1), clips.frames[90:98])
    assert clips.ending_stats.shape == clips.next_stats.shape == (3, mel_stats.DIM)
    short = track_clips(wave[: 20 * 16_000], ClipConfig(mel_stats=False))
    assert len(short.starts) == 0


def test_the_loss_falls_when_the_continuation_follows_from_the_ending() -> None:
    data = TransitionData(_toy_tracks(), ending_windows=6, opening_windows=4)
    config = TransitionTrainConfig(steps=40, batch_size=32, lr=3e-3, log_every=1)
    result = train_transitions(config, data, SMALL_NET)
    losses = [r["loss"] for r in result.history]
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert result.step == 40


def test_a_checkpointed_run_resumes_and_ends_where_an_unbroken_run_ends(tmp_path: Path) -> None:
    data = TransitionData(_toy_tracks(n=6, windows=30), ending_windows=4, opening_windows=3)

    def config(path: Path | None) -> TransitionTrainConfig:
        return TransitionTrainConfig(
            steps=6, batch_size=8, log_every=1,
            checkpoint_path=str(path) if path else None, checkpoint_every=2,
        )  # fmt: skip

    unbroken = train_transitions(config(None), data, SMALL_NET)

    class Killed(Exception):
        pass

    def kill_at_step_3(record: dict) -> None:
        if record["step"] == 3:
            raise Killed

    path = tmp_path / "transitions.pt"
    with pytest.raises(Killed):
        train_transitions(config(path), data, SMALL_NET, progress=kill_at_step_3)
    assert torch.load(path, weights_only=False)["step"] == 2
    steps_seen: list[int] = []
    resumed = train_transitions(
        config(path), data, SMALL_NET, progress=lambda r: steps_seen.append(r["step"])
    )
    assert steps_seen == [3, 4, 5, 6]
    for name, value in unbroken.model.state_dict().items():
        assert torch.allclose(value.float(), resumed.model.state_dict()[name].float()), name
    saved = torch.load(path, weights_only=False)
    assert {"model", "optimizer", "config", "net_config", "step", "metrics"} <= saved.keys()
    reloaded = load_transition_model(str(path))
    x = torch.randn(2, 4, FEATURE_DIM)
    assert torch.allclose(reloaded(x), resumed.model(x))


def _seam_set() -> SeamSet:
    """Track 0 has 40 clips of 4 windows every 5; tracks 1-3 have 40 openings each; track 3
    is a version of track 0's piece. Seam i of track 0 is clip i, truth = clip i + 1."""
    spans = np.array([[5 * i, 5 * i + 4] for i in range(40)])
    pool_track = np.repeat([0, 1, 2, 3], 40)
    return SeamSet(
        seam_track=np.zeros(39, dtype=np.int64),
        seam_span=np.array([[5 * i, 5 * i + 4] for i in range(39)]),
        seam_truth=np.arange(1, 40),
        pool_track=pool_track,
        pool_span=np.tile(spans, (4, 1)),
        track_group={0: 0, 1: 1, 2: 2, 3: 0},
    )


def test_candidates_hold_the_truth_and_same_track_distractors_clear_of_the_context() -> None:
    seams = _seam_set()
    candidates = build_candidates(seams, np.random.default_rng(0))
    assert candidates.shape == (39, 100)
    np.testing.assert_array_equal(candidates[:, 0], seams.seam_truth)
    for q, row in enumerate(candidates):
        assert len(set(row.tolist())) == 100
        tracks = seams.pool_track[row[1:]]
        assert (tracks == 0).sum() == 20
        assert not (tracks == 3).any()  # another version of the same piece
        context_start, truth_end = seams.seam_span[q, 0], seams.pool_span[row[0], 1]
        same = row[1:][tracks == 0]
        clear = (seams.pool_span[same, 1] <= context_start) | (
            seams.pool_span[same, 0] >= truth_end
        )
        assert clear.all()
    with pytest.raises(ValueError, match="distractors"):
        build_candidates(seams, np.random.default_rng(0), n=200)


def test_recall_counts_the_truth_in_the_top_k_and_ties_against_it() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # rank 1
            [0.5, 0.6, 0.1, 0.2],  # rank 2
            [0.1, 0.2, 0.3, 0.4],  # rank 4
            [0.5, 0.5, 0.5, 0.5],  # a tie: rank 4
        ]
    )
    assert recall_at(scores, ks=(1, 2, 4)) == {
        "recall_at_1": 0.25,
        "recall_at_2": 0.5,
        "recall_at_4": 1.0,
    }


def test_a_perfect_prediction_finds_every_continuation_and_the_seam_metrics_follow() -> None:
    seams = _seam_set()
    candidates = build_candidates(seams, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    pool_vectors = rng.standard_normal((160, 8))
    stats = rng.standard_normal((160, 5))
    edges = rng.standard_normal((160, 4))
    summary = evaluate_transitions(
        candidates, pool_vectors[seams.seam_truth], pool_vectors, stats[seams.seam_truth],
        stats, edges[seams.seam_truth], edges, rng,
    )  # fmt: skip
    assert summary["model"] == {"recall_at_1": 1.0, "recall_at_10": 1.0}
    assert summary["melstats"] == {"recall_at_1": 1.0, "recall_at_10": 1.0}
    assert summary["seam"]["true"] == {"spectral_convergence": 0.0, "log_mel_mse": 0.0}
    assert summary["seam"]["random"]["log_mel_mse"] > 0
    assert summary["cosine_true"]["quantiles"]["0.5"] == pytest.approx(1.0)
    assert sum(summary["cosine_random"]["counts"]) == 39


def test_spectral_convergence_and_log_mel_mse_on_known_spectra() -> None:
    reference = np.array([[3.0, 0.0], [0.0, 4.0]])
    assert spectral_convergence(reference, reference) == 0.0
    assert spectral_convergence(reference, 2 * reference) == pytest.approx(1.0)
    assert spectral_convergence(reference, np.zeros((2, 2))) == pytest.approx(1.0)
    assert spectral_convergence(reference, np.array([[3.0, 0.0], [0.0, 0.0]])) == 0.8
    log_mel = np.log(reference + 1.0)
    assert log_mel_mse(log_mel, log_mel + 0.5) == pytest.approx(0.25)
    assert log_mel_mse(np.zeros(4), np.array([1.0, -1.0, 2.0, 0.0])) == pytest.approx(1.5)


def test_spearman_averages_tied_ranks_like_a_hand_computation() -> None:
    np.testing.assert_array_equal(rankdata(np.array([3, 1, 3, 2])), [3.5, 1.0, 3.5, 2.0])
    # Ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5).
    assert spearman(np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])) == pytest.approx(
        4.5 / np.sqrt(22.5)
    )
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([30.0, 20.0, 10.0])) == -1.0
    assert np.isnan(spearman(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0])))


def test_the_index_returns_the_closest_openings_first() -> None:
    vectors = np.eye(4, dtype=np.float32)
    index = opening_index(vectors, np.array([10, 11, 12, 13]))
    query = np.array([0.1, 0.9, 0.4, 0.0], dtype=np.float32)
    ids, scores = next_clips(index, query / np.linalg.norm(query), k=2)
    assert ids.tolist() == [[11, 12]]
    assert scores[0, 0] > scores[0, 1]


def test_held_out_seams_point_at_their_own_continuations() -> None:
    wave = 0.1 * np.random.default_rng(0).standard_normal(70 * 16_000).astype(np.float32)
    clips = track_clips(wave, ClipConfig())
    evaluation = held_out([clips, clips], [5, 6])
    assert len(evaluation.seams.seam_track) == 6
    truth = evaluation.seams.seam_truth
    np.testing.assert_array_equal(evaluation.pool[truth[1]], clips.continuation(1))
    np.testing.assert_array_equal(evaluation.seams.pool_span[truth[1]], [90, 98])
    np.testing.assert_array_equal(evaluation.ending_edge[1], clips.frames[89, :64])


def _pair_score(model: TransitionNet, tracks: list[np.ndarray], pair: tuple, data) -> float:
    """Cosine of the model's prediction after the ending and the rated opening."""
    (x, seam), (y, start) = pair
    ending = tracks[x][seam - data.ending_windows : seam][None]
    opening = tracks[y][start : start + data.opening_windows][None]
    return float(np.sum(predict_next(model, ending) * embed_openings(model, opening)))


def _rated_run(tracks: list[np.ndarray], rated: RatedPairs | None) -> TransitionNet:
    data = TransitionData(tracks, ending_windows=6, opening_windows=4, rated=rated)
    config = TransitionTrainConfig(steps=60, batch_size=32, lr=3e-3, seed=3, rated_per_step=4)
    return train_transitions(config, data, SMALL_NET).model


def test_a_pair_people_rated_well_scores_higher_than_when_trained_without_it() -> None:
    tracks = _toy_tracks()
    pair = ((0, 30), (7, 12))  # an ending of track 0 into an opening of unrelated track 7
    rated = RatedPairs(np.array([pair[0]]), np.array([pair[1]]), np.array([True]))
    data = TransitionData(tracks, ending_windows=6, opening_windows=4)
    without = _pair_score(_rated_run(tracks, None), tracks, pair, data)
    with_rating = _pair_score(_rated_run(tracks, rated), tracks, pair, data)
    assert with_rating > without + 0.3


def test_a_pair_people_rated_badly_falls_behind_the_true_continuation_by_the_margin() -> None:
    tracks = _toy_tracks()
    data = TransitionData(tracks, ending_windows=6, opening_windows=4)
    baseline = _rated_run(tracks, None)
    # The other track's opening this model finds the best follow-up to the ending: the
    # strongest candidate people could call jarring.
    candidates = [((0, 30), (t, s)) for t in range(1, len(tracks)) for s in range(0, 56, 4)]
    pair = max(candidates, key=lambda p: _pair_score(baseline, tracks, p, data))
    true = ((0, 30), (0, 30))
    rated = RatedPairs(np.array([pair[0]]), np.array([pair[1]]), np.array([False]))
    model = _rated_run(tracks, rated)
    gap_before = _pair_score(baseline, tracks, true, data) - _pair_score(
        baseline, tracks, pair, data
    )
    gap_after = _pair_score(model, tracks, true, data) - _pair_score(model, tracks, pair, data)
    assert gap_after > max(gap_before, TransitionTrainConfig.margin) + 0.05
    assert max(candidates, key=lambda p: _pair_score(model, tracks, p, data)) != pair


def test_rated_pairs_that_cannot_be_contrasted_are_left_out_and_counted() -> None:
    tracks = _toy_tracks(n=3, windows=30)
    rated = RatedPairs(
        ending=np.array([[0, 10], [0, 30], [0, 10], [1, 12]]),
        opening=np.array([[1, 5], [1, 5], [0, 12], [2, 27]]),
        # good; bad at the track's end (no continuation to contrast with); bad and its own
        # continuation; good but the opening runs past the track's end
        good=np.array([True, False, False, True]),
    )
    data = TransitionData(tracks, ending_windows=6, opening_windows=4, rated=rated)
    config = TransitionTrainConfig(steps=2, batch_size=8)
    metrics = train_transitions(config, data, SMALL_NET).metrics
    assert metrics["rated_positives"] == 1
    assert metrics["rated_negatives"] == 0


def test_clips_at_given_seconds_sit_on_the_window_grid_and_a_short_last_clip_has_no_seam():
    wave = 0.1 * np.random.default_rng(0).standard_normal(47 * 16_000).astype(np.float32)
    # A catalogue's clips: 0-25 s, and the rest of a 47 s track from 20 s (27 s, kept).
    clips = clips_at(wave, np.array([[0.0, 25.0], [20.0, 46.99]]), ClipConfig())
    assert clips.starts.tolist() == [0, 40]
    assert clips.ends.tolist() == [50, 93]  # 46.99 s rounds down to whole windows
    assert clips.has_next.tolist() == [True, False]
    evaluation = held_out([clips], [1])
    assert len(evaluation.seams.seam_track) == 1
    assert len(evaluation.pool) == 3  # two openings and the one continuation


def test_held_out_scores_only_the_seam_tracks_and_draws_distractors_from_all():
    wave = 0.1 * np.random.default_rng(0).standard_normal(70 * 16_000).astype(np.float32)
    clips = track_clips(wave, ClipConfig())
    evaluation = held_out([clips, clips, clips], [5, 6, 7], seam_tracks={6})
    assert set(evaluation.seams.seam_track.tolist()) == {6}
    assert set(evaluation.seams.pool_track.tolist()) == {5, 6, 7}
    with pytest.raises(ValueError, match="no held-out clip"):
        held_out([clips], [5], seam_tracks={9})


def test_the_candidate_count_possible_is_what_build_candidates_can_fill() -> None:
    seams = _seam_set()
    possible = candidates_possible(seams)
    # 20 same-track distractors at most, and every opening of tracks 1 and 2.
    assert possible == 1 + 20 + 80
    assert build_candidates(seams, np.random.default_rng(0), n=possible).shape == (39, possible)
    with pytest.raises(ValueError, match="distractors"):
        build_candidates(seams, np.random.default_rng(0), n=possible + 1)
