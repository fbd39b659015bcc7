"""Reads for the curator pages (/curate/): counts, queues, samples of a listener's answers
and audit logs."""

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet

from annotation.models import SLOTS, AuditEntry, Judgment, Listener, SnippetReport
from embeddings.models import Snippet, Track

QUEUE_SIZE = 50  # rows per queue page; a curator works through them and the next ones move up
AUDIT_PAGE = 100


def curate_counts() -> dict[str, int]:
    """How much is waiting for a curator, and how much has been set aside."""
    reviews = dict(Listener.objects.values_list("review").annotate(n=Count("id")))
    tracks = Track.objects.aggregate(
        pending=Count("id", filter=Q(status=Track.Status.PENDING)),
        hidden=Count("id", filter=Q(hidden=True)),
    )
    return {
        "flagged_listeners": reviews.get(Listener.Review.FLAGGED, 0),
        "excluded_listeners": reviews.get(Listener.Review.EXCLUDED, 0),
        "flagged_judgments": Judgment.objects.filter(status=Judgment.Status.FLAGGED).count(),
        "open_reports": SnippetReport.objects.filter(resolved_at__isnull=True).count(),
        "pending_tracks": tracks["pending"],
        "hidden_tracks": tracks["hidden"],
        "hidden_snippets": Snippet.objects.filter(hidden=True).count(),
    }


def listeners_in_review(review: str | None, limit: int = QUEUE_SIZE) -> QuerySet[Listener]:
    """Listeners in one review state (all when None), least reliable first, with how many
    answers each has given."""
    listeners = Listener.objects.annotate(answers=Count("judgments"))
    if review:
        listeners = listeners.filter(review=review)
    return listeners.order_by("reliability", "id")[:limit]


@dataclass
class AnswerRow:
    """One of a listener's answers as they heard it: the snippets in the order shown."""

    judgment: Judgment
    snippets: list[tuple[str, Snippet]]  # (position letter, snippet)
    picked: str  # position letter chosen, or "none" for can't tell
    gold_position: str  # position of the odd snippet of a gold triplet, else ""


def _answer_row(judgment: Judgment) -> AnswerRow:
    triplet = judgment.triplet
    by_slot = dict(
        zip(SLOTS, (triplet.snippet_a, triplet.snippet_b, triplet.snippet_c), strict=True)
    )
    # Imported judgments were never served here: show them in canonical slot order.
    order = judgment.assignment.order if judgment.assignment_id else SLOTS
    shown = [("ABC"[i], by_slot[slot]) for i, slot in enumerate(order)]
    picked = "none" if judgment.odd_slot is None else "ABC"[order.index(SLOTS[judgment.odd_slot])]
    gold = "" if triplet.gold_odd is None else "ABC"[order.index(SLOTS[triplet.gold_odd])]
    return AnswerRow(judgment=judgment, snippets=shown, picked=picked, gold_position=gold)


def _answer_rows(judgments: QuerySet[Judgment]) -> list[AnswerRow]:
    related = [f"triplet__snippet_{slot}__track" for slot in SLOTS]
    return [_answer_row(j) for j in judgments.select_related("assignment", *related)]


def listener_answers_sample(listener: Listener, n: int = 12) -> list[AnswerRow]:
    """The listener's most recent answers, playable: enough to hear what they were asked."""
    return _answer_rows(listener.judgments.order_by("-created_at", "-id")[:n])


def judgments_flagged(limit: int = QUEUE_SIZE) -> list[AnswerRow]:
    """Flagged judgments, oldest first, with their snippets in the order the listener saw."""
    flagged = Judgment.objects.filter(status=Judgment.Status.FLAGGED).select_related("listener")
    return _answer_rows(flagged.order_by("created_at", "id")[:limit])


def reports_open(limit: int = QUEUE_SIZE) -> QuerySet[SnippetReport]:
    """Unresolved listener reports, oldest first, with the snippet and its track."""
    reports = SnippetReport.objects.filter(resolved_at__isnull=True)
    return reports.select_related("snippet__track", "listener").order_by("created_at", "id")[:limit]


def tracks_in_status(status: str, limit: int = QUEUE_SIZE) -> QuerySet[Track]:
    """Tracks in one status (pending: awaiting approval), oldest first, with their snippets."""
    snippets = Prefetch("snippets", queryset=Snippet.objects.order_by("position"))
    tracks = Track.objects.filter(status=status).prefetch_related(snippets)
    return tracks.order_by("created_at", "id")[:limit]


def tracks_hidden(limit: int = QUEUE_SIZE) -> QuerySet[Track]:
    """Tracks a curator hid, oldest first, with their snippets."""
    snippets = Prefetch("snippets", queryset=Snippet.objects.order_by("position"))
    tracks = Track.objects.filter(hidden=True).prefetch_related(snippets)
    return tracks.order_by("created_at", "id")[:limit]


def audit_for(target_type: str, target_ids: list[int]) -> QuerySet[AuditEntry]:
    """Audit entries of these objects, newest first."""
    entries = AuditEntry.objects.filter(target_type=target_type, target_id__in=target_ids)
    return entries.select_related("actor")


def audit_recent(
    target_type: str = "", target_id: int | None = None, limit: int = AUDIT_PAGE
) -> QuerySet[AuditEntry]:
    """The newest audit entries, optionally of one kind of object or one object."""
    entries = AuditEntry.objects.select_related("actor")
    if target_type:
        entries = entries.filter(target_type=target_type)
    if target_id is not None:
        entries = entries.filter(target_id=target_id)
    return entries[:limit]
