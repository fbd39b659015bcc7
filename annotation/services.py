"""Writes for the annotation app: triplets, listeners, assignments and judgments."""

import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from annotation.models import SLOTS, Assignment, Judgment, Listener, Triplet
from embeddings.models import Snippet, Split, Track

POSITIONS = "ABC"  # what listeners see
# Serving an assignment shows its three snippets: fetch them in the same query.
SNIPPET_FIELDS = ("snippet_a", "snippet_b", "snippet_c")


class AnnotationError(Exception):
    """A request that cannot be honoured; `status` is the HTTP status that fits."""

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
        raise AnnotationError("Consent is required before listening.", status=400)
    return Listener.objects.create(
        token=secrets.token_urlsafe(32),
        pseudonym="L" + secrets.token_hex(6),
        user=user if getattr(user, "is_authenticated", False) else None,
        consented_at=timezone.now(),
    )


def assignment_next(listener: Listener) -> Assignment | None:
    """The listener's open assignment, or a new one for the least-voted triplet they have not
    seen. None when nothing is left for them.

    Runs in its own transaction. On PostgreSQL the chosen triplet row is locked with
    SKIP LOCKED, so concurrent listeners are handed different triplets instead of queueing
    on one row; the `served` counter then spreads the next requests.
    """
    now = timezone.now()
    open_one = (
        Assignment.objects.filter(listener=listener, answered_at__isnull=True, expires_at__gt=now)
        .select_related(*(f"triplet__{f}" for f in SNIPPET_FIELDS))
        .order_by("-created_at")
        .first()
    )
    if open_one:
        return open_one
    with transaction.atomic():
        candidates = (
            Triplet.objects.filter(active=True)
            .exclude(assignments__listener=listener)
            .order_by("votes", "served", "id")
            .select_related(*SNIPPET_FIELDS)
            .select_for_update(skip_locked=True, of=("self",))
        )
        triplet = candidates.first()
        if triplet is None:
            return None
        Triplet.objects.filter(id=triplet.id).update(served=F("served") + 1)
        order = "".join(random.sample(SLOTS, 3))
        ttl = timedelta(seconds=settings.ODDBALL_ASSIGNMENT_TTL_S)
        return Assignment.objects.create(
            triplet=triplet, listener=listener, order=order, expires_at=now + ttl
        )


@dataclass
class SubmitResult:
    judgment: Judgment
    created: bool


def judgment_submit(
    listener: Listener,
    assignment_id: int,
    answer: str,
    response_ms: int,
    listen_ms: list[int],
) -> SubmitResult:
    """Record the listener's answer ("A", "B", "C" or "none") to one assignment.

    Idempotent: a repeated submit returns the stored judgment (created=False). Another
    listener's assignment is refused (403) and an expired one too (410). Holds a row lock
    on the assignment for the length of its transaction.
    """
    if answer not in {*POSITIONS, "none"}:
        raise AnnotationError("answer must be one of A, B, C or none")
    if len(listen_ms) != 3 or any(int(ms) < 0 for ms in listen_ms) or response_ms < 0:
        raise AnnotationError("listen_ms needs three non-negative numbers")
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update().filter(id=assignment_id).first()
        if assignment is None or assignment.listener_id != listener.id:
            raise AnnotationError("This assignment is not yours.", status=403)
        existing = Judgment.objects.filter(assignment=assignment).first()
        if existing:
            return SubmitResult(existing, created=False)
        if assignment.expires_at <= timezone.now():
            raise AnnotationError("This assignment has expired; ask for a new one.", status=410)
        # Listeners answer and report times by displayed position; store by triplet slot.
        slot_of = {POSITIONS[i]: SLOTS.index(assignment.order[i]) for i in range(3)}
        by_slot = [0, 0, 0]
        for i, ms in enumerate(listen_ms):
            by_slot[slot_of[POSITIONS[i]]] = int(ms)
        try:
            with transaction.atomic():
                judgment = Judgment.objects.create(
                    assignment=assignment,
                    triplet_id=assignment.triplet_id,
                    listener=listener,
                    odd_slot=None if answer == "none" else slot_of[answer],
                    response_ms=int(response_ms),
                    listen_ms=by_slot,
                )
        except IntegrityError:
            return SubmitResult(Judgment.objects.get(assignment=assignment), created=False)
        assignment.answered_at = timezone.now()
        assignment.save(update_fields=["answered_at"])
        Triplet.objects.filter(id=assignment.triplet_id).update(votes=F("votes") + 1)
    return SubmitResult(judgment, created=True)
