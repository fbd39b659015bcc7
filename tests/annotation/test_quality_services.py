"""Quality control against the database: repeats served, reliability and weights stored,
listeners and judgments flagged with audit entries, curators' decisions left alone."""

import pytest

from annotation.models import SLOTS, AuditEntry, Judgment, Listener, Triplet
from annotation.quality_services import TOO_FAST_REASON, quality_update
from annotation.selectors import counted_judgments
from annotation.services import Answer, assignment_next, judgment_submit
from tests.factories import listener_make, triplet_make, user_make

pytestmark = pytest.mark.django_db


def answer_all(listener: Listener, positions: str = "A", listen_ms: int = 6000) -> list[Judgment]:
    """The listener answers everything served, at these displayed positions in turn."""
    out = []
    while (assignment := assignment_next(listener)) is not None:
        position = positions[len(out) % len(positions)]
        answer = Answer(assignment.id, position, listen_ms * 3 + 500, [listen_ms] * 3)
        out.append(judgment_submit(listener, answer).judgment)
    return out


@pytest.fixture
def repeats_due(settings) -> None:
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 1.0
    settings.ODDBALL_QUALITY_REPEAT_AFTER = 2


def test_a_listener_is_served_a_repeat_in_another_order_once_enough_is_answered(repeats_due):
    listener = listener_make()
    triplets = [triplet_make() for _ in range(4)]
    first = assignment_next(listener)
    assert first.repeat_of is None  # nothing answered yet: nothing to repeat
    judgment_submit(listener, Answer(first.id, "A", 13000, [4000] * 3))
    second = assignment_next(listener)
    assert second.repeat_of is None  # one answer is not enough
    judgment_submit(listener, Answer(second.id, "B", 13000, [4000] * 3))
    repeat = assignment_next(listener)
    assert repeat.repeat_of_id in (first.id, second.id)
    assert repeat.triplet_id == repeat.repeat_of.triplet_id
    original = repeat.repeat_of.order
    assert sorted(repeat.order) == list(SLOTS)
    assert all(repeat.order[i] != original[i] for i in range(3))  # every slot moved
    assert repeat.triplet_id in {t.id for t in triplets}


def test_a_repeat_is_answered_but_is_no_vote(repeats_due):
    listener = listener_make()
    for _ in range(3):
        triplet_make()
    judgments = answer_all(listener)
    repeats = [j for j in judgments if j.assignment.repeat_of_id is not None]
    assert repeats, "with a repeat share of 1 some repeat is served"
    assert set(counted_judgments()) == {j for j in judgments if j not in repeats}
    assert sum(Triplet.objects.values_list("votes", flat=True)) == len(judgments) - len(repeats)


def test_no_repeat_is_served_when_the_share_is_zero(settings):
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    listener = listener_make()
    for _ in range(15):
        triplet_make()
    judgments = answer_all(listener)
    assert len(judgments) == 15
    assert all(j.assignment.repeat_of_id is None for j in judgments)


def test_quality_update_stores_reliability_signals_and_weights(settings):
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    for _ in range(5):
        triplet_make()
    listener = listener_make()
    answer_all(listener, "B")
    quality_update()
    listener.refresh_from_db()
    assert 0 < listener.reliability < 1  # five answers, no checks: the prior alone
    assert listener.signals["answers"] == 5
    assert listener.quality_at is not None
    weights = set(Judgment.objects.filter(listener=listener).values_list("weight", flat=True))
    assert weights == {listener.reliability}
    assert listener.review == Listener.Review.OK  # too few answers to judge


def test_answers_before_listening_flag_the_judgments_and_the_listener_with_audit_entries(
    settings,
):
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    for _ in range(12):
        triplet_make()
    hasty, careful = listener_make(), listener_make()
    answer_all(hasty, "A", listen_ms=500)
    answer_all(careful, "ABC")
    report = quality_update()
    hasty.refresh_from_db()
    careful.refresh_from_db()
    assert report.flagged_listeners == [hasty.id]
    assert hasty.review == Listener.Review.FLAGGED
    assert any("before listening" in r for r in hasty.flag_reasons)
    entry = AuditEntry.objects.get(target_type="listener", target_id=hasty.id)
    assert entry.actor is None and entry.action == "flag" and "before listening" in entry.reason
    flagged = Judgment.objects.filter(status=Judgment.Status.FLAGGED)
    assert set(flagged.values_list("listener_id", flat=True)) == {hasty.id}
    assert flagged.count() == 12 and {j.flag_reason for j in flagged} == {TOO_FAST_REASON}
    assert AuditEntry.objects.filter(target_type="judgment", actor=None).count() == 12
    assert careful.review == Listener.Review.OK
    # Flagged work is no vote, and a second run adds no second flag.
    assert set(counted_judgments().values_list("listener_id", flat=True)) == {careful.id}
    assert quality_update().flagged_listeners == []
    assert AuditEntry.objects.filter(target_type="listener").count() == 1


def test_curators_decisions_are_never_overturned(settings):
    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    for _ in range(12):
        triplet_make()
    trusted, excluded = listener_make(), listener_make()
    answer_all(trusted, "A", listen_ms=500)
    answer_all(excluded, "A", listen_ms=500)
    Listener.objects.filter(id=trusted.id).update(review=Listener.Review.TRUSTED)
    Listener.objects.filter(id=excluded.id).update(review=Listener.Review.EXCLUDED)
    accepted_by_hand = Judgment.objects.filter(listener=excluded).first()
    AuditEntry.objects.create(
        actor=user_make("curator"),
        action="accept",
        target_type="judgment",
        target_id=accepted_by_hand.id,
    )
    report = quality_update()
    assert report.flagged_listeners == []
    reviews = dict(Listener.objects.values_list("id", "review"))
    assert reviews == {trusted.id: "trusted", excluded.id: "excluded"}
    # A trusted listener's answers stay accepted; the curator-accepted one too.
    assert not Judgment.objects.filter(listener=trusted, status="flagged").exists()
    accepted_by_hand.refresh_from_db()
    assert accepted_by_hand.status == Judgment.Status.ACCEPTED
    assert Judgment.objects.filter(listener=excluded, status="flagged").count() == 11


def test_the_beat_task_runs_quality_control_and_reports_what_it_flagged(settings):
    from annotation.tasks import quality_update as task

    settings.ODDBALL_QUALITY_REPEAT_SHARE = 0.0
    for _ in range(10):
        triplet_make()
    hasty = listener_make()
    answer_all(hasty, "ABC", listen_ms=300)
    assert task.delay().get() == {
        "listeners": 1,
        "flagged_listeners": [hasty.id],
        "flagged_judgments": 10,
    }
    assert "quality-update" in settings.CELERY_BEAT_SCHEDULE
