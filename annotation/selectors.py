"""Reads for the annotation app."""

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, QuerySet
from django.utils import timezone

from annotation.models import (
    SITE_SOURCE,
    SLOTS,
    Assignment,
    Judgment,
    Listener,
    TransitionRating,
    TransitionTask,
    Triplet,
)
from embeddings.models import Snippet

PRACTICE_ROUND = 3  # gold triplets with feedback before the real ones
POSITIONS = "ABC"


# Whose work counts. Flagged and excluded listeners' answers, flagged or rejected
# judgments, practice answers and repeats (consistency checks) stay in the database but are
# not votes: training, evaluation and exports read only what these two return, so excluding
# a listener takes their work out everywhere and restoring brings it back.
# Imported judgments (import_judgments; `source` other than SITE_SOURCE, no assignment)
# count too, but training and evaluation read them only with ODDBALL_TRAIN_IMPORTED on:
# they were collected elsewhere, on other excerpts, without this site's quality control.
COUNTED_REVIEWS = (Listener.Review.OK, Listener.Review.TRUSTED)


def counted_judgments() -> QuerySet[Judgment]:
    """Judgments that count as votes: accepted, not practice, not a repeat, by a listener
    neither flagged nor excluded; imported ones included (releases choose by `source`)."""
    return Judgment.objects.filter(
        status=Judgment.Status.ACCEPTED,
        practice=False,
        assignment__repeat_of__isnull=True,
        listener__review__in=COUNTED_REVIEWS,
    )


def counted_ratings() -> QuerySet[TransitionRating]:
    """Transition ratings that count: accepted, by a listener neither flagged nor excluded."""
    return TransitionRating.objects.filter(
        status=TransitionRating.Status.ACCEPTED, listener__review__in=COUNTED_REVIEWS
    )


def _training_sources(judgments: QuerySet[Judgment]) -> QuerySet[Judgment]:
    """Only this site's judgments, unless ODDBALL_TRAIN_IMPORTED lets imported ones in."""
    if settings.ODDBALL_TRAIN_IMPORTED:
        return judgments
    return judgments.filter(source=SITE_SOURCE)


def triplet_votes(
    split: str | None = None, kind: str = Triplet.Kind.RANDOM
) -> dict[int, tuple[tuple[int, int, int], list[int], list[float]]]:
    """Accepted votes per triplet: {triplet_id: (snippet ids, odd slots, weights)}, as
    training and evaluation read them (imported ones per ODDBALL_TRAIN_IMPORTED).

    "Can't tell" answers carry no vote and are left out.
    """
    judgments = counted_judgments().filter(odd_slot__isnull=False, triplet__kind=kind)
    judgments = _training_sources(judgments)
    if split:
        judgments = judgments.filter(triplet__split=split)
    rows = judgments.values_list(
        "triplet_id",
        "triplet__snippet_a_id",
        "triplet__snippet_b_id",
        "triplet__snippet_c_id",
        "odd_slot",
        "weight",
    ).order_by("triplet_id", "id")
    out: dict[int, tuple[tuple[int, int, int], list[int], list[float]]] = {}
    votes: dict[int, list[int]] = defaultdict(list)
    weights: dict[int, list[float]] = defaultdict(list)
    for triplet_id, a, b, c, odd, weight in rows:
        out.setdefault(triplet_id, ((a, b, c), votes[triplet_id], weights[triplet_id]))
        votes[triplet_id].append(odd)
        weights[triplet_id].append(weight)
    return out


def equal_weight_votes(
    split: str, kind: str
) -> dict[int, tuple[tuple[int, int, int], list[int], list[float]]]:
    """Votes as `triplet_votes` returns them, without automatic quality control: every
    non-practice, non-repeat answer not rejected, by a listener a curator did not exclude,
    each with weight 1 (imported ones per ODDBALL_TRAIN_IMPORTED)."""
    judgments = _training_sources(
        Judgment.objects.filter(
            practice=False,
            assignment__repeat_of__isnull=True,
            odd_slot__isnull=False,
            triplet__kind=kind,
            triplet__split=split,
        )
        .exclude(status=Judgment.Status.REJECTED)
        .exclude(listener__review=Listener.Review.EXCLUDED)
    )
    rows = judgments.values_list(
        "triplet_id",
        "triplet__snippet_a_id",
        "triplet__snippet_b_id",
        "triplet__snippet_c_id",
        "odd_slot",
    ).order_by("triplet_id", "id")
    out: dict[int, tuple[tuple[int, int, int], list[int], list[float]]] = {}
    for triplet_id, a, b, c, odd in rows:
        _, votes, weights = out.setdefault(triplet_id, ((a, b, c), [], []))
        votes.append(odd)
        weights.append(1.0)
    return out


def assignment_snippets(assignment: Assignment) -> list[tuple[str, object]]:
    """The snippets of an assignment in the order shown, as (position letter, Snippet)."""
    triplet = assignment.triplet
    by_slot = dict(
        zip(SLOTS, (triplet.snippet_a, triplet.snippet_b, triplet.snippet_c), strict=True)
    )
    return [("ABC"[i], by_slot[slot]) for i, slot in enumerate(assignment.order)]


EXPORT_COLUMNS = [
    "judgment_id",
    "triplet_id",
    "triplet_kind",
    "split",
    "gold_odd_slot",
    "snippet_a",
    "snippet_b",
    "snippet_c",
    "track_a",
    "track_b",
    "track_c",
    "start_s_a",
    "start_s_b",
    "start_s_c",
    "duration_s_a",
    "duration_s_b",
    "duration_s_c",
    "answer",
    "odd_snippet",
    "listener",
    "response_ms",
    "listen_ms_a",
    "listen_ms_b",
    "listen_ms_c",
    "plays_a",
    "plays_b",
    "plays_c",
    "seeks_a",
    "seeks_b",
    "seeks_c",
    "viewport",
    "language",
    "status",
    "weight",
    "created_at",
]


def judgment_export_rows(chunk: int = 2000) -> Iterator[tuple]:
    """Every judgment as one flat row in EXPORT_COLUMNS order, streamed from the database."""
    fields = ["id", "triplet_id", "triplet__kind", "triplet__split", "triplet__gold_odd"]
    for slot in SLOTS:
        fields.append(f"triplet__snippet_{slot}_id")
    for slot in SLOTS:
        fields.append(f"triplet__snippet_{slot}__track_id")
    for slot in SLOTS:
        fields.append(f"triplet__snippet_{slot}__start_s")
    for slot in SLOTS:
        fields.append(f"triplet__snippet_{slot}__duration_s")
    fields += [
        "odd_slot",
        "listener__pseudonym",
        "response_ms",
        "listen_ms",
        "plays",
        "seeks",
        "viewport",
        "language",
        "status",
        "weight",
        "created_at",
    ]
    judgments = counted_judgments().order_by("id")
    rows = judgments.values_list(*fields).iterator(chunk_size=chunk)
    for row in rows:
        head = row[:17]
        (odd, pseudonym, response_ms, listen_ms, plays, seeks, viewport, language) = row[17:25]
        status, weight, created = row[25:]
        snippets = row[5:8]
        yield (
            *head,
            "none" if odd is None else SLOTS[odd],
            None if odd is None else snippets[odd],
            pseudonym,
            response_ms,
            *(listen_ms or (None, None, None)),  # imported judgments have none
            *(plays or (None, None, None)),
            *(seeks or (None, None, None)),
            viewport,
            language,
            status,
            weight,
            created.isoformat(),
        )


def _votes(judgments: object) -> object:
    return judgments.filter(practice=False, status=Judgment.Status.ACCEPTED)


def listener_family(listener: Listener) -> list[int]:
    """The ids of every listener that is the same person: all of a signed-in user's devices."""
    if listener.user_id is None:
        return [listener.id]
    return list(Listener.objects.filter(user_id=listener.user_id).values_list("id", flat=True))


def answers_given(listener: Listener) -> int:
    """Answers given outside the practice round, across the person's devices."""
    family = listener_family(listener)
    return Judgment.objects.filter(listener_id__in=family, practice=False).count()


def transitions_rated(listener: Listener) -> int:
    """Transitions rated, across the person's devices."""
    family = listener_family(listener)
    return TransitionRating.objects.filter(listener_id__in=family).count()


def practice_left(listener: Listener) -> int:
    done = Judgment.objects.filter(listener_id__in=listener_family(listener), practice=True)
    return max(0, PRACTICE_ROUND - done.count())


def _others_votes(triplet_ids: list[int], family: list[int]) -> dict[int, Counter]:
    rows = (
        _votes(Judgment.objects.filter(triplet_id__in=triplet_ids))
        .exclude(listener_id__in=family)
        .values_list("triplet_id", "odd_slot")
        .annotate(n=Count("id"))
    )
    out: dict[int, Counter] = defaultdict(Counter)
    for triplet_id, odd_slot, n in rows:
        out[triplet_id][odd_slot] += n
    return out


def judgment_feedback(judgment: Judgment) -> dict:
    """What the page may tell a listener right after they answered.

    Others' answers on the triplet, by the positions this listener saw, once at least
    ODDBALL_FINISHED_VOTES others have answered (before that a count would mislead); and,
    in the practice round only, which snippet was the odd one.
    """
    order = judgment.assignment.order
    position_of = {SLOTS.index(order[i]): POSITIONS[i] for i in range(3)}
    votes = _others_votes([judgment.triplet_id], listener_family(judgment.listener))
    counts = votes.get(judgment.triplet_id, Counter())
    others = None
    if sum(counts.values()) >= settings.ODDBALL_FINISHED_VOTES:
        others = {position_of[slot]: counts.get(slot, 0) for slot in range(3)}
        others["none"] = counts.get(None, 0)
    practice_answer = None
    if judgment.practice and judgment.triplet.gold_odd is not None:  # a query, practice only
        practice_answer = position_of[judgment.triplet.gold_odd]
    return {"others": others, "practice_answer": practice_answer}


@dataclass
class HistoryRow:
    when: datetime
    picked: str  # title of the track picked as odd, or "" for can't tell
    titles: list[str]
    others: int  # others who answered the triplet
    agreeing: int  # of them, how many picked the same snippet


@dataclass
class ListenerSummary:
    answered: int
    finished: int  # answered triplets with enough answers from others to compare
    agreed: int  # of those, where this listener picked what most others picked
    recent: list[HistoryRow] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.finished if self.finished else None


def listener_summary(listener: Listener, recent: int = 20) -> ListenerSummary:
    """How a listener's answers compare with everyone else's, for the history page."""
    family = listener_family(listener)
    mine = list(
        Judgment.objects.filter(listener_id__in=family, practice=False)
        .order_by("-created_at")
        .values_list("triplet_id", "odd_slot", "created_at")
    )
    others = _others_votes([t for t, _, _ in mine], family)
    finished = agreed = 0
    for triplet_id, odd_slot, _ in mine:
        counts = others.get(triplet_id, Counter())
        if odd_slot is None or sum(counts.values()) < settings.ODDBALL_FINISHED_VOTES:
            continue
        finished += 1
        top = max(counts.values())
        agreed += counts.get(odd_slot, 0) == top
    summary = ListenerSummary(answered=len(mine), finished=finished, agreed=agreed)
    shown = mine[:recent]
    triplets = Triplet.objects.in_bulk([t for t, _, _ in shown])
    titles = _snippet_titles(triplets.values())
    for triplet_id, odd_slot, when in shown:
        triplet = triplets[triplet_id]
        names = [titles[s] for s in triplet.snippet_ids()]
        counts = others.get(triplet_id, Counter())
        summary.recent.append(
            HistoryRow(
                when=when,
                picked="" if odd_slot is None else names[odd_slot],
                titles=names,
                others=sum(counts.values()),
                agreeing=counts.get(odd_slot, 0),
            )
        )
    return summary


def _snippet_titles(triplets: object) -> dict[int, str]:
    ids = {s for t in triplets for s in t.snippet_ids()}
    rows = Snippet.objects.filter(id__in=ids).values_list("id", "track__title")
    return dict(rows)


def transition_tasks_unrendered(older_than_s: float) -> list[int]:
    """Ids of active transition tasks still without a rendering `older_than_s` after they
    were made: their render message was lost (a broker restart, a killed worker)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    rows = TransitionTask.objects.filter(active=True, rendering__isnull=True, created_at__lt=cutoff)
    return list(rows.order_by("id").values_list("id", flat=True))
