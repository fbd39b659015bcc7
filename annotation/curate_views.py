"""Curator pages (/curate/): queues of flagged listeners and judgments, listener reports and
tracks awaiting approval; a listener's and a track's page; the audit log; uploads.

Staff-facing, English only, like /dashboard/. Every write goes through one POST endpoint,
`act`, which maps a named action to one bulk service in annotation.moderation, so a single
checkbox and a whole queue take the same path and leave the same audit entries.
"""

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from annotation import curate_selectors as reads
from annotation import moderation
from annotation.models import Listener
from annotation.roles import curator_required
from embeddings.models import Track
from embeddings.services import TrackMeta
from embeddings.tasks import embed_clips_mel_stats, embed_mel_stats

HIDDEN = "hidden"  # the tracks page's filter for hidden tracks, whatever their status

View = Callable[..., HttpResponse]


# action name: (bulk service, what it acts on, past tense for the message)
ACTIONS: dict[str, tuple[Callable[..., list[int]], str, str]] = {
    "listener_exclude": (moderation.listeners_exclude, "listener", "Excluded"),
    "listener_restore": (moderation.listeners_restore, "listener", "Restored"),
    "judgment_accept": (moderation.judgments_accept, "judgment", "Accepted"),
    "judgment_reject": (moderation.judgments_reject, "judgment", "Rejected"),
    "snippet_hide": (moderation.snippets_hide, "snippet", "Hid"),
    "snippet_show": (moderation.snippets_show, "snippet", "Showed"),
    "track_hide": (moderation.tracks_hide, "track", "Hid"),
    "track_show": (moderation.tracks_show, "track", "Showed"),
    "track_approve": (moderation.tracks_approve, "track", "Approved"),
    "track_reject": (moderation.tracks_reject, "track", "Rejected"),
    "report_resolve": (moderation.reports_resolve, "report", "Resolved"),
    "report_hide_snippet": (moderation.reports_hide_snippets, "report", "Hid the snippet of"),
}


MAX_ID = 2**63 - 1  # PostgreSQL bigint; a larger "id" is no object, not a server error


def _id(raw: str) -> int | None:
    return int(raw) if raw.isdecimal() and 0 < int(raw) <= MAX_ID else None


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure())
    return target if target and safe else reverse("curate")


@curator_required
@require_POST
def act(request: HttpRequest) -> HttpResponse:
    """Apply one action to the checked objects, with the curator's reason."""
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        messages.error(request, f"Unknown action {action!r}.")
        return redirect(_next(request))
    service, noun, done = ACTIONS[action]
    ids = [i for i in map(_id, request.POST.getlist("ids")) if i is not None]
    if not ids:
        messages.error(request, f"Tick at least one {noun} first.")
        return redirect(_next(request))
    try:
        changed = service(ids, request.user, request.POST.get("reason", ""))
    except moderation.ModerationError as e:
        messages.error(request, str(e))
        return redirect(_next(request))
    plural = "" if len(changed) == 1 else "s"
    unchanged = len(set(ids)) - len(changed)
    note = f" ({unchanged} already were)" if unchanged else ""
    messages.success(request, f"{done} {len(changed)} {noun}{plural}{note}.")
    return redirect(_next(request))


@curator_required
def overview(request: HttpRequest) -> HttpResponse:
    context = {
        "counts": reads.curate_counts(),
        "listeners": reads.listeners_in_review(Listener.Review.FLAGGED, limit=10),
        "tracks": reads.tracks_in_status(Track.Status.PENDING, limit=10),
        "reports": reads.reports_open(limit=10),
        "audit": reads.audit_recent(limit=15),
    }
    return render(request, "curate/overview.html", context)


@curator_required
def listeners(request: HttpRequest) -> HttpResponse:
    review = request.GET.get("review", Listener.Review.FLAGGED)
    if review not in Listener.Review.values:
        review = ""
    context = {
        "review": review,
        "reviews": Listener.Review.choices,
        "listeners": reads.listeners_in_review(review or None),
    }
    return render(request, "curate/listeners.html", context)


@curator_required
def listener_detail(request: HttpRequest, listener_id: int) -> HttpResponse:
    listener = get_object_or_404(Listener, id=listener_id)
    context = {
        "listener": listener,
        "answers": reads.listener_answers_sample(listener),
        "audit": reads.audit_for("listener", [listener.id]),
    }
    return render(request, "curate/listener.html", context)


@curator_required
def judgments(request: HttpRequest) -> HttpResponse:
    return render(request, "curate/judgments.html", {"rows": reads.judgments_flagged()})


@curator_required
def reports(request: HttpRequest) -> HttpResponse:
    return render(request, "curate/reports.html", {"reports": reads.reports_open()})


@curator_required
def tracks(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", Track.Status.PENDING)
    if status not in (*Track.Status.values, HIDDEN):
        status = Track.Status.PENDING
    context = {
        "status": status,
        "statuses": [*Track.Status.values, HIDDEN],
        "tracks": reads.tracks_hidden() if status == HIDDEN else reads.tracks_in_status(status),
    }
    return render(request, "curate/tracks.html", context)


@curator_required
def track_detail(request: HttpRequest, track_id: int) -> HttpResponse:
    track = get_object_or_404(Track, id=track_id)
    snippets = list(track.snippets.order_by("position"))
    context = {
        "track": track,
        "snippets": snippets,
        "audit": reads.audit_for("track", [track.id]),
        "snippet_audit": reads.audit_for("snippet", [s.id for s in snippets]),
    }
    return render(request, "curate/track.html", context)


@curator_required
def audit(request: HttpRequest) -> HttpResponse:
    target_type = request.GET.get("type", "")
    target_id = _id(request.GET.get("id", ""))
    context = {
        "entries": reads.audit_recent(target_type, target_id),
        "target_type": target_type,
        "target_id": target_id,
        "page_size": reads.AUDIT_PAGE,
    }
    return render(request, "curate/audit.html", context)


class UploadForm(forms.Form):
    audio = forms.FileField(help_text="Ogg Vorbis, Opus, MP3, FLAC or WAV; at least 10 s.")
    title = forms.CharField(max_length=300, required=False, help_text="Default: the file name.")
    license = forms.CharField(max_length=300, help_text="For example CC-BY-4.0.")
    attribution = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    source = forms.CharField(max_length=500, required=False, help_text="Where it comes from.")
    genre = forms.CharField(max_length=200, required=False)

    def clean_audio(self) -> object:
        upload = self.cleaned_data["audio"]
        limit_mb = settings.ODDBALL_MAX_UPLOAD_MB
        if upload.size > limit_mb * 2**20:
            raise forms.ValidationError(f"The file is larger than {limit_mb} MB.")
        return upload


@curator_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    """Upload one track; it waits for approval when ODDBALL_REQUIRE_APPROVAL is on."""
    form = UploadForm(request.POST or None, request.FILES or None)
    pending = settings.ODDBALL_REQUIRE_APPROVAL
    context = {"form": form, "pending": pending}
    if request.method == "GET" or not form.is_valid():
        return render(request, "curate/upload.html", context, status=400 if form.errors else 200)
    data = form.cleaned_data
    meta = TrackMeta(
        title=data["title"],
        license=data["license"],
        attribution=data["attribution"],
        source=data["source"],
        genre=data["genre"],
    )
    outcome = moderation.track_upload(data["audio"], meta, request.user, pending=pending)
    if outcome.status == "failed":
        context["failure"] = f"{outcome.path} was not imported: {outcome.reason}"
        return render(request, "curate/upload.html", context, status=400)
    if outcome.status == "exists":
        messages.info(request, f"{outcome.path} is already here, as track {outcome.track_id}.")
        return redirect("curate-track", track_id=outcome.track_id)
    snippet_ids, track_id = outcome.snippet_ids, outcome.track_id
    transaction.on_commit(lambda: embed_mel_stats.delay(snippet_ids))
    if outcome.clip_ids:
        transaction.on_commit(lambda: embed_clips_mel_stats.delay(track_id))
    state = "awaiting approval" if pending else "approved"
    messages.success(request, f"Imported {outcome.path}: {len(snippet_ids)} snippets, {state}.")
    return redirect("curate-track", track_id=track_id)
