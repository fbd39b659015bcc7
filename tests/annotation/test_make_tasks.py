import pytest

from annotation.models import Triplet
from annotation.services import triplets_make
from embeddings.models import Snippet
from tests.factories import track_make

pytestmark = pytest.mark.django_db


def tracks_of(triplet: Triplet) -> list[int]:
    snippets = Snippet.objects.in_bulk(triplet.snippet_ids())
    return [snippets[i].track_id for i in triplet.snippet_ids()]


def test_random_triplets_take_three_tracks_of_one_split():
    for split in ("train", "train", "train", "train", "test", "test", "test"):
        track_make(split, snippets=3)
    made = triplets_make(40, gold_share=0.0, seed=1)
    assert made > 20
    for triplet in Triplet.objects.all():
        tracks = tracks_of(triplet)
        assert len(set(tracks)) == 3
        splits = set(
            Snippet.objects.filter(id__in=triplet.snippet_ids()).values_list(
                "track__split", flat=True
            )
        )
        assert splits == {triplet.split}


def test_gold_triplets_hold_two_snippets_of_one_track_and_mark_the_odd_one():
    for _ in range(5):
        track_make("train", snippets=3)
    triplets_make(60, gold_share=1.0, seed=2)
    gold = list(Triplet.objects.filter(kind="gold"))
    assert gold
    for triplet in gold:
        tracks = tracks_of(triplet)
        odd = triplet.gold_odd
        others = [t for i, t in enumerate(tracks) if i != odd]
        assert others[0] == others[1] != tracks[odd]


def test_the_gold_share_is_respected_roughly():
    for _ in range(6):
        track_make("train", snippets=4)
    triplets_make(200, gold_share=0.25, seed=3)
    share = Triplet.objects.filter(kind="gold").count() / Triplet.objects.count()
    assert 0.15 < share < 0.35


def test_no_triplet_is_made_twice():
    for _ in range(3):
        track_make("train", snippets=1)
    assert triplets_make(10, gold_share=0.0, seed=4) == 1
    assert triplets_make(10, gold_share=0.0, seed=5) == 0
