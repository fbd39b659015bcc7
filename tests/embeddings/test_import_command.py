import json
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from embeddings.models import Embedding, Snippet, Track

pytestmark = pytest.mark.django_db


def run_import(*paths: Path, capsys) -> tuple[dict, str]:
    call_command("import_audio", *map(str, paths))
    out, err = capsys.readouterr()
    return json.loads(out.strip().splitlines()[-1]), err


def test_a_broken_file_is_reported_and_the_rest_of_the_batch_imported(
    generated_music, tmp_path, capsys
):
    batch = tmp_path / "batch"
    batch.mkdir()
    good = sorted(generated_music.glob("*.flac"))[:2]
    for path in good:
        shutil.copy(path, batch / path.name)
    (batch / "notes.mp3").write_text("this is not audio at all")
    (batch / "empty.ogg").write_bytes(b"")
    truncated = batch / "truncated.flac"
    truncated.write_bytes(good[0].read_bytes()[:3000])

    summary, err = run_import(batch, capsys=capsys)

    assert summary["imported"] == 2
    assert summary["failed"] == 3
    assert "notes.mp3" in err and "empty.ogg" in err and "truncated.flac" in err
    assert Track.objects.count() == 2
    assert Snippet.objects.filter(track__file_name=good[0].name).count() >= 2


def test_importing_the_same_file_twice_creates_nothing_new(generated_music, capsys):
    path = sorted(generated_music.glob("*.flac"))[0]
    first, _ = run_import(path, capsys=capsys)
    counts = (Track.objects.count(), Snippet.objects.count(), Embedding.objects.count())
    second, _ = run_import(path, capsys=capsys)
    assert first["imported"] == 1
    assert second == {**second, "imported": 0, "exists": 1}
    assert (Track.objects.count(), Snippet.objects.count(), Embedding.objects.count()) == counts


def test_an_imported_track_keeps_its_metadata_and_playable_snippets(
    generated_music, settings, capsys
):
    path = sorted(generated_music.glob("*.flac"))[0]
    run_import(path, capsys=capsys)
    track = Track.objects.get()
    assert track.license == "CC0-1.0"
    assert track.sample_rate == 44_100 and track.channels == 2
    assert 31 < track.duration_s < 33
    assert len(track.checksum) == 64
    snippets = list(track.snippets.all())
    assert all(10 <= s.duration_s <= 20 for s in snippets)
    for snippet in snippets:
        assert (Path(settings.MEDIA_ROOT) / snippet.audio.name).stat().st_size > 1000
        assert Embedding.objects.filter(snippet=snippet, space="mel-stats@1").exists()


def test_options_override_the_manifest(generated_music, capsys):
    path = sorted(generated_music.glob("*.flac"))[0]
    call_command("import_audio", str(path), "--license", "CC-BY-4.0", "--attribution", "Someone")
    capsys.readouterr()
    track = Track.objects.get()
    assert (track.license, track.attribution) == ("CC-BY-4.0", "Someone")


def test_a_missing_path_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such file"):
        call_command("import_audio", "/nonexistent/music")


@pytest.mark.corpus
def test_real_corpus_files_import_with_their_manifest_licence(corpus, capsys):
    folder = corpus / "librosa_data"
    summary, err = run_import(folder, capsys=capsys)
    assert summary["imported"] >= 4
    # The trumpet loop is 5 s: shorter than any snippet, reported and skipped.
    assert "trumpet" in err and "too short" in err
    track = Track.objects.filter(file_name__startswith="Kevin_MacLeod_-_Vibe_Ace").get()
    assert "CC-BY-3.0" in track.license
    assert "Kevin MacLeod" in track.attribution
