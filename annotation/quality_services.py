"""Quality control writes: listeners' reliability, signals and flags, judgments' weights and
flags, each automatic flag in the audit log. The model itself is annotation/quality.py."""

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.models import SITE_SOURCE, SLOTS, AuditEntry, Judgment, Listener
from annotation.quality import NONE, Answers, QualityConfig, assess

FLAG_ACTION = "flag"  # AuditEntry.action of an automatic flag
TOO_FAST_REASON = "answered before listening"


def quality_config() -> QualityConfig:
    """The model's configuration from the ODDBALL_QUALITY_* settings."""
    return QualityConfig(
        prior_accuracy=settings.ODDBALL_QUALITY_PRIOR_ACCURACY,
        prior_strength=settings.ODDBALL_QUALITY_PRIOR_STRENGTH,
        good_accuracy=settings.ODDBALL_QUALITY_GOOD_ACCURACY,
        consensus_votes=settings.ODDBALL_FINISHED_VOTES,
        min_listen_ms=round(settings.ODDBALL_MIN_LISTEN_S * 1000),
        min_reliability=settings.ODDBALL_QUALITY_MIN_RELIABILITY,
        min_checks=settings.ODDBALL_QUALITY_MIN_CHECKS,
        max_fast_share=settings.ODDBALL_QUALITY_MAX_FAST_SHARE,
        max_position_share=settings.ODDBALL_QUALITY_MAX_POSITION_SHARE,
        min_answers=settings.ODDBALL_QUALITY_MIN_ANSWERS,
    )


@dataclass
class QualityReport:
    listeners: int  # listeners assessed
    flagged_listeners: list[int]  # ids newly flagged by this run
    flagged_judgments: list[int]  # ids newly flagged by this run


def _answers() -> tuple[Answers, list[int], list[int], list[int]]:
    """Every non-practice answer given on this site as arrays; with the listener ids (row
    order), the judgment ids and each judgment's listener review.

    Imported judgments (import_judgments) are left out, and so are their listeners: they
    were never served here (no assignment, display order or listening time to check), so
    they get no signals and no flags, and keep weight 1."""
    rows = list(
        Judgment.objects.filter(practice=False, source=SITE_SOURCE)
        .order_by("id")
        .values_list(
            "id",
            "assignment_id",
            "listener_id",
            "triplet_id",
            "odd_slot",
            "triplet__gold_odd",
            "assignment__order",
            "assignment__repeat_of_id",
            "listen_ms",
            "status",
            "listener__review",
        )
    )
    listener_ids = sorted({r[2] for r in rows})
    row_of_listener = {lid: i for i, lid in enumerate(listener_ids)}
    row_of_assignment = {r[1]: i for i, r in enumerate(rows)}
    n = len(rows)
    odd = np.full(n, NONE)
    position = np.full(n, NONE)
    for i, r in enumerate(rows):
        if r[4] is not None:
            odd[i] = r[4]
            position[i] = r[6].index(SLOTS[r[4]])  # the displayed position of the chosen slot
    answers = Answers(
        listener=np.array([row_of_listener[r[2]] for r in rows], dtype=int),
        triplet=np.array([r[3] for r in rows], dtype=int),
        odd=odd,
        position=position,
        gold=np.array([NONE if r[5] is None else r[5] for r in rows], dtype=int),
        repeat_of=np.array([row_of_assignment.get(r[7], NONE) for r in rows], dtype=int),
        listened_ms=np.array([min(r[8]) if r[8] else 0 for r in rows], dtype=int),
        votes=np.array(
            [
                r[7] is None
                and r[9] != Judgment.Status.REJECTED
                and r[10] != Listener.Review.EXCLUDED
                for r in rows
            ],
            dtype=bool,
        ),
    )
    return answers, listener_ids, [r[0] for r in rows], [r[9] for r in rows]


def quality_update() -> QualityReport:
    """Re-assess every listener: store reliability and signals on each, the reliability as
    the training weight of their judgments, and flag what the rules catch.

    Only automatic states change: a listener under review "ok" may become "flagged" (never
    one a curator excluded or trusted), an accepted judgment may become "flagged" (never one
    a curator already acted on, nor one of a trusted listener). Each flag adds an
    AuditEntry with no actor. Idempotent. Flags are conditional UPDATEs, so a curator's
    decision made meanwhile wins; runs in one transaction.
    """
    answers, listener_ids, judgment_ids, statuses = _answers()
    result = assess(answers, len(listener_ids), quality_config())
    now = timezone.now()
    report = QualityReport(len(listener_ids), [], [])
    with transaction.atomic():
        listeners = Listener.objects.in_bulk(listener_ids)
        for i, lid in enumerate(listener_ids):
            listener = listeners[lid]
            listener.reliability = round(float(result.reliability[i]), 4)
            listener.signals = result.signals[i]
            listener.quality_at = now
            Judgment.objects.filter(listener_id=lid).update(weight=listener.reliability)
        Listener.objects.bulk_update(
            listeners.values(), ["reliability", "signals", "quality_at"], batch_size=500
        )
        for i, lid in enumerate(listener_ids):
            reasons = result.reasons[i]
            if reasons and _flag_listener(lid, reasons, result.signals[i]):
                report.flagged_listeners.append(lid)
        fast = [
            judgment_ids[i]
            for i in np.flatnonzero(result.too_fast)
            if statuses[i] == Judgment.Status.ACCEPTED
        ]
        report.flagged_judgments = _flag_judgments(fast, TOO_FAST_REASON)
    return report


def _flag_listener(listener_id: int, reasons: list[str], signals: dict) -> bool:
    flagged = Listener.objects.filter(id=listener_id, review=Listener.Review.OK).update(
        review=Listener.Review.FLAGGED, flag_reasons=reasons
    )
    if flagged:
        AuditEntry.objects.create(
            actor=None,
            action=FLAG_ACTION,
            target_type="listener",
            target_id=listener_id,
            reason="; ".join(reasons),
            data={"signals": signals},
        )
    return bool(flagged)


def _flag_judgments(ids: list[int], reason: str) -> list[int]:
    """Flag these accepted judgments, except those a curator acted on or whose listener a
    curator trusts; returns the ids flagged."""
    decided = set(
        AuditEntry.objects.filter(target_type="judgment", target_id__in=ids).values_list(
            "target_id", flat=True
        )
    )
    candidates = (
        Judgment.objects.filter(id__in=[i for i in ids if i not in decided])
        .filter(status=Judgment.Status.ACCEPTED)
        .exclude(listener__review=Listener.Review.TRUSTED)
    )
    chosen = list(candidates.select_for_update(of=("self",)).values_list("id", flat=True))
    Judgment.objects.filter(id__in=chosen).update(
        status=Judgment.Status.FLAGGED, flag_reason=reason
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=None, action=FLAG_ACTION, target_type="judgment", target_id=i, reason=reason
        )
        for i in chosen
    )
    return chosen
