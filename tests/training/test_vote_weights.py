"""What each vote weighs in training: reliability times agreement with quality control, and
exactly 1 for the equal-weights baseline, which also sees the flagged listeners' votes."""

import pytest
from django.utils import timezone

from annotation.models import Assignment, Judgment, Listener, Triplet
from tests.factories import listener_make, triplet_make
from training.services import vote_rows

pytestmark = pytest.mark.django_db


def vote(triplet: Triplet, odd: int, weight: float = 1.0, **listener: object) -> Judgment:
    who = listener_make(**listener)
    assignment = Assignment.objects.create(
        triplet=triplet, listener=who, order="abc", expires_at=timezone.now()
    )
    return Judgment.objects.create(
        assignment=assignment,
        triplet=triplet,
        listener=who,
        odd_slot=odd,
        response_ms=5000,
        listen_ms=[5000, 5000, 5000],
        weight=weight,
    )


@pytest.fixture
def votes() -> tuple[Triplet, dict[int, int]]:
    """Three honest votes for slot c (two reliable, one less so), one for slot a, and a
    flagged listener's vote for slot b."""
    triplet = triplet_make()
    vote(triplet, 2, weight=0.9)
    vote(triplet, 2, weight=0.9)
    vote(triplet, 2, weight=0.6)
    vote(triplet, 0, weight=0.8)
    vote(triplet, 1, weight=0.5, review=Listener.Review.FLAGGED)
    return triplet, {s: i for i, s in enumerate(triplet.snippet_ids())}


def test_reliability_weights_are_the_judgment_weight_times_its_agreement(votes):
    _, position = votes
    rows, weights = vote_rows(position)
    assert len(rows) == 8  # two rows per counted vote; the flagged listener's is held out
    assert weights == pytest.approx([0.9 * 0.75] * 4 + [0.6 * 0.75] * 2 + [0.8 * 0.25] * 2)
    assert rows[0] == (0, 1, 2) and rows[1] == (1, 0, 2)
    assert rows[-1] == (2, 1, 0)


def test_equal_weights_count_every_vote_once_including_flagged_listeners(votes):
    _, position = votes
    rows, weights = vote_rows(position, equal_weights=True)
    assert len(rows) == 10
    assert weights == [1.0] * 10
    assert (0, 2, 1) in rows  # the flagged listener's vote for slot b


def test_a_curators_exclusion_holds_for_the_equal_weights_baseline_too(votes):
    _, position = votes
    Listener.objects.filter(review=Listener.Review.FLAGGED).update(review=Listener.Review.EXCLUDED)
    rows, _ = vote_rows(position, equal_weights=True)
    assert len(rows) == 8
    assert (0, 2, 1) not in rows
