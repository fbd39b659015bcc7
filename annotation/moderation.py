"""Curator actions: exclude or restore a listener's work, accept or reject a judgment, hide
or show a snippet or track, approve or reject a track, resolve a listener's report, upload
a track.

Every action changes a state and never deletes a row, and writes one AuditEntry per object
it changed, in the same transaction: the state and its explanation commit together or not
at all. Rows are locked with SELECT ... FOR UPDATE while they change, so two curators acting
on the same object at once leave two consistent entries rather than one lost update. An
object already in the requested state is left alone and gets no entry.

Whose work counts is decided by `annotation.selectors.counted_judgments()`: excluding a
listener takes their work out of training and exports; restoring (review "trusted") brings
it back and keeps the automatic flags from holding it out again.
"""

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from annotation.models import (
    SITE_SOURCE,
    AuditEntry,
    Judgment,
    Listener,
    SnippetReport,
    TransitionTask,
    Triplet,
)
from embeddings.models import Snippet, Track
from embeddings.services import ImportOutcome, TrackMeta, track_import

REASON_MAX = 2000  # characters kept of a curator's note


class ModerationError(Exception):
    """An action that cannot be taken as asked; the message is shown to the curator."""


def _reason_clean(reason: str, required: bool) -> str:
    reason = (reason or "").strip()[:REASON_MAX]
    if required and not reason:
        raise ModerationError("Give a reason: it is kept in the audit log.")
    return reason


def _state_set(
    model: type[Model],
    ids: Iterable[int],
    field: str,
    value: str | bool,
    *,
    action: str,
    target_type: str,
    actor: AbstractBaseUser,
    reason: str,
) -> list[int]:
    """Set `field` to `value` on the rows of `model` with these ids that differ, and write one
    audit entry each (with the state before and after). Returns the ids changed.

    Needs a transaction (the callers open one): the rows stay locked until it commits."""
    rows = (
        model.objects.select_for_update()
        .filter(id__in=set(ids))
        .exclude(**{field: value})
        .order_by("id")
        .values_list("id", field)
    )
    before = dict(rows)
    if not before:
        return []
    model.objects.filter(id__in=before).update(**{field: value})
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=pk,
            reason=reason,
            data={"field": field, "from": old, "to": value},
        )
        for pk, old in before.items()
    )
    return list(before)


# Listeners ---------------------------------------------------------------------------------


def listeners_exclude(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Exclude these listeners' work from training and exports (review "excluded").
    Their answers stay in the database. Returns the ids that changed."""
    reason = _reason_clean(reason, required=True)
    with transaction.atomic():
        return _state_set(
            Listener,
            ids,
            "review",
            Listener.Review.EXCLUDED,
            action="listener_exclude",
            target_type="listener",
            actor=actor,
            reason=reason,
        )


def listeners_restore(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Bring these listeners' work back into training and exports (review "trusted", so
    the automatic flags no longer hold it out). Returns the ids that changed."""
    reason = _reason_clean(reason, required=True)
    with transaction.atomic():
        return _state_set(
            Listener,
            ids,
            "review",
            Listener.Review.TRUSTED,
            action="listener_restore",
            target_type="listener",
            actor=actor,
            reason=reason,
        )


def listener_exclude(listener: Listener, actor: AbstractBaseUser, reason: str) -> Listener:
    """Exclude one listener's work; see `listeners_exclude`."""
    listeners_exclude([listener.id], actor, reason)
    listener.refresh_from_db()
    return listener


def listener_restore(listener: Listener, actor: AbstractBaseUser, reason: str) -> Listener:
    """Restore one listener's work; see `listeners_restore`."""
    listeners_restore([listener.id], actor, reason)
    listener.refresh_from_db()
    return listener


# Judgments ---------------------------------------------------------------------------------


def judgments_accept(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Accept these judgments: they count again (if their listener's work counts)."""
    reason = _reason_clean(reason, required=False)
    with transaction.atomic():
        return _state_set(
            Judgment,
            ids,
            "status",
            Judgment.Status.ACCEPTED,
            action="judgment_accept",
            target_type="judgment",
            actor=actor,
            reason=reason,
        )


def judgments_reject(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Reject these judgments: kept, but never a vote, a training example or an export row."""
    reason = _reason_clean(reason, required=True)
    with transaction.atomic():
        return _state_set(
            Judgment,
            ids,
            "status",
            Judgment.Status.REJECTED,
            action="judgment_reject",
            target_type="judgment",
            actor=actor,
            reason=reason,
        )


def judgment_accept(judgment: Judgment, actor: AbstractBaseUser, reason: str) -> Judgment:
    """Accept one judgment; see `judgments_accept`."""
    judgments_accept([judgment.id], actor, reason)
    judgment.refresh_from_db()
    return judgment


def judgment_reject(judgment: Judgment, actor: AbstractBaseUser, reason: str) -> Judgment:
    """Reject one judgment; see `judgments_reject`."""
    judgments_reject([judgment.id], actor, reason)
    judgment.refresh_from_db()
    return judgment


# Serving -----------------------------------------------------------------------------------


def _visible_snippets() -> Q:
    return Q(hidden=False, track__status=Track.Status.APPROVED, track__hidden=False)


def _serving_sync(snippet_ids: list[int], track_ids: list[int]) -> None:
    """Serve exactly the triplets and transition tasks whose audio is all visible.

    `assignment_next` serves active triplets, so a hidden snippet or track, or a rejected
    one, stops being served when the triplets and tasks that use it are made inactive;
    showing or approving it makes them active again once all their parts are visible.
    Needs the caller's transaction."""
    if snippet_ids:
        visible = Snippet.objects.filter(_visible_snippets()).values("id")
        # Imported triplets (import_judgments) are never served, whatever their snippets do.
        touching = Triplet.objects.filter(source=SITE_SOURCE).filter(
            Q(snippet_a__in=snippet_ids)
            | Q(snippet_b__in=snippet_ids)
            | Q(snippet_c__in=snippet_ids)
        )
        shown = Q(snippet_a__in=visible, snippet_b__in=visible, snippet_c__in=visible)
        touching.filter(shown).exclude(active=True).update(active=True)
        touching.exclude(shown).exclude(active=False).update(active=False)
    if track_ids:
        ok = Track.objects.filter(status=Track.Status.APPROVED, hidden=False).values("id")
        tasks = TransitionTask.objects.filter(
            Q(clip_x__track__in=track_ids) | Q(clip_y__track__in=track_ids)
        )
        shown = Q(clip_x__track__in=ok, clip_y__track__in=ok)
        tasks.filter(shown).exclude(active=True).update(active=True)
        tasks.exclude(shown).exclude(active=False).update(active=False)


# Snippets ----------------------------------------------------------------------------------


def snippets_hide(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Hide these snippets: no longer served in any triplet. Returns the ids that changed."""
    reason = _reason_clean(reason, required=True)
    with transaction.atomic():
        changed = _state_set(
            Snippet,
            ids,
            "hidden",
            True,
            action="snippet_hide",
            target_type="snippet",
            actor=actor,
            reason=reason,
        )
        _serving_sync(changed, [])
    return changed


def snippets_show(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Serve these snippets again (if their track is approved and not hidden)."""
    reason = _reason_clean(reason, required=False)
    with transaction.atomic():
        changed = _state_set(
            Snippet,
            ids,
            "hidden",
            False,
            action="snippet_show",
            target_type="snippet",
            actor=actor,
            reason=reason,
        )
        _serving_sync(changed, [])
    return changed


def snippet_hide(snippet: Snippet, actor: AbstractBaseUser, reason: str) -> Snippet:
    """Hide one snippet; see `snippets_hide`."""
    snippets_hide([snippet.id], actor, reason)
    snippet.refresh_from_db()
    return snippet


def snippet_show(snippet: Snippet, actor: AbstractBaseUser, reason: str) -> Snippet:
    """Show one snippet again; see `snippets_show`."""
    snippets_show([snippet.id], actor, reason)
    snippet.refresh_from_db()
    return snippet


# Tracks ------------------------------------------------------------------------------------


def _tracks_set(
    ids: Iterable[int],
    field: str,
    value: str | bool,
    action: str,
    actor: AbstractBaseUser,
    reason: str,
) -> list[int]:
    with transaction.atomic():
        changed = _state_set(
            Track,
            ids,
            field,
            value,
            action=action,
            target_type="track",
            actor=actor,
            reason=reason,
        )
        snippet_ids = list(Snippet.objects.filter(track__in=changed).values_list("id", flat=True))
        _serving_sync(snippet_ids, changed)
    return changed


def tracks_hide(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Hide these tracks: none of their snippets or clips is served."""
    reason = _reason_clean(reason, required=True)
    return _tracks_set(ids, "hidden", True, "track_hide", actor, reason)


def tracks_show(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Serve these tracks again (approved ones only; hidden snippets stay hidden)."""
    reason = _reason_clean(reason, required=False)
    return _tracks_set(ids, "hidden", False, "track_show", actor, reason)


def tracks_approve(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Approve these tracks (imported or uploaded as pending): they are served from now on
    and new triplets and transition tasks may use them."""
    reason = _reason_clean(reason, required=False)
    return _tracks_set(ids, "status", Track.Status.APPROVED, "track_approve", actor, reason)


def tracks_reject(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """Reject these tracks: kept, never served."""
    reason = _reason_clean(reason, required=True)
    return _tracks_set(ids, "status", Track.Status.REJECTED, "track_reject", actor, reason)


def _track_one(
    bulk: Callable[..., list[int]], track: Track, actor: AbstractBaseUser, reason: str
) -> Track:
    bulk([track.id], actor, reason)
    track.refresh_from_db()
    return track


def track_hide(track: Track, actor: AbstractBaseUser, reason: str) -> Track:
    """Hide one track; see `tracks_hide`."""
    return _track_one(tracks_hide, track, actor, reason)


def track_show(track: Track, actor: AbstractBaseUser, reason: str) -> Track:
    """Show one track again; see `tracks_show`."""
    return _track_one(tracks_show, track, actor, reason)


def track_approve(track: Track, actor: AbstractBaseUser, reason: str) -> Track:
    """Approve one track; see `tracks_approve`."""
    return _track_one(tracks_approve, track, actor, reason)


def track_reject(track: Track, actor: AbstractBaseUser, reason: str) -> Track:
    """Reject one track; see `tracks_reject`."""
    return _track_one(tracks_reject, track, actor, reason)


def track_upload(
    upload: UploadedFile, meta: TrackMeta, actor: AbstractBaseUser, pending: bool
) -> ImportOutcome:
    """Import an uploaded audio file through `track_import`, as pending when `pending`.

    The client's file name is never a path: the upload is written to a private temporary
    folder as "upload" plus its (sanitised) suffix, so the importer sees the suffix, and the
    track keeps the sanitised name. A bad file creates nothing and the outcome says why; an
    imported one gets a "track_upload" audit entry.
    """
    name = upload_name(upload.name or "")
    suffix = Path(name).suffix.lower()[:UPLOAD_SUFFIX_MAX]
    status = Track.Status.PENDING if pending else Track.Status.APPROVED
    with tempfile.TemporaryDirectory(prefix="oddball-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as f:
            for chunk in upload.chunks():
                f.write(chunk)
        outcome = track_import(path, meta, status=status, file_name=name)
    if outcome.status == "imported":
        AuditEntry.objects.create(
            actor=actor,
            action="track_upload",
            target_type="track",
            target_id=outcome.track_id,
            reason=f"uploaded {name}",
            data={
                "status": status,
                "license": meta.license,
                "snippets": len(outcome.snippet_ids),
            },
        )
    outcome.path = name  # the server's temporary path means nothing to the curator
    return outcome


UPLOAD_NAME_MAX = 200  # characters of a client's file name kept
UPLOAD_SUFFIX_MAX = 10  # characters, with the dot: ".opus" and room for a wrong one


def upload_name(raw: str) -> str:
    """A client's file name reduced to a harmless display name: its last part only, letters,
    digits, "-", "_" and ".", at most UPLOAD_NAME_MAX characters (the suffix kept)."""
    last = raw.replace("\\", "/").rsplit("/", 1)[-1]
    try:
        name = get_valid_filename(last)
    except SuspiciousFileOperation:  # "", "." or ".."
        name = ""
    name = name.lstrip(".") or "upload"
    if len(name) > UPLOAD_NAME_MAX:
        stem, dot, suffix = name.rpartition(".")
        suffix = (dot + suffix)[:UPLOAD_SUFFIX_MAX] if stem else ""
        name = name[: UPLOAD_NAME_MAX - len(suffix)] + suffix
    return name


# Reports -----------------------------------------------------------------------------------


def reports_resolve(ids: Iterable[int], actor: AbstractBaseUser, resolution: str) -> list[int]:
    """Mark these listener reports resolved with the curator's resolution (what was done,
    for example "snippet hidden" or "plays fine"). Returns the ids that changed."""
    resolution = _reason_clean(resolution, required=True)
    with transaction.atomic():
        open_ids = (
            SnippetReport.objects.select_for_update()
            .filter(id__in=set(ids), resolved_at__isnull=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        changed = list(open_ids)
        SnippetReport.objects.filter(id__in=changed).update(
            resolved_at=timezone.now(), resolution=resolution[:200]
        )
        AuditEntry.objects.bulk_create(
            AuditEntry(
                actor=actor,
                action="report_resolve",
                target_type="report",
                target_id=pk,
                reason=resolution,
            )
            for pk in changed
        )
    return changed


def report_resolve(
    report: SnippetReport, actor: AbstractBaseUser, resolution: str
) -> SnippetReport:
    """Resolve one listener report; see `reports_resolve`."""
    reports_resolve([report.id], actor, resolution)
    report.refresh_from_db()
    return report


def reports_hide_snippets(ids: Iterable[int], actor: AbstractBaseUser, reason: str) -> list[int]:
    """The common answer to an offensive or broken snippet: hide the reported snippets and
    resolve these reports ("snippet hidden: <reason>"), in one transaction. Returns the ids
    of the reports resolved."""
    reason = _reason_clean(reason, required=True)
    ids = set(ids)
    with transaction.atomic():
        reported = SnippetReport.objects.filter(id__in=ids, resolved_at__isnull=True)
        snippets_hide(set(reported.values_list("snippet_id", flat=True)), actor, reason)
        return reports_resolve(ids, actor, f"snippet hidden: {reason}")
