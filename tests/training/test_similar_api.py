"""Similar tracks through /api/v1/similar/ and /similar/: who appears, what a bad upload
gets, the promoted model's space and the embedding map."""

import json
from dataclasses import asdict
from io import BytesIO, StringIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from embeddings.models import Embedding, Snippet, Track
from embeddings.services import MEL_STATS_SPACE, embeddings_store, index_path
from tests.factories import model_version_make, track_make
from training import nets, similar
from training.services import model_promote

pytestmark = pytest.mark.django_db

API = "/api/v1/similar/"


def vectors_store(space: str, rows: dict[Snippet, float], dim: int = 4) -> None:
    """One vector per snippet, all on one line: their order along it is their nearness."""
    vectors = {}
    for snippet, x in rows.items():
        v = np.zeros(dim, dtype=np.float32)
        v[0], v[1] = x, 1.0
        vectors[snippet.id] = v / np.linalg.norm(v) if space != MEL_STATS_SPACE else v
    embeddings_store(space, vectors)


@pytest.fixture
def line(db: None) -> dict[str, Track]:
    """Tracks whose snippets sit on a line at increasing distance from track A's first:
    A's own second snippet, then a hidden track, a pending track, a track whose nearest
    snippet is hidden, then B and C."""
    tracks = {
        "A": track_make(),
        "hidden": track_make(hidden=True),
        "pending": track_make(status=Track.Status.PENDING),
        "Q": track_make(),
        "B": track_make(),
        "C": track_make(),
    }
    q_near = tracks["Q"].snippets.get(position=0)
    q_near.hidden = True
    q_near.save()
    first = lambda name: tracks[name].snippets.get(position=0)  # noqa: E731
    second = lambda name: tracks[name].snippets.get(position=1)  # noqa: E731
    vectors_store(
        MEL_STATS_SPACE,
        {
            first("A"): 0.0,
            second("A"): 0.1,
            first("hidden"): 0.2,
            second("hidden"): 0.25,
            first("pending"): 0.3,
            second("pending"): 0.35,
            first("Q"): 0.4,  # hidden snippet
            first("B"): 0.5,
            second("B"): 0.55,
            second("Q"): 0.6,
            first("C"): 0.7,
            second("C"): 0.8,
        },
    )
    return tracks


def ask(client: Client, **query: object) -> tuple[int, dict]:
    response = client.get(API, query)
    return response.status_code, response.json()


def test_a_snippet_query_leaves_out_its_own_track_and_every_hidden_or_pending_one(client, line):
    query = line["A"].snippets.get(position=0)
    code, body = ask(client, snippet=query.id)
    assert code == 200, body
    assert [r["track"]["id"] for r in body["results"]] == [
        line["B"].id,
        line["Q"].id,
        line["C"].id,
    ]
    # Q is offered by its visible snippet, never by the hidden one that is nearer.
    assert body["results"][1]["snippet"]["id"] == line["Q"].snippets.get(position=1).id
    assert body["query"] == {
        "kind": "snippet",
        "snippet": query.id,
        "track": line["A"].id,
        "windows": 1,
    }


def test_the_answer_names_its_space_scores_and_playable_snippets(client, line):
    query = line["A"].snippets.get(position=0)
    code, body = ask(client, snippet=query.id, k=2)
    assert code == 200
    assert body["space"] == MEL_STATS_SPACE
    assert body["promoted"] is False
    assert body["fallback"] == "no model version is promoted"
    assert body["score_kind"] == "negative_distance"
    assert "best snippet" in body["aggregation"]
    assert len(body["results"]) == 2
    top = body["results"][0]
    assert top["rank"] == 1
    assert top["score"] > body["results"][1]["score"]
    b = line["B"]
    assert top["track"] == {
        "id": b.id,
        "title": b.title,
        "attribution": b.attribution,
        "license": "CC0-1.0",
        "source": "",
        "genre": "",
    }
    best = b.snippets.get(position=0)
    assert top["snippet"]["id"] == best.id
    assert top["snippet"]["audio_url"] == f"http://testserver/media/{best.audio.name}"
    assert top["snippet"]["start_s"] == best.start_s


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({}, "snippet: This field is required."),
        ({"snippet": "abc"}, "snippet: A valid integer is required."),
        ({"snippet": 0}, "snippet: Ensure this value is greater than or equal to 1."),
        ({"snippet": 2**63}, f"snippet: Ensure this value is less than or equal to {2**63 - 1}."),
        ({"k": 0}, "k: Ensure this value is greater than or equal to 1."),
        ({"k": 51}, "k: Ensure this value is less than or equal to 50."),
        ({"k": "ten"}, "k: A valid integer is required."),
    ],
)
def test_a_bad_query_gets_a_400_that_says_why(client, line, query, reason):
    if "snippet" not in query and query:
        query["snippet"] = line["A"].snippets.first().id
    code, body = ask(client, **query)
    assert code == 400
    assert (body["detail"], body["code"]) == (reason, "invalid")
    assert list(body["errors"]) == [reason.split(":")[0]]


def test_an_unknown_or_hidden_snippet_is_not_found(client, line):
    assert ask(client, snippet=999_999) == (
        404,
        {"detail": "No snippet 999999.", "code": "not_found"},
    )
    hidden = line["hidden"].snippets.first()
    assert ask(client, snippet=hidden.id)[0] == 404
    pending = line["pending"].snippets.first()
    assert ask(client, snippet=pending.id)[0] == 404


def test_without_vectors_the_answer_is_409_with_what_to_run(client):
    snippet = track_make().snippets.first()
    code, body = ask(client, snippet=snippet.id)
    assert code == 409
    assert "run `embed`" in body["detail"]
    assert body["code"] == "not_ready"


def test_the_promoted_model_answers_and_its_index_is_built_when_stale(client, line):
    version = model_version_make()
    version.promoted = True
    version.save()
    snippets = Snippet.objects.filter(hidden=False).exclude(track=line["C"])
    vectors_store(version.space, {s: 0.1 * s.id for s in snippets})
    query = line["A"].snippets.get(position=0)
    assert not index_path(version.space).exists()

    code, body = ask(client, snippet=query.id, k=50)
    assert code == 200
    assert (body["space"], body["promoted"], body["fallback"]) == (version.space, True, "")
    assert body["score_kind"] == "cosine"
    assert all(-1.0 <= r["score"] <= 1.0 for r in body["results"])
    assert line["C"].id not in {r["track"]["id"] for r in body["results"]}

    # C gets vectors after the index was built: the next query sees them.
    vectors_store(version.space, {s: 5.0 for s in line["C"].snippets.all()})
    code, body = ask(client, snippet=query.id, k=50)
    assert line["C"].id in {r["track"]["id"] for r in body["results"]}


def test_queries_are_rate_limited_under_the_similar_scope(client, line, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "similar": "2/min",
        },
    }
    query = line["A"].snippets.first().id
    assert [ask(client, snippet=query)[0] for _ in range(3)] == [200, 200, 429]
    assert ask(client, snippet=query)[1]["wait_s"] > 0


# Uploads --------------------------------------------------------------------------------------


def wav(seconds: float, rate: int = 16_000, silent: bool = False) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    x = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * 220 * t)
    out = BytesIO()
    sf.write(out, x.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def upload(client: Client, name: str, data: bytes, **fields: object) -> tuple[int, dict]:
    response = client.post(API, {"audio": SimpleUploadedFile(name, data), **fields})
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.ogg", b"", "audio: The submitted file is empty."),
        ("notes.mp3", b"these are my notes, not music\n" * 50, "not an audio file"),
        ("short.wav", wav(2.0), "too short: 2.0 s, at least 5 s"),
        ("long.wav", wav(601.0, rate=8_000), "too long: 601 s; at most 600 s"),
        ("silence.wav", wav(20.0, silent=True), "the clip is silent"),
        ("phone.wav", wav(8.0, rate=4_000), "sample rate 4000 Hz is below 8000 Hz"),
    ],
    ids=["empty", "text", "too-short", "too-long", "silent", "low-rate"],
)
def test_a_bad_upload_gets_a_400_that_says_why(client, line, name, data, reason):
    code, body = upload(client, name, data)
    assert code == 400
    assert body["detail"].startswith("audio: ")
    assert reason in body["detail"]


def test_an_upload_over_the_size_limit_is_refused(client, line, settings):
    settings.ODDBALL_SIMILAR_MAX_UPLOAD_MB = 1
    code, body = upload(client, "big.wav", wav(40.0))  # 1.28 MB
    assert code == 400
    assert body["detail"] == "audio: The file is too big: at most 1 MB."


def test_an_upload_needs_a_file_and_a_multipart_body(client, line):
    code, body = upload(client, "ok.wav", wav(6.0), k=0)
    assert (code, body["detail"]) == (400, "k: Ensure this value is greater than or equal to 1.")
    response = client.post(API, {"k": 3})
    assert response.status_code == 400
    assert response.json()["detail"] == "audio: No file was submitted."
    response = client.post(API, {"audio": "x"}, content_type="application/json")
    assert response.status_code == 415


@pytest.fixture
def imported(generated_music: Path) -> list[Track]:
    """Four generated 32 s tracks with mel-stats vectors."""
    files = sorted(generated_music.glob("*.flac"))[:4]
    call_command("import_audio", *map(str, files), stdout=StringIO())
    call_command("embed", stdout=StringIO())
    return list(Track.objects.order_by("id"))


def clip_of(track: Track, folder: Path, start_s: float, seconds: float) -> bytes:
    """`seconds` of the track's imported file from `start_s`, as a FLAC file's bytes."""
    wave, rate = sf.read(folder / track.file_name, dtype="float32", always_2d=True)
    out = BytesIO()
    piece = wave[round(start_s * rate) : round((start_s + seconds) * rate)]
    sf.write(out, piece, rate, format="FLAC")
    return out.getvalue()


def oddnet_promote(model: nets.OddNet) -> str:
    """Register `model` as a version and promote it (which embeds every snippet)."""
    from django.conf import settings

    version = model_version_make()
    path = Path(settings.MEDIA_ROOT) / version.checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "net_config": asdict(model.config)}, path)
    model_promote(version.id)
    return version.space


def test_an_uploaded_clip_is_embedded_by_the_promoted_oddnet_window_by_window(
    client, imported, generated_music
):
    torch.manual_seed(0)
    space = oddnet_promote(nets.OddNet(nets.OddNetConfig(channels=8, attention_dim=8)))
    track = imported[1]
    code, body = upload(client, "clip.flac", clip_of(track, generated_music, 4.0, 24.0), k=3)
    assert code == 200, body
    assert (body["space"], body["promoted"], body["score_kind"]) == (space, True, "cosine")
    # 24 s in 15 s windows, 7.5 s apart, the last ending at the end: 0, 7.5 and 9 s.
    assert body["query"] == {"kind": "upload", "snippet": None, "track": None, "windows": 3}
    assert len(body["results"]) == 3
    assert Embedding.objects.filter(space=space).count() == Snippet.objects.count()


def test_the_upload_windows_cover_the_clip_and_skip_silence():
    rate = 16_000
    sound = 0.3 * np.sin(2 * np.pi * 220 * np.arange(40 * rate) / rate).astype(np.float32)
    sound[15 * rate : 31 * rate] = 0.0  # a silent stretch holding one whole window
    windows = similar.upload_windows(sound[None, :], rate)
    # Starts 0, 7.5, 15, 22.5, 25 s: the one at 15 s is silent.
    assert len(windows) == 4
    assert all(len(w) == 15 * rate for w in windows)
    assert len(similar.upload_windows(sound[None, : 6 * rate], rate)[0]) == 6 * rate


# The page and the map ------------------------------------------------------------------------


def test_the_page_says_what_to_run_before_there_are_vectors(client):
    response = client.get("/similar/")
    assert response.status_code == 200
    assert "run `embed` first" in response.content.decode()


def test_the_page_draws_one_point_per_visible_track_coloured_by_collection(client, line):
    Track.objects.filter(id=line["B"].id).update(source="debian:wesnoth-music=1:1.16:/usr/x.ogg")
    html = client.get("/similar/").content.decode()
    points = html.count('class="map-point"')
    assert points == 4  # A, Q, B, C; not the hidden or the pending track
    assert f'data-track="{line["hidden"].id}"' not in html
    assert "debian:wesnoth-music (1)" in html
    assert "(no source) (3)" in html
    assert 'value="tsne" disabled' in html  # four tracks are too few for t-SNE


def test_the_map_is_computed_once_per_space_and_collection(line, settings):
    first = similar.embedding_map(MEL_STATS_SPACE)
    cached = list((Path(settings.MEDIA_ROOT) / "index").glob("map-*.json"))
    assert len(cached) == 1
    # A page view reads the file: an edit to it shows that nothing was recomputed.
    edited = {**first, "points": first["points"][:1]}
    cached[0].write_text(json.dumps(edited))
    assert similar.embedding_map(MEL_STATS_SPACE) == edited
    # A new track changes the collection and so the cache key.
    new = track_make()
    vectors_store(MEL_STATS_SPACE, {s: 2.0 for s in new.snippets.all()})
    assert len(similar.embedding_map(MEL_STATS_SPACE)["points"]) == 5


def test_a_source_names_its_collection_without_versions_or_paths():
    assert similar.collection_of("") == "(no source)"
    assert (
        similar.collection_of("debian:wesnoth-1.16-music=1:1.16.9-1:/usr/share/x.ogg")
        == "debian:wesnoth-1.16-music"
    )
    assert similar.collection_of("github:librosa/data@450cdd8:audio/x.ogg") == (
        "github:librosa/data"
    )
    assert similar.collection_of("my records") == "my records"
