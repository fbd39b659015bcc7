"""Writes for transitions: transition tasks (model-proposed, random, true continuations),
their renderings, assignments and ratings. Same rules as the triplet services."""

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from annotation.models import (
    Assignment,
    Judgment,
    Listener,
    TransitionAssignment,
    TransitionRating,
    TransitionTask,
)
from annotation.services import MAX_WAIT_MS, AnnotationError
from embeddings.models import Clip, Rendering, Split, Track
from embeddings.selectors import clips_next
from embeddings.services import rendering_make

TRANSITION_KINDS = TransitionTask.Kind.values


def transition_shares_parse(text: str) -> dict[str, float]:
    """ "model=0.5,random=0.3,true=0.2" as a dict whose shares sum to 1 (ValueError if bad)."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _sep, value = part.partition("=")
        if kind not in TRANSITION_KINDS:
            raise ValueError(f"unknown transition kind {kind!r}: {', '.join(TRANSITION_KINDS)}")
        try:
            shares[kind] = float(value)
        except ValueError:
            raise ValueError(f"share of {kind} is not a number: {value!r}") from None
    total = sum(shares.values())
    if not shares or total <= 0 or any(v < 0 for v in shares.values()):
        raise ValueError(f"shares must be non-negative and not all zero: {text!r}")
    return {kind: shares.get(kind, 0.0) / total for kind in TRANSITION_KINDS}


def transition_tasks_make(
    count: int,
    shares: dict[str, float] | None = None,
    proposer_space: str | None = None,
    seed: int | None = None,
) -> list[TransitionTask]:
    """Create up to `count` transition tasks, split by `shares` between pairs proposed by
    `proposer_space` (the top 10 next clips by its index), random pairs of two tracks, and
    true continuations. Pairs are drawn within one split, so ratings on test-split tracks
    evaluate models on tracks they never trained on. Each task gets a random style and keeps
    the shares in force. The caller renders them (`transition_task_render`) on commit.

    Without a proposer index the model share is left unmade rather than faked: the returned
    tasks say what was made.
    """
    shares = shares or transition_shares_parse(settings.ODDBALL_TRANSITION_SHARES)
    rng = random.Random(seed)
    clips = list(
        Clip.objects.filter(track__status=Track.Status.APPROVED, track__hidden=False)
        .exclude(track__original="")
        .values_list("id", "track_id", "track__split", "start_s", "duration_s")
    )
    by_split: dict[str, list[tuple]] = defaultdict(list)
    for row in clips:
        by_split[row[2]].append(row)
    taken = set(TransitionTask.objects.values_list("clip_x_id", "clip_y_id", "style"))
    wanted = {kind: round(count * share) for kind, share in shares.items()}
    new: list[TransitionTask] = []
    splits = [s for s in Split.values if len({r[1] for r in by_split[s]}) >= 2]
    if not splits:
        return []
    weights = [len(by_split[s]) for s in splits]
    for kind, n in wanted.items():
        made = attempts = 0
        while made < n and attempts < n * 20:
            attempts += 1
            split = rng.choices(splits, weights)[0]
            pair = _transition_pair(kind, by_split[split], rng, proposer_space)
            if pair is None:
                continue
            x, y, score = pair
            style = rng.choice(Rendering.Style.values)
            if (x, y, style) in taken:
                continue
            taken.add((x, y, style))
            new.append(
                TransitionTask(
                    clip_x_id=x,
                    clip_y_id=y,
                    style=style,
                    kind=kind,
                    proposed_by=(proposer_space or "") if kind == "model" else "",
                    score=score,
                    shares=shares,
                    split=split,
                )
            )
            made += 1
    return TransitionTask.objects.bulk_create(new, batch_size=500)


def _transition_pair(
    kind: str, clips: list[tuple], rng: random.Random, proposer_space: str | None
) -> tuple[int, int, float | None] | None:
    """(clip x, clip y, score) for one task of `kind`, or None when this draw found none."""
    cid, track, _split, start, duration = rng.choice(clips)
    end = round(start + duration, 3)
    if kind == TransitionTask.Kind.TRUE:
        # The clip that holds what followed X's end (clips overlap, so it is the next one).
        edge = settings.ODDBALL_CLIP_EDGE_S
        for other, other_track, _s, other_start, other_duration in clips:
            if (
                other_track == track
                and other_start <= end
                and end + edge <= other_start + other_duration
            ):
                return cid, other, None
        return None
    if kind == TransitionTask.Kind.RANDOM:
        others = [r for r in clips if r[1] != track]
        return (cid, rng.choice(others)[0], None) if others else None
    if not proposer_space:
        return None
    in_split = {r[0] for r in clips}
    ranked = [c for c in clips_next(cid, proposer_space, k=30) if c.clip_id in in_split][:10]
    if not ranked:
        return None
    pick = rng.choice(ranked)
    return cid, pick.clip_id, pick.score


def transition_task_render(task_id: int) -> int:
    """Render a task's transition (idempotent) and attach it; returns the rendering id.

    The overlay mask's seed is the task id, so overlays differ from task to task."""
    task = TransitionTask.objects.get(id=task_id)
    if task.rendering_id:
        return task.rendering_id
    seed = task.id if task.style == Rendering.Style.OVERLAY else 0
    rendering, _created = rendering_make(task.clip_x_id, task.clip_y_id, task.style, seed)
    TransitionTask.objects.filter(id=task.id, rendering__isnull=True).update(rendering=rendering)
    return rendering.id


def transition_assignment_next(
    listener: Listener, exclude: Iterable[int] = ()
) -> TransitionAssignment | None:
    """The listener's open transition assignment, or a new one for the least-rated rendered
    task they have not rated; None when none is left. Locks like `assignment_next`."""
    now = timezone.now()
    open_one = (
        TransitionAssignment.objects.filter(
            listener=listener,
            answered_at__isnull=True,
            skipped_at__isnull=True,
            expires_at__gt=now,
            task__active=True,  # a curator may have hidden one of its tracks meanwhile
        )
        .exclude(id__in=list(exclude))
        .select_related("task__rendering")
        .order_by("created_at")
        .first()
    )
    if open_one:
        return open_one
    with transaction.atomic():
        task = (
            TransitionTask.objects.filter(active=True, rendering__isnull=False)
            .exclude(assignments__listener=listener)
            .order_by("votes", "served", "id")
            .select_related("rendering")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if task is None:
            return None
        TransitionTask.objects.filter(id=task.id).update(served=F("served") + 1)
        ttl = timedelta(seconds=settings.ODDBALL_ASSIGNMENT_TTL_S)
        return TransitionAssignment.objects.create(
            task=task, listener=listener, expires_at=now + ttl
        )


def transition_assignment_skip(
    listener: Listener, assignment_id: int, reason: str
) -> TransitionAssignment:
    """Give a transition assignment back unanswered (see `assignment_skip`)."""
    if reason not in Assignment.SkipReason.values:
        raise AnnotationError(f"reason must be one of {', '.join(Assignment.SkipReason.values)}")
    with transaction.atomic():
        assignment = (
            TransitionAssignment.objects.select_for_update().filter(id=assignment_id).first()
        )
        if assignment is None or assignment.listener_id != listener.id:
            raise AnnotationError(_("This assignment is not yours."), status=403)
        if assignment.answered_at is not None:
            raise AnnotationError(_("This assignment is already answered."), status=409)
        if assignment.skipped_at is None:
            assignment.skipped_at = timezone.now()
            assignment.skip_reason = reason
            assignment.save(update_fields=["skipped_at", "skip_reason"])
            TransitionTask.objects.filter(id=assignment.task_id).update(
                served=Greatest(F("served") - 1, 0)
            )
    return assignment


@dataclass
class Rating:
    """One transition rating as the page or an API client sends it (see `Answer`)."""

    assignment_id: int
    rating: int  # 1 jarring … 5 seamless
    response_ms: int
    listen_ms: int
    broke_at_s: float | None = None  # where "it broke here" was tapped, s into the rendering
    plays: int | None = None
    seeks: int | None = None
    viewport: str = ""
    language: str = ""
    waited_ms: int = 0


@dataclass
class RatingResult:
    rating: TransitionRating
    created: bool


def transition_rating_submit(listener: Listener, rating: Rating) -> RatingResult:
    """Record a listener's rating of one transition. Idempotent like `judgment_submit`
    (a repeat returns the stored rating), with the same 403/409/410 rules and outbox grace.
    Holds a row lock on the assignment for its transaction."""
    if not 1 <= rating.rating <= 5:
        raise AnnotationError("rating must be 1 (jarring) to 5 (seamless)")
    if min(rating.response_ms, rating.listen_ms, rating.waited_ms) < 0:
        raise AnnotationError("response_ms, listen_ms and waited_ms must not be negative")
    if (rating.plays or 0) < 0 or (rating.seeks or 0) < 0:
        raise AnnotationError("plays and seeks must not be negative")
    if rating.viewport not in {"", *Judgment.Viewport.values}:
        raise AnnotationError("viewport must be phone or desktop")
    with transaction.atomic():
        assignment = (
            TransitionAssignment.objects.select_for_update(of=("self",))
            .select_related("task__rendering")
            .filter(id=rating.assignment_id)
            .first()
        )
        if assignment is None or assignment.listener_id != listener.id:
            raise AnnotationError(_("This assignment is not yours."), status=403)
        existing = TransitionRating.objects.filter(assignment=assignment).first()
        if existing:
            return RatingResult(existing, created=False)
        if assignment.skipped_at is not None:
            raise AnnotationError(_("This assignment was skipped."), status=409)
        grace = timedelta(milliseconds=min(rating.waited_ms, MAX_WAIT_MS))
        if assignment.expires_at + grace <= timezone.now():
            raise AnnotationError(_("This assignment has expired; ask for a new one."), status=410)
        length = assignment.task.rendering.duration_s
        if rating.broke_at_s is not None and not 0 <= rating.broke_at_s <= length:
            raise AnnotationError(f"broke_at_s must be within the rendering (0-{length:g} s)")
        try:
            with transaction.atomic():
                stored = TransitionRating.objects.create(
                    assignment=assignment,
                    task_id=assignment.task_id,
                    listener=listener,
                    rating=rating.rating,
                    broke_at_s=rating.broke_at_s,
                    response_ms=int(rating.response_ms),
                    listen_ms=int(rating.listen_ms),
                    plays=rating.plays,
                    seeks=rating.seeks,
                    viewport=rating.viewport,
                    language=rating.language[:16],
                )
        except IntegrityError:
            return RatingResult(TransitionRating.objects.get(assignment=assignment), False)
        assignment.answered_at = timezone.now()
        assignment.save(update_fields=["answered_at"])
        TransitionTask.objects.filter(id=assignment.task_id).update(votes=F("votes") + 1)
    return RatingResult(stored, created=True)
