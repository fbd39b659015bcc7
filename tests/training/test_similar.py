"""Similar tracks on real music, the acceptance test of issue 7: a 30 s clip cut from the
middle of a corpus track, uploaded, finds that track first, in mel-stats and in a promoted
oddnet; and the aggregation of snippet neighbours into tracks."""

from dataclasses import asdict
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from embeddings import index
from embeddings.models import Snippet, Track
from embeddings.services import MEL_STATS_SPACE
from tests.factories import model_version_make
from training.nets import OddNetConfig
from training.pretrain import PretrainConfig, TrackChunks, pretrain
from training.selectors import snippet_log_mels
from training.services import model_promote

# Short recordings of five folders, 44-92 s each (12 minutes in all), so the import takes
# seconds; three folders bring several tracks of one style, which makes the test honest.
CORPUS_FILES = (
    "wesnoth/sad.ogg",
    "wesnoth/transience.ogg",
    "wesnoth/main_menu.ogg",
    "wesnoth/battle-epic.ogg",
    "wesnoth/revelation.ogg",
    "librosa_data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).hq.ogg",
    "librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg",
    "supertuxkart/celtic.ogg",
    "supertuxkart/cocoa_river.ogg",
    "supertuxkart/theGreatFair.ogg",
    "supertuxkart/West.ogg",
    "pushover/greek.ogg",
)
QUERIED = (  # one file per query, in the formats people upload
    ("wesnoth/revelation.ogg", "FLAC"),
    ("wesnoth/sad.ogg", "OGG"),
    ("librosa_data/Kevin_MacLeod_-_Vibe_Ace.hq.ogg", "MP3"),
    ("supertuxkart/cocoa_river.ogg", "OGG"),
    ("pushover/greek.ogg", "FLAC"),
)
CLIP_S = 30.0  # s
# Same-track InfoNCE on a small net and short crops: enough for the clip test in seconds.
PRETRAIN = PretrainConfig(steps=30, batch_size=12, crop_seconds=3.0)
SMALL_NET = OddNetConfig(channels=8, attention_dim=16)


def middle_clip(path: Path, folder: Path, file_format: str) -> Path:
    """CLIP_S seconds from the middle of `path`, written with soundfile as `file_format`."""
    info = sf.info(str(path))
    start = round((info.duration / 2 - CLIP_S / 2) * info.samplerate)
    wave, rate = sf.read(
        str(path), start=start, frames=round(CLIP_S * info.samplerate), dtype="float32"
    )
    out = folder / f"{path.stem}-clip.{file_format.lower()}"
    sf.write(str(out), wave, rate, format=file_format)
    return out


def first_tracks(client: object, clips: dict[int, Path]) -> tuple[set[str], dict[int, int]]:
    """Upload each clip; (spaces that answered, track id -> the first result's track id)."""
    spaces, firsts = set(), {}
    for track_id, clip in clips.items():
        response = client.post(
            "/api/v1/similar/", {"audio": SimpleUploadedFile(clip.name, clip.read_bytes())}
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        spaces.add(body["space"])
        assert body["query"]["windows"] == 3  # 0, 7.5 and 15 s
        firsts[track_id] = body["results"][0]["track"]["id"]
    return spaces, firsts


def oddnet_pretrained_and_promoted() -> str:
    """A small oddnet pretrained on the imported snippets (two chunks of one track are a
    pair), registered and promoted as the training service would: promotion embeds every
    snippet and builds the index."""
    log_mels = snippet_log_mels()
    ids = sorted(log_mels)
    track_of = dict(Snippet.objects.values_list("id", "track_id"))
    chunks = TrackChunks(
        features=np.stack([log_mels[s] for s in ids]),
        track_of=np.array([track_of[s] for s in ids]),
    )
    result = pretrain(PRETRAIN, chunks, SMALL_NET)
    version = model_version_make("oddnet-pretrained")
    path = Path(settings.MEDIA_ROOT) / version.checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": result.model.state_dict(), "net_config": asdict(result.model.config)}
    torch.save(state, path)
    model_promote(version.id)
    return version.space


@pytest.mark.django_db
@pytest.mark.corpus
def test_a_30_s_clip_from_the_middle_of_a_corpus_track_finds_that_track_first(
    corpus, client, tmp_path
):
    call_command("import_audio", *(str(corpus / f) for f in CORPUS_FILES), stdout=StringIO())
    call_command("embed", stdout=StringIO())
    assert Track.objects.count() == len(CORPUS_FILES)
    by_name = {t.file_name: t.id for t in Track.objects.all()}
    clips = {
        by_name[Path(name).name]: middle_clip(corpus / name, tmp_path, file_format)
        for name, file_format in QUERIED
    }

    spaces, firsts = first_tracks(client, clips)
    assert spaces == {MEL_STATS_SPACE}
    assert firsts == {t: t for t in clips}

    promoted = oddnet_pretrained_and_promoted()
    spaces, firsts = first_tracks(client, clips)
    assert spaces == {promoted}
    assert firsts == {t: t for t in clips}


# Aggregating snippet neighbours into tracks --------------------------------------------------


def test_a_track_scores_the_mean_over_windows_of_its_best_snippet():
    track_of = {1: 10, 2: 10, 3: 20, 4: 30}
    ids = np.array([[1, 3, 2], [3, 2, 4]])
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.6, 0.2]])
    ranked = index.track_ranking(scores, ids, track_of)
    # Track 10: best 0.9 then 0.6 -> 0.75; track 20: 0.8, 0.7 -> 0.75 (tie, lower id
    # first); track 30 is missing from window 1 and gets its lowest score there, 0.1.
    assert [(t, round(s, 3), best) for t, s, best in ranked] == [
        (10, 0.75, 1),
        (20, 0.75, 3),
        (30, 0.15, 4),
    ]


def test_snippets_left_out_of_the_track_map_never_rank_and_padding_is_skipped():
    ranked = index.track_ranking(np.array([[0.9, 0.5, 0.0]]), np.array([[7, 8, -1]]), {8: 2})
    assert ranked == [(2, 0.5, 8)]


def test_the_map_layouts_are_unit_square_and_t_sne_needs_five_points():
    rng = np.random.default_rng(0)
    vectors = np.concatenate([rng.normal(0, 1, (6, 8)), rng.normal(6, 1, (6, 8))])
    pca = index.unit_square(index.pca_2d(vectors))
    assert pca.shape == (12, 2) and pca.min() >= 0 and pca.max() <= 1
    # The two clusters sit apart along the first axis.
    assert abs(pca[:6, 0].mean() - pca[6:, 0].mean()) > 0.5
    tsne = index.tsne_2d(vectors)
    assert tsne is not None and tsne.shape == (12, 2)
    assert index.tsne_2d(vectors[:4]) is None
