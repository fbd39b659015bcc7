"""What plays next: ranked next clips, their rendered transitions and the page, on generated
music through the real importer."""

from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from embeddings import index
from embeddings.models import Clip, Rendering, Track
from embeddings.selectors import clip_matrix, proposer_space
from embeddings.services import MEL_STATS_SPACE
from tests.factories import track_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()  # the render throttle counts in the cache, which outlives a test
    yield
    cache.clear()


@pytest.fixture
def imported(generated_music: Path) -> list[Track]:
    """Six generated tracks of two clips each, with mel-stats clip vectors and their index."""
    files = sorted(generated_music.glob("*.flac"))[:6]
    call_command("import_audio", *map(str, files), stdout=StringIO())
    call_command("embed", stdout=StringIO())
    return list(Track.objects.all())


def next_of(client: Client, track_id: int, **query: object) -> tuple[int, dict]:
    response = client.get(f"/api/v1/tracks/{track_id}/next/", query)
    return response.status_code, response.json()


def test_it_ranks_other_tracks_openings_by_mel_stats_distance_from_the_last_clips_ending(
    client, imported
):
    track = imported[0]
    last = track.clips.order_by("position").last()
    status, body = next_of(client, track.id, k=5)
    assert status == 200
    assert body["space"] == MEL_STATS_SPACE == proposer_space()
    assert body["track"] == {"id": track.id, "title": track.title}
    assert body["clip"]["id"] == last.id and body["clip"]["start_s"] == last.start_s
    candidates = body["candidates"]
    assert len(candidates) == 5
    assert all(c["track"] != track.id for c in candidates)
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    # The same ranking worked out here: z-score the openings, nearest to the ending first.
    ids, openings = clip_matrix(MEL_STATS_SPACE, "opening")
    z, mean, std = index.standardise(openings)
    ending_ids, endings = clip_matrix(MEL_STATS_SPACE, "ending")
    query = (endings[list(ending_ids).index(last.id)] - mean) / std
    order = np.argsort(np.linalg.norm(z - query, axis=1))
    own = set(track.clips.values_list("id", flat=True))
    expected = [int(ids[i]) for i in order if int(ids[i]) not in own][:5]
    assert [c["clip"] for c in candidates] == expected
    first = Clip.objects.get(id=candidates[0]["clip"])
    assert candidates[0]["title"] == first.track.title
    assert candidates[0]["transition_url"].endswith(
        f"/api/v1/transitions/render/?from={last.id}&to={first.id}&style=crossfade"
    )


def test_it_answers_for_a_chosen_clip_and_space_and_caps_k(client, imported):
    track = imported[1]
    first = track.clips.order_by("position").first()
    status, body = next_of(client, track.id, clip=first.id, space=MEL_STATS_SPACE, k=50)
    assert status == 200 and body["clip"]["id"] == first.id
    others = Clip.objects.exclude(track=track).count()
    assert len(body["candidates"]) == others  # fewer than k exist
    assert {c["track"] for c in body["candidates"]} == {t.id for t in imported} - {track.id}


def test_it_leaves_out_tracks_a_curator_has_not_approved(client, imported):
    rejected = imported[2]
    Track.objects.filter(id=rejected.id).update(status=Track.Status.REJECTED)
    status, body = next_of(client, imported[0].id, k=50)
    assert status == 200 and rejected.id not in {c["track"] for c in body["candidates"]}
    assert next_of(client, rejected.id)[0] == 404


def test_the_next_clips_take_a_bounded_number_of_queries(
    client, imported, django_assert_max_num_queries
):
    # track, its clip, the proposer's spaces, the ending's presence, then the ranking:
    # the ending, its track, that track's clips, the candidates with their titles
    with django_assert_max_num_queries(8):
        assert next_of(client, imported[0].id)[0] == 200


@pytest.mark.parametrize(
    "query",
    [{"k": 0}, {"k": 51}, {"k": "ten"}, {"clip": "last"}, {"space": "not a space"}],
)
def test_bad_parameters_are_refused_with_a_reason(client, query):
    track = track_make()
    status, body = next_of(client, track.id, **query)
    assert status == 400
    assert set(body) == set(query) and body[next(iter(query))]


def test_an_unknown_track_or_a_clip_of_another_track_is_not_found(client):
    track, other = track_make(), track_make()
    clip = Clip.objects.create(track=other, position=0, start_s=0, duration_s=25, edge_s=4)
    assert next_of(client, 999_999)[0] == 404
    status, body = next_of(client, track.id, clip=clip.id)
    assert status == 404 and str(clip.id) in body["detail"]


def test_without_vectors_it_answers_409_and_says_what_to_run(client):
    uncut = track_make()
    status, body = next_of(client, uncut.id)
    assert status == 409 and "clips" in body["detail"]
    cut = track_make()
    Clip.objects.create(track=cut, position=0, start_s=0, duration_s=25, edge_s=4)
    status, body = next_of(client, cut.id)
    assert status == 409 and "embed" in body["detail"]
    status, body = next_of(client, cut.id, space="transnet@9")
    assert status == 409 and "transnet@9" in body["detail"]


def render(client: Client, **query: object):
    return client.get("/api/v1/transitions/render/", query)


@pytest.mark.django_db(transaction=True)
def test_in_the_embedded_default_a_transition_is_rendered_at_once_and_only_once(
    client, imported, settings
):
    x, y = imported[0].clips.last(), imported[3].clips.first()
    response = render(client, **{"from": x.id, "to": y.id, "style": "hard_cut"})
    assert response.status_code == 200
    body = response.json()
    made = Rendering.objects.get()
    assert body["rendering"] == made.id and body["style"] == "hard_cut"
    assert (body["duration_s"], body["seam_s"]) == (made.duration_s, made.seam_s)
    assert body["aligned"] == made.aligned and body["alignment_note"] == made.alignment_note
    assert body["url"].endswith(made.audio.url)
    audio_file = Path(settings.MEDIA_ROOT) / made.audio.name
    assert audio_file.read_bytes()[:4] == b"OggS"
    again = render(client, **{"from": x.id, "to": y.id, "style": "hard_cut"})
    assert again.status_code == 200 and again.json() == body
    assert Rendering.objects.count() == 1
    # The default style is a crossfade, a new rendering of the same pair.
    crossfade = render(client, **{"from": x.id, "to": y.id}).json()
    assert crossfade["style"] == "crossfade" and crossfade["rendering"] != body["rendering"]


def test_a_render_under_way_answers_202_and_is_queued_once(
    client, imported, django_capture_on_commit_callbacks
):
    x, y = imported[1].clips.last(), imported[4].clips.first()
    query = {"from": x.id, "to": y.id, "style": "overlay"}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first, second = render(client, **query), render(client, **query)
    for response in (first, second):
        assert response.status_code == 202 and response.json() == {"status": "rendering"}
        assert int(response.headers["Retry-After"]) > 0
    assert len(queued) == 1  # the poll while it is under way did not queue it again
    queued[0]()  # the worker's turn (in-process here)
    done = render(client, **query)
    assert done.status_code == 200 and done.json()["style"] == "overlay"


@pytest.mark.parametrize(
    "query",
    [{}, {"from": 1}, {"from": "a", "to": 2}, {"from": 1, "to": 2, "style": "mashup"}],
)
def test_a_render_request_with_bad_parameters_is_refused(client, query):
    assert render(client, **query).status_code == 400


def test_a_render_of_unknown_or_identical_clips_is_refused(client):
    track = track_make()
    a, b = (
        Clip.objects.create(track=track, position=i, start_s=20 * i, duration_s=25, edge_s=4)
        for i in range(2)
    )
    assert render(client, **{"from": a.id, "to": a.id}).status_code == 400
    assert render(client, **{"from": a.id, "to": 999_999}).status_code == 404
    # Rows without audio (factory tracks) cannot be rendered: a reason, never a 500.
    response = render(client, **{"from": a.id, "to": b.id})
    assert response.status_code == 409 and "original" in response.json()["detail"]


def test_render_requests_are_rate_limited(client, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"transition-render": "2/min"},
    }
    codes = [render(client, **{"from": 1}).status_code for _ in range(3)]
    assert codes == [400, 400, 429]


def test_the_page_lists_the_ranked_candidates_with_a_player_each(client, imported):
    track = imported[0]
    _status, body = next_of(client, track.id)
    response = client.get(f"/tracks/{track.id}/next/")
    assert response.status_code == 200
    html = response.content.decode()
    rows = [html.index(f'data-clip="{c["clip"]}"') for c in body["candidates"]]
    assert rows == sorted(rows)  # in rank order
    assert html.count("Play transition") == len(body["candidates"]) == 10
    assert 'data-render-url="/api/v1/transitions/render/"' in html and "js/next.js" in html
    assert client.get("/tracks/999999/next/").status_code == 404


def test_the_page_explains_when_nothing_can_be_ranked(client):
    track = track_make()
    Clip.objects.create(track=track, position=0, start_s=0, duration_s=25, edge_s=4)
    response = client.get(f"/tracks/{track.id}/next/")
    assert response.status_code == 200
    assert "no vectors" in response.content.decode()
    assert "Play transition" not in response.content.decode()


def test_the_api_schema_describes_what_plays_next(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = out.read_text()
    assert "/api/v1/tracks/{track_id}/next/" in schema
    assert "/api/v1/transitions/render/" in schema and "name: from" in schema


def test_the_newest_transition_model_proposes_even_when_mel_stats_vectors_are_newer(imported):
    from embeddings.services import clip_embeddings_store, clip_index_build

    clip_ids = list(Clip.objects.values_list("id", flat=True))
    rng = np.random.default_rng(0)
    for space in ("transnet@2", "transnet@10"):
        vectors = {}
        for clip_id in clip_ids:
            for part in ("opening", "ending"):
                v = rng.standard_normal(8).astype(np.float32)
                vectors[(clip_id, part)] = v / np.linalg.norm(v)
        clip_embeddings_store(space, vectors)
    clip_index_build("transnet@2")
    assert proposer_space() == "transnet@2"  # @10 has vectors but no index yet
    clip_index_build("transnet@10")
    Clip.objects.first().embeddings.filter(space=MEL_STATS_SPACE).delete()
    call_command("embed", stdout=StringIO())  # mel-stats vectors are now the newest
    assert proposer_space() == "transnet@10"
