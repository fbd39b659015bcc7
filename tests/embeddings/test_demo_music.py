"""embeddings.demo_music: generated tracks that stand in for real music in the demo."""

import csv

import numpy as np
import pytest
import soundfile as sf

from embeddings import audio, demo_music
from embeddings.extractors import mel_stats
from embeddings.index import VectorIndex

CORPUS_COLUMNS = [
    "path", "source", "license", "duration_s", "sample_rate", "channels", "format",
    "genre_label", "notes",
]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, demo_music.generate(out, n_tracks=8, duration_s=32.0, seed=0)


def test_it_writes_44100_hz_stereo_flac_tracks_of_the_asked_length(demo):
    _, paths = demo
    assert len(paths) == 8
    for path in paths:
        info = audio.probe(path)
        assert (info.format, info.sample_rate, info.channels) == ("FLAC", 44_100, 2)
        assert info.duration_s == pytest.approx(32.0)


def test_its_manifest_has_the_corpus_columns_and_one_row_per_track(demo):
    out, paths = demo
    with open(out / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == CORPUS_COLUMNS
    assert [out / r["path"] for r in rows] == paths
    assert {r["source"] for r in rows} == {"generated:oddball"}
    assert {r["license"] for r in rows} == {"CC0-1.0"}
    assert {r["format"] for r in rows} == {"flac"}
    assert float(rows[0]["duration_s"]) == pytest.approx(32.0)


def test_the_same_seed_gives_the_same_audio_and_another_seed_other_audio(tmp_path):
    first = demo_music.generate(tmp_path / "a", n_tracks=2, duration_s=5.0, seed=3)
    again = demo_music.generate(tmp_path / "b", n_tracks=2, duration_s=5.0, seed=3)
    other = demo_music.generate(tmp_path / "c", n_tracks=2, duration_s=5.0, seed=4)
    for a, b, c in zip(first, again, other, strict=True):
        assert np.array_equal(sf.read(a)[0], sf.read(b)[0])
        assert not np.array_equal(sf.read(a)[0], sf.read(c)[0])


def test_the_tracks_are_audible_and_never_clip(demo):
    for path in demo[1]:
        wave, sr = audio.decode(path)
        assert np.max(np.abs(wave)) < 0.95
        assert audio.loudness_lufs(wave, sr) > -30.0


def test_two_snippets_of_one_track_are_nearer_each_other_than_any_other_track(demo):
    vectors, tracks = [], []
    for number, path in enumerate(demo[1]):
        wave, sr = audio.decode(path)
        mono = audio.resample(audio.to_mono(wave), sr, audio.ANALYSIS_RATE)
        plans = audio.plan_snippets(mono, audio.ANALYSIS_RATE, length_s=15.0)
        assert len(plans) == 2
        for plan in plans:
            start = round(plan.start_s * audio.ANALYSIS_RATE)
            piece = mono[start : start + round(plan.duration_s * audio.ANALYSIS_RATE)]
            vectors.append(mel_stats.extract(piece))
            tracks.append(number)
    tracks = np.array(tracks)
    built = VectorIndex.build(np.stack(vectors), np.arange(len(tracks)), standardise=True)
    nearest, _ = built.search(np.stack(vectors), k=2)
    assert np.array_equal(tracks[nearest[:, 1]], tracks)
