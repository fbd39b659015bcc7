"""What each vote weighs in training: its judgment's weight (the listener's reliability) with
quality control, 0 while it is flagged, and exactly 1 for the equal-weights baseline, which
reads the same rows in the same order."""

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


def test_reliability_weights_are_the_judgment_weight_and_zero_while_flagged(votes):
    _, position = votes
    rows, weights = vote_rows(position)
    assert len(rows) == 10  # two rows per vote, the flagged listener's too ...
    assert weights == pytest.approx([0.9] * 4 + [0.6] * 2 + [0.8] * 2 + [0.0] * 2)  # ... at 0
    assert rows[0] == (0, 1, 2) and rows[1] == (1, 0, 2)
    assert rows[7] == (2, 1, 0)
    assert rows[-1] == (2, 0, 1)  # the flagged listener's vote for slot b


def test_a_flagged_judgment_weighs_nothing_until_a_curator_accepts_it(votes):
    triplet, position = votes
    judgment = Judgment.objects.filter(triplet=triplet, weight=0.6).get()
    judgment.status = Judgment.Status.FLAGGED
    judgment.save()
    assert vote_rows(position)[1][4:6] == [0.0, 0.0]
    judgment.status = Judgment.Status.ACCEPTED
    judgment.save()
    assert vote_rows(position)[1][4:6] == pytest.approx([0.6, 0.6])


def test_both_weightings_read_the_same_rows_in_the_same_order(votes):
    _, position = votes
    assert vote_rows(position)[0] == vote_rows(position, equal_weights=True)[0]


def test_nothing_to_learn_while_every_vote_is_held_out(votes):
    _, position = votes
    Listener.objects.update(review=Listener.Review.FLAGGED)
    with pytest.raises(ValueError, match="no accepted judgments"):
        vote_rows(position)
    assert len(vote_rows(position, equal_weights=True)[0]) == 10


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
