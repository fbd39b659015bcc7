"""Pages of the embeddings app: media files for the embedded default, with HTTP Range
support, and "what plays next" for a track.

Browsers seek and measure Ogg durations with Range requests; Django's static `serve` view
ignores them. Deployments let nginx serve /media/ instead (ODDBALL_SERVE_MEDIA=0).
"""

import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils._os import safe_join
from django.utils.translation import gettext as _

from embeddings import selectors
from embeddings.api import DEFAULT_K, DEFAULT_STYLE
from embeddings.models import Rendering

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


# Media folders that are never public: releases and models have their own permission-checked
# downloads, runs hold checkpoints, index the vector indexes (nginx refuses them likewise).
PRIVATE_MEDIA = {"releases", "models", "runs", "index"}


def media(request: HttpRequest, path: str) -> HttpResponse:
    """Media files with HTTP Range support, for the embedded default (nginx in deployments)."""
    if Path(path).parts[:1] and Path(path).parts[0] in PRIVATE_MEDIA:
        raise Http404("not found")
    try:
        full = Path(safe_join(settings.MEDIA_ROOT, path))
    except SuspiciousFileOperation as e:  # a path that climbs out of the media root
        raise Http404("not found") from e
    if not full.is_file():
        raise Http404("not found")
    size = full.stat().st_size
    content_type = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    match = RANGE.match(request.headers.get("Range", "").strip())
    if not match or not any(match.groups()):
        response = FileResponse(full.open("rb"), content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # "bytes=-N": the last N bytes
        start, end = max(0, size - int(last)), size - 1
    if start > end or start >= size:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    with full.open("rb") as f:
        f.seek(start)
        body = f.read(end - start + 1)
    response = HttpResponse(body, status=206, content_type=content_type)
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response


def _next_strings() -> dict[str, str]:
    """Everything next.js says, in the request's language; {name} marks a value."""
    return {
        "asking": _("Asking for the transition…"),
        "rendering": _("Rendering the transition; this takes a few seconds…"),
        "ready": _("Playing: the seam comes at {seam} s."),
        "failed": _("This transition could not be played: {detail}"),
        "gave_up": _("The transition is still not ready; try again in a minute."),
    }


def track_next(request: HttpRequest, track_id: int) -> HttpResponse:
    """The ranked next clips after one clip of a track (?clip=, default its last clip)."""
    track = selectors.track_public(track_id)
    if track is None:
        raise Http404("no such track")
    clip_id = request.GET.get("clip")
    if clip_id is not None and not clip_id.isdigit():
        raise Http404("no such clip")
    clip = selectors.track_clip(track, int(clip_id) if clip_id else None)
    if clip is None and clip_id:
        raise Http404("no such clip")
    space = selectors.proposer_space()
    candidates, reason = [], ""
    if clip is None:
        reason = _("This track is not cut into clips yet.")
    elif space is None or not selectors.clip_has_ending(clip.id, space):
        reason = _("Nothing can be ranked yet: the clips have no vectors.")
    else:
        candidates = selectors.next_candidates(clip.id, space, DEFAULT_K)
        if not candidates:
            reason = _("There is no other track to follow this one yet.")
    context = {
        "track": track,
        "clip": clip,
        "clips": list(track.clips.all()),
        "space": space,
        "candidates": candidates,
        "reason": reason,
        "styles": [
            (Rendering.Style.CROSSFADE, _("Crossfade")),
            (Rendering.Style.HARD_CUT, _("Hard cut")),
            (Rendering.Style.OVERLAY, _("Overlay (both at once)")),
        ],
        "default_style": DEFAULT_STYLE,
        "render_url": reverse("api-transition-render"),
        "strings": _next_strings(),
    }
    return render(request, "embeddings/next.html", context)
