"""Writes for the annotation app: triplets, listeners, assignments, judgments, reports.
Transitions have their own module, annotation/transition_services.py."""

import random
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation import selectors, serving_sql
from annotation.models import (
    SLOTS,
    Assignment,
    Judgment,
    Listener,
    SnippetReport,
    TransitionAssignment,
    TransitionRating,
    Triplet,
)
from annotation.serving_sql import SNIPPET_FIELDS, SNIPPET_UNSHOWN
from embeddings.models import Snippet, Split, Track

POSITIONS = "ABC"  # what listeners see


class AnnotationError(Exception):
    """A request that cannot be honoured; `status` is the HTTP status that fits.

    Messages a listener may read are translated; those only a client's programmer sees are not."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


def triplets_make(count: int, gold_share: float = 0.1, seed: int | None = None) -> int:
    """Create up to `count` new triplets, `gold_share` of them gold. Returns how many.

    Triplets are drawn within one split so held-out evaluation has whole triplets of unseen
    tracks; splits get triplets in proportion to their snippets. Random triplets take three
    snippets of three different tracks; gold ones take two snippets of one track and one of
    another, the odd one in a random slot. A triplet that already exists is not repeated.
    """
    if not 0.0 <= gold_share <= 1.0:
        raise ValueError("gold_share must be between 0 and 1")
    rng = random.Random(seed)
    by_split: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    visible = Snippet.objects.filter(hidden=False, track__status=Track.Status.APPROVED)
    for snippet_id, track_id, split in visible.values_list("id", "track_id", "track__split"):
        by_split[split][track_id].append(snippet_id)
    total = sum(len(s) for tracks in by_split.values() for s in tracks.values())
    if total == 0:
        return 0
    seen = {
        frozenset(t) for t in Triplet.objects.values_list("snippet_a", "snippet_b", "snippet_c")
    }
    new: list[Triplet] = []
    for split in Split.values:
        tracks = {t: s for t, s in by_split[split].items() if s}
        n_snippets = sum(len(s) for s in tracks.values())
        quota = round(count * n_snippets / total)
        if len(tracks) < 2:
            continue
        attempts = 0
        made = 0
        while made < quota and attempts < quota * 20:
            attempts += 1
            gold = rng.random() < gold_share
            slots = _draw_gold(rng, tracks) if gold else _draw_random(rng, tracks)
            if slots is None or frozenset(slots[0]) in seen:
                continue
            ids, odd = slots
            seen.add(frozenset(ids))
            new.append(
                Triplet(
                    snippet_a_id=ids[0],
                    snippet_b_id=ids[1],
                    snippet_c_id=ids[2],
                    kind=Triplet.Kind.GOLD if gold else Triplet.Kind.RANDOM,
                    split=split,
                    gold_odd=odd,
                )
            )
            made += 1
    Triplet.objects.bulk_create(new, batch_size=500)
    return len(new)


def _draw_random(rng: random.Random, tracks: dict[int, list[int]]) -> tuple[list[int], None] | None:
    if len(tracks) < 3:
        return None
    chosen = rng.sample(sorted(tracks), 3)
    return [rng.choice(tracks[t]) for t in chosen], None


def _draw_gold(rng: random.Random, tracks: dict[int, list[int]]) -> tuple[list[int], int] | None:
    pairs = [t for t, s in tracks.items() if len(s) >= 2]
    if not pairs:
        return None
    same = rng.choice(sorted(pairs))
    other = rng.choice(sorted(t for t in tracks if t != same))
    ids = [*rng.sample(tracks[same], 2), rng.choice(tracks[other])]
    odd = rng.randrange(3)
    ids[2], ids[odd] = ids[odd], ids[2]
    return ids, odd


def listener_create(consent: bool, user: object | None = None) -> Listener:
    """A new pseudonymous listener; consent to the published-under-a-pseudonym terms is required."""
    if not consent:
        raise AnnotationError(_("Consent is required before listening."), status=400)
    return Listener.objects.create(
        token=secrets.token_urlsafe(32),
        pseudonym="L" + secrets.token_hex(6),
        user=user if getattr(user, "is_authenticated", False) else None,
        consented_at=timezone.now(),
    )


DB_ID_MAX = 2**63 - 1  # bigint: a larger number names no row
HOT_SQL = True  # tests turn it off to run the portable path on PostgreSQL too


def _hot_sql() -> bool:
    """Whether the hot paths run as single hand-written statements (PostgreSQL only: they
    need data-modifying CTEs and SKIP LOCKED). Other databases, SQLite above all, take the
    ORM path, which behaves the same; tests run both (tests/annotation/test_hot_paths.py)."""
    return HOT_SQL and connection.vendor == "postgresql"


def assignment_next(
    listener: Listener, practice: bool = False, exclude: Iterable[int] = ()
) -> Assignment | None:
    """The listener's open assignment, or a new one for the least-voted triplet they have not
    seen. None when nothing is left for them.

    `exclude` names assignments the caller already holds, so the listening page can fetch
    the next triplet while the current one is being answered. `practice` serves gold
    triplets for the practice round instead; their answers never count as votes. Now and
    then the new one is a repeat of a triplet already answered (see `_repeat_make`).

    On PostgreSQL the chosen triplet row is locked with SKIP LOCKED, so concurrent
    listeners are handed different triplets instead of queueing on one row; the `served`
    counter then spreads the next requests. Looking for an open assignment, picking,
    counting and creating the new one are one statement there (`serving_sql.assignment_make`),
    atomic on its own; elsewhere one transaction (`_assignment_make_orm`).
    """
    now = timezone.now()
    exclude = [i for i in exclude if i <= DB_ID_MAX]
    repeat_due = not practice and random.random() < settings.ODDBALL_QUALITY_REPEAT_SHARE
    order = "".join(random.sample(SLOTS, 3))
    expires_at = now + timedelta(seconds=settings.ODDBALL_ASSIGNMENT_TTL_S)
    if _hot_sql() and not repeat_due:
        open_id, made = serving_sql.assignment_make(
            listener, practice, exclude, order, now, expires_at
        )
        return made if open_id is None else _assignment_get(open_id)
    open_id = serving_sql.open_assignment_id(listener, practice, exclude, now)
    if open_id is not None:
        return _assignment_get(open_id)
    if repeat_due and (repeat := _repeat_make(listener, now)) is not None:
        return repeat
    if _hot_sql():
        return serving_sql.assignment_make(listener, practice, exclude, order, now, expires_at)[1]
    return _assignment_make_orm(listener, practice, order, expires_at)


def _assignment_get(assignment_id: int) -> Assignment:
    """An assignment with what its payload shows of its triplet's snippets."""
    return (
        Assignment.objects.select_related(*(f"triplet__{f}" for f in SNIPPET_FIELDS))
        .defer(*(f"triplet__{f}__{u}" for f in SNIPPET_FIELDS for u in SNIPPET_UNSHOWN))
        .get(id=assignment_id)
    )


def _assignment_make_orm(
    listener: Listener, practice: bool, order: str, expires_at: datetime
) -> Assignment | None:
    """A new assignment in one transaction; the triplet row stays locked until it commits."""
    with transaction.atomic():
        candidates = Triplet.objects.filter(active=True).exclude(assignments__listener=listener)
        if practice:
            candidates = candidates.filter(kind=Triplet.Kind.GOLD)
        # Ordered exactly as the `triplet_serving` index (active, votes, served), so the
        # first unlocked row comes straight off the index; an `id` tie-break would make
        # PostgreSQL read and sort every triplet tied for the fewest votes on each request
        # (25 ms at 6,000 triplets, bench/load.py). Ties go in index order.
        triplet = (
            candidates.order_by("votes", "served")
            .select_related(*SNIPPET_FIELDS)
            .defer(*(f"{f}__{u}" for f in SNIPPET_FIELDS for u in SNIPPET_UNSHOWN))
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if triplet is None:
            return None
        Triplet.objects.filter(id=triplet.id).update(served=F("served") + 1)
        return Assignment.objects.create(
            triplet=triplet,
            listener=listener,
            order=order,
            practice=practice,
            expires_at=expires_at,
        )


# The listener's answered assignments (no practice, no repeat, triplet still active): how
# many, and one at random of those not repeated yet. Runs on every database.
REPEAT_SQL = """SELECT id, triplet_id, "order", n FROM (
    SELECT a.id, a.triplet_id, a."order", count(*) OVER () AS n,
        NOT EXISTS (SELECT 1 FROM annotation_assignment r WHERE r.repeat_of_id = a.id) AS fresh
    FROM annotation_assignment a JOIN annotation_triplet t ON t.id = a.triplet_id
    WHERE a.listener_id = %(listener)s AND a.practice = %(false)s AND a.repeat_of_id IS NULL
    AND a.answered_at IS NOT NULL AND t.active = %(true)s
) answered WHERE fresh ORDER BY random() LIMIT 1"""


def _repeat_make(listener: Listener, now: datetime) -> Assignment | None:
    """Now and then (ODDBALL_QUALITY_REPEAT_SHARE of the time, once the listener has given
    ODDBALL_QUALITY_REPEAT_AFTER answers) a triplet they answered before, again, for the
    self-consistency check. It is shown in an order that moves every slot to another
    position, so pressing the same position twice does not look consistent. A repeat is
    no vote: counted_judgments leaves it out. None when no repeat is due; the caller has
    drawn the ODDBALL_QUALITY_REPEAT_SHARE chance."""
    with selectors.hot_cursor() as cursor:
        cursor.execute(REPEAT_SQL, {"listener": listener.id, "false": False, "true": True})
        row = cursor.fetchone()
    if row is None or row[3] < settings.ODDBALL_QUALITY_REPEAT_AFTER:
        return None
    original_id, triplet_id, original_order, _ = row
    # The two orders with no slot at the position it had: rotations by one and by two.
    shift = random.choice((1, 2))
    order = original_order[shift:] + original_order[:shift]
    ttl = timedelta(seconds=settings.ODDBALL_ASSIGNMENT_TTL_S)
    try:
        with transaction.atomic():
            repeat = Assignment.objects.create(
                triplet_id=triplet_id,
                listener=listener,
                order=order,
                repeat_of_id=original_id,
                expires_at=now + ttl,
            )
    except IntegrityError:  # a concurrent request repeated the same one
        return None
    return _assignment_get(repeat.id)


def assignment_skip(listener: Listener, assignment_id: int, reason: str) -> Assignment:
    """Give an assignment back unanswered, e.g. when its audio would not load.

    The triplet returns to the pool for other listeners (its `served` count is taken back);
    this listener is not asked it again. Idempotent; an answered assignment cannot be
    skipped (409). Holds a row lock on the assignment for its transaction.
    """
    if reason not in Assignment.SkipReason.values:
        raise AnnotationError(f"reason must be one of {', '.join(Assignment.SkipReason.values)}")
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().filter(id=assignment_id).first()
        if assignment is None or assignment.listener_id != listener.id:
            raise AnnotationError(_("This assignment is not yours."), status=403)
        if assignment.answered_at is not None:
            raise AnnotationError(_("This assignment is already answered."), status=409)
        if assignment.skipped_at is None:
            assignment.skipped_at = timezone.now()
            assignment.skip_reason = reason
            assignment.save(update_fields=["skipped_at", "skip_reason"])
            if assignment.repeat_of_id is None:  # a repeat never added to `served`
                Triplet.objects.filter(id=assignment.triplet_id).update(
                    served=Greatest(F("served") - 1, 0)
                )
    return assignment


@dataclass
class Answer:
    """One answer as the listening page or an API client sends it, by displayed position.

    `waited_ms` is how long the answer sat in the client's outbox while offline: an answer
    given in time but delivered late is still accepted, up to MAX_WAIT_MS.
    """

    assignment_id: int
    answer: str  # "A", "B", "C" or "none"
    response_ms: int
    listen_ms: list[int]
    plays: list[int] | None = None
    seeks: list[int] | None = None
    viewport: str = ""
    language: str = ""
    waited_ms: int = 0


MAX_WAIT_MS = 24 * 3600 * 1000


@dataclass
class SubmitResult:
    judgment: Judgment
    created: bool
    # What the answer's response tells the listener (selectors.judgment_outcome), when the
    # statement that stored the judgment read it too; None: the caller asks for it.
    outcome: dict | None = None


def _per_position(name: str, values: list[int] | None) -> list[int] | None:
    if values is None:
        return None
    if len(values) != 3 or any(int(v) < 0 for v in values):
        raise AnnotationError(f"{name} needs three non-negative numbers")
    return [int(v) for v in values]


def judgment_submit(listener: Listener, answer: Answer) -> SubmitResult:
    """Record the listener's answer to one assignment.

    Idempotent: a repeated submit returns the stored judgment (created=False). Another
    listener's assignment is refused (403), a skipped one too (409), and an expired one
    (410) unless the answer waited in the client's outbox past the expiry. Holds a row lock
    on the assignment for the length of its transaction.

    On PostgreSQL the usual case (a first, valid answer) is one statement that also reads
    the response's feedback (`serving_sql.judgment_insert`); every other case, and every other
    database, goes through `_judgment_submit_orm`, which tells them apart.
    """
    if answer.answer not in {*POSITIONS, "none"}:
        raise AnnotationError("answer must be one of A, B, C or none")
    if answer.response_ms < 0 or answer.waited_ms < 0:
        raise AnnotationError("response_ms and waited_ms must not be negative")
    if answer.viewport not in {"", *Judgment.Viewport.values}:
        raise AnnotationError("viewport must be phone or desktop")
    per_position = {
        "listen_ms": _per_position("listen_ms", answer.listen_ms),
        "plays": _per_position("plays", answer.plays),
        "seeks": _per_position("seeks", answer.seeks),
    }
    if not 0 < answer.assignment_id <= DB_ID_MAX:
        raise AnnotationError(_("This assignment is not yours."), status=403)
    position = None if answer.answer == "none" else POSITIONS.index(answer.answer)
    if _hot_sql() and (
        done := serving_sql.judgment_insert(
            listener, answer, position, per_position, _expiry_cutoff(answer)
        )
    ):
        return SubmitResult(done[0], created=True, outcome=done[1])
    return _judgment_submit_orm(listener, answer, per_position)


def _judgment_make(
    listener: Listener, answer: Answer, per_position: dict, assignment: Assignment
) -> Judgment:
    """The unsaved judgment: answers and reports by displayed position, stored by slot."""
    slot_of = [SLOTS.index(assignment.order[i]) for i in range(3)]

    def by_slot(values: list[int] | None) -> list[int] | None:
        if values is None:
            return None
        out = [0, 0, 0]
        for i, v in enumerate(values):
            out[slot_of[i]] = v
        return out

    return Judgment(
        assignment_id=assignment.id,
        triplet_id=assignment.triplet_id,
        listener=listener,
        odd_slot=None if answer.answer == "none" else slot_of[POSITIONS.index(answer.answer)],
        response_ms=int(answer.response_ms),
        listen_ms=by_slot(per_position["listen_ms"]),
        plays=by_slot(per_position["plays"]),
        seeks=by_slot(per_position["seeks"]),
        viewport=answer.viewport,
        language=answer.language[:16],
        practice=assignment.practice,
    )


def _expiry_cutoff(answer: Answer) -> datetime:
    """An assignment expiring after this still takes the answer: now, less the outbox wait."""
    return timezone.now() - timedelta(milliseconds=min(answer.waited_ms, MAX_WAIT_MS))


def _judgment_submit_orm(listener: Listener, answer: Answer, per_position: dict) -> SubmitResult:
    """`judgment_submit` in one transaction, with a row lock on the assignment."""
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().filter(id=answer.assignment_id).first()
        if assignment is None or assignment.listener_id != listener.id:
            raise AnnotationError(_("This assignment is not yours."), status=403)
        # Its own statement, after the lock: a concurrent double submit that waited on the
        # lock sees the judgment the first one committed (a join in the locking query would
        # not: PostgreSQL rechecks only the locked row).
        existing = Judgment.objects.filter(assignment=assignment).first()
        if existing:
            existing.assignment = assignment  # its `order` shapes the feedback
            return SubmitResult(existing, created=False)
        if assignment.skipped_at is not None:
            raise AnnotationError(_("This assignment was skipped."), status=409)
        if assignment.expires_at <= _expiry_cutoff(answer):
            raise AnnotationError(_("This assignment has expired; ask for a new one."), status=410)
        # No savepoint for a concurrent double submit: it waits on the row lock above and
        # then finds this judgment. The unique assignment still guards the table.
        judgment = _judgment_make(listener, answer, per_position, assignment)
        judgment.assignment = assignment
        judgment.save(force_insert=True)
        assignment.answered_at = timezone.now()
        assignment.save(update_fields=["answered_at"])
        if not assignment.practice and assignment.repeat_of_id is None:
            Triplet.objects.filter(id=assignment.triplet_id).update(votes=F("votes") + 1)
    return SubmitResult(judgment, created=True)


def snippet_report(
    listener: Listener, snippet_id: int, reason: str, note: str = ""
) -> SnippetReport:
    """File a listener's report on a snippet they were served. Idempotent per reason."""
    if reason not in SnippetReport.Reason.values:
        raise AnnotationError(f"reason must be one of {', '.join(SnippetReport.Reason.values)}")
    served = Assignment.objects.filter(listener=listener).filter(
        Q(triplet__snippet_a_id=snippet_id)
        | Q(triplet__snippet_b_id=snippet_id)
        | Q(triplet__snippet_c_id=snippet_id)
    )
    if not served.exists():
        raise AnnotationError(_("You can only report snippets you were played."), status=403)
    report, _created = SnippetReport.objects.get_or_create(
        snippet_id=snippet_id, listener=listener, reason=reason, defaults={"note": note[:500]}
    )
    return report


def listener_claim(listener: Listener | None, user: AbstractBaseUser) -> Listener | None:
    """The listener a signed-in user listens as from now on, keeping every answer given;
    None when the user has none yet and the device brings none (consent comes first).

    A user's first listener is their own. When a device brings another listener with
    answers, its assignments move to the user's listener, except triplets both have
    answered: those stay where they are, and that listener is linked to the user too, so
    nothing is lost and no triplet gets two votes from one person.
    """
    own = Listener.objects.filter(user=user).order_by("created_at", "id").first()
    if listener is None or listener == own:
        return own
    if listener.user_id not in (None, user.pk):
        # Another account's listener on a shared device: leave it alone.
        return own
    with transaction.atomic():
        if own is None:
            listener.user = user
            listener.save(update_fields=["user"])
            return listener
        taken = Assignment.objects.filter(listener=own).values("triplet_id")
        moving = Assignment.objects.filter(listener=listener).exclude(triplet_id__in=taken)
        ids = list(moving.values_list("id", flat=True))
        Judgment.objects.filter(assignment_id__in=ids).update(listener=own)
        SnippetReport.objects.filter(listener=listener).exclude(
            snippet_id__in=SnippetReport.objects.filter(listener=own).values("snippet_id")
        ).update(listener=own)
        Assignment.objects.filter(id__in=ids).update(listener=own)
        # Transitions likewise: a task both have rated stays with the device's pseudonym.
        rated = TransitionAssignment.objects.filter(listener=own).values("task_id")
        moving_t = TransitionAssignment.objects.filter(listener=listener).exclude(task_id__in=rated)
        ids_t = list(moving_t.values_list("id", flat=True))
        TransitionRating.objects.filter(assignment_id__in=ids_t).update(listener=own)
        TransitionAssignment.objects.filter(id__in=ids_t).update(listener=own)
        listener.user = user
        listener.save(update_fields=["user"])
    return own
