"""Reads for the annotation app."""

from collections import defaultdict
from collections.abc import Iterator

from annotation.models import SLOTS, Assignment, Judgment, Triplet


def triplet_votes(
    split: str | None = None, kind: str = Triplet.Kind.RANDOM
) -> dict[int, tuple[tuple[int, int, int], list[int], list[float]]]:
    """Accepted votes per triplet: {triplet_id: (snippet ids, odd slots, weights)}.

    "Can't tell" answers carry no vote and are left out.
    """
    judgments = Judgment.objects.filter(
        status=Judgment.Status.ACCEPTED, odd_slot__isnull=False, triplet__kind=kind
    )
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
        "status",
        "weight",
        "created_at",
    ]
    rows = Judgment.objects.order_by("id").values_list(*fields).iterator(chunk_size=chunk)
    for row in rows:
        head = row[:17]
        odd, pseudonym, response_ms, listen_ms, status, weight, created = row[17:]
        snippets = row[5:8]
        yield (
            *head,
            "none" if odd is None else SLOTS[odd],
            None if odd is None else snippets[odd],
            pseudonym,
            response_ms,
            *listen_ms,
            status,
            weight,
            created.isoformat(),
        )
