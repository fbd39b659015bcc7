"""Reads for the annotation app."""

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, connections
from django.db.backends.utils import CursorWrapper
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    Model,
    Q,
    QuerySet,
    Value,
    When,
)
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
# What quality control and curators let count, beside practice and repeats (never votes).
ACCEPTED_WORK = Q(status=Judgment.Status.ACCEPTED, listener__review__in=COUNTED_REVIEWS)


def counted_judgments() -> QuerySet[Judgment]:
    """Judgments that count as votes: accepted, not practice, not a repeat, by a listener
    neither flagged nor excluded; imported ones included (releases choose by `source`)."""
    return Judgment.objects.filter(
        ACCEPTED_WORK, practice=False, assignment__repeat_of__isnull=True
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
    return _grouped_votes(judgments, "weight")


def _grouped_votes(
    judgments: QuerySet, weight: str
) -> dict[int, tuple[tuple[int, int, int], list[int], list[float]]]:
    """{triplet id: ((a, b, c), odd slots, weights)} of `judgments`, the weights read from the
    field or annotation `weight`, in triplet then judgment order."""
    rows = judgments.values_list(
        "triplet_id",
        "triplet__snippet_a_id",
        "triplet__snippet_b_id",
        "triplet__snippet_c_id",
        "odd_slot",
        weight,
    ).order_by("triplet_id", "id")
    out: dict[int, tuple[tuple[int, int, int], list[int], list[float]]] = {}
    for triplet_id, a, b, c, odd, vote_weight in rows:
        _, votes, weights = out.setdefault(triplet_id, ((a, b, c), [], []))
        votes.append(odd)
        weights.append(vote_weight)
    return out


def judged_votes(
    split: str, kind: str
) -> dict[int, tuple[tuple[int, int, int], list[int], list[float]]]:
    """Every vote automatic quality control judges, as `triplet_votes` returns them but with
    the weight quality control gives each: its judgment's weight (the listener's reliability)
    while it counts, 0 while quality control holds it out (a flagged listener or judgment).
    Not practice, not a repeat, not rejected, by a listener a curator did not exclude:
    curators' decisions hold here too (imported ones per ODDBALL_TRAIN_IMPORTED).

    Training reads these rows for both weightings, in this order, so a run with reliability
    weights and one with equal weights (1 for every row) see the same rows."""
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
    counted_weight = Case(
        When(ACCEPTED_WORK, then=F("weight")), default=Value(0.0), output_field=FloatField()
    )
    return _grouped_votes(judgments.annotate(counted_weight=counted_weight), "counted_weight")


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


# Hand-written SQL for the hot listening paths ------------------------------------------------
# The serve and answer endpoints run hundreds of times a second (bench/load.py); building
# their queries through the ORM cost more CPU than running them. These helpers turn a row
# of plain SQL into a model instance exactly as the ORM would (same converters, so SQLite's
# text dates and JSON come back typed), without compiling a query each time.


def hot_cursor() -> CursorWrapper:
    """A cursor for the hot listening statements (serve, answer, listener lookup).

    On PostgreSQL it binds parameters on the server, so each statement is planned once per
    connection and then runs prepared: planning the serve and answer statements cost
    PostgreSQL more CPU than running them (about 1.6 against 0.7 ms, bench/load.py). Django
    leaves preparing off (for transaction-mode connection poolers, which this deployment
    does not use); the threshold set here matters to this cursor only, as Django's own
    cursors bind on the client and never prepare. Queries are logged and errors wrapped
    as on any Django cursor. Elsewhere, Django's usual cursor.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 0  # prepare on first use
    return connection._prepare_cursor(ServerBindingCursor(raw))


def _fields(model: type[Model], only: tuple[str, ...]) -> list:
    return [f for f in model._meta.concrete_fields if not only or f.attname in only]


def sql_columns(model: type[Model], alias: str, only: tuple[str, ...] = ()) -> str:
    """The model's concrete columns (or those in `only`) in field order, for a SELECT list."""
    return ", ".join(f'{alias}."{f.column}"' for f in _fields(model, only))


@cache
def _converters(model: type[Model], only: tuple[str, ...], vendor: str) -> list[tuple]:
    """(index, column, converters) of the fields that have converters on this backend (on
    PostgreSQL only the JSON ones; on SQLite dates too). Cached per vendor: they depend on
    the backend, not on the connection."""
    out = []
    for i, f in enumerate(_fields(model, only)):
        col = f.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(col) + f.get_db_converters(connection)
        if converters:
            out.append((i, col, converters))
    return out


@cache
def _attnames(model: type[Model], only: tuple[str, ...]) -> list[str]:
    return [f.attname for f in _fields(model, only)]


def model_from_row(
    model: type[Model], row: Sequence[object], only: tuple[str, ...] = (), using: str = "default"
) -> Model:
    """A model instance from a row of `sql_columns(model, alias, only)`, as the ORM builds
    it: fields left out of `only` are deferred (loaded on first use), as with `.only()`."""
    conn = connections[using]
    values = list(row)
    for i, col, converters in _converters(model, only, conn.vendor):
        for convert in converters:
            values[i] = convert(values[i], col, conn)
    return model.from_db(using, _attnames(model, only), values)


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


# What the answer's response tells the listener, in one statement that runs on every
# database (serving_sql.judgment_insert embeds it in the statement that stores the
# answer): answers given across the person's devices, others' votes on the triplet by slot
# (accepted, not practice, not this person's), and the triplet's gold answer.
OUTCOME_SQL = """SELECT
    (SELECT count(*) FROM annotation_judgment m
     WHERE m.listener_id {mine} AND m.practice = %(o_false)s) AS answered,
    count(CASE WHEN o.odd_slot = 0 THEN 1 END) AS n_a,
    count(CASE WHEN o.odd_slot = 1 THEN 1 END) AS n_b,
    count(CASE WHEN o.odd_slot = 2 THEN 1 END) AS n_c,
    count(CASE WHEN o.odd_slot IS NULL THEN 1 END) AS n_none,
    (SELECT t.gold_odd FROM annotation_triplet t WHERE t.id = {triplet}) AS gold_odd
FROM annotation_judgment o
WHERE o.triplet_id = {triplet} AND o.practice = %(o_false)s AND o.status = %(o_accepted)s
AND o.listener_id {theirs}"""
FAMILY_SQL = "(SELECT f.id FROM annotation_listener f WHERE f.user_id = %(o_user)s)"


def outcome_sql(family: bool, triplet: str = "%(o_triplet)s") -> str:
    """OUTCOME_SQL for a listener alone, or (`family`) for every listener of their user;
    `triplet` is the SQL naming the triplet's id."""
    if family:
        mine, theirs = f"IN {FAMILY_SQL}", f"NOT IN {FAMILY_SQL}"
    else:
        mine, theirs = "= %(o_listener)s", "<> %(o_listener)s"
    return OUTCOME_SQL.format(mine=mine, theirs=theirs, triplet=triplet)


def outcome_params(listener: Listener, triplet_id: int | None) -> dict:
    return {
        "o_listener": listener.id,
        "o_user": listener.user_id,
        "o_triplet": triplet_id,
        "o_false": False,
        "o_accepted": Judgment.Status.ACCEPTED.value,
    }


def outcome_from_row(row: Sequence, order: str, practice: bool) -> dict:
    """`judgment_outcome` from a row of OUTCOME_SQL.

    Others' answers are shown by the positions this listener saw, once at least
    ODDBALL_FINISHED_VOTES others have answered (before that a count would mislead); the
    odd one only in the practice round."""
    answered, *by_slot, n_none, gold_odd = row
    position_of = {SLOTS.index(order[i]): POSITIONS[i] for i in range(3)}
    others = None
    if sum(by_slot) + n_none >= settings.ODDBALL_FINISHED_VOTES:
        others = {position_of[slot]: by_slot[slot] for slot in range(3)}
        others["none"] = n_none
    practice_answer = None
    if practice and gold_odd is not None:
        practice_answer = position_of[gold_odd]
    return {"answered": answered, "others": others, "practice_answer": practice_answer}


def judgment_outcome(listener: Listener, judgment: Judgment, order: str) -> dict:
    """What the page may tell a listener right after they answered, in one query: the
    answers they have given (practice round aside, across their devices), others' answers
    on the triplet (see `outcome_from_row`) and, in the practice round, the odd one.
    `order` is the judgment's assignment's."""
    sql = outcome_sql(listener.user_id is not None)
    with hot_cursor() as cursor:
        cursor.execute(sql, outcome_params(listener, judgment.triplet_id))
        row = cursor.fetchone()
    return outcome_from_row(row, order, judgment.practice)


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
