"""What plays next, under /api/v1/: ranked next clips for a track, and the rendered
transition into each of them (made by a worker on first request)."""

import logging
from urllib.parse import urlencode

from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from embeddings import selectors
from embeddings.audio import AudioError
from embeddings.models import Clip, Rendering, Track
from embeddings.tasks import render_transition_pair

log = logging.getLogger(__name__)

DEFAULT_K, MAX_K = 10, 50  # candidates per request
SPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]*@[0-9]+$"  # "mel-stats@1", "transnet@3"
DEFAULT_STYLE = Rendering.Style.CROSSFADE
RENDER_RETRY_AFTER_S = 3  # s a client waits before asking again for a rendering under way
RENDER_PENDING_S = 120  # s a render stays "under way" before a new request sends it again
RENDER_THROTTLE_SCOPE = "transition-render"
# Used while settings name no rate for the scope; a render costs seconds of CPU, a poll
# for one under way costs a query, and a page asks once per candidate played.
RENDER_THROTTLE_RATE = "60/min"


class NotReady(APIException):
    """The question is fine but the data to answer it is not there yet (run `embed`)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "not_ready"


class RenderThrottle(ScopedRateThrottle):
    """Scoped rate limit whose rate falls back to RENDER_THROTTLE_RATE when
    REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] names none for the scope."""

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or RENDER_THROTTLE_RATE


# Serializers ---------------------------------------------------------------------------------


# Invalid query parameters keep DRF's validation shape: messages by field name.
FIELD_ERRORS = OpenApiResponse(
    {"type": "object", "additionalProperties": {}},
    description="Invalid input: messages by field name.",
)


class DetailOut(serializers.Serializer):
    detail = serializers.CharField()


class NextIn(serializers.Serializer):
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=DEFAULT_K)
    clip = serializers.IntegerField(
        min_value=1, required=False, help_text="A clip of this track (default: its last)."
    )
    space = serializers.RegexField(
        SPACE_PATTERN,
        max_length=60,
        required=False,
        help_text="Clip space (default: the newest transition model's, else mel-stats).",
    )


class TrackRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class ClipOut(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    start_s = serializers.FloatField()
    duration_s = serializers.FloatField()


class CandidateOut(serializers.Serializer):
    clip = serializers.IntegerField()
    track = serializers.IntegerField()
    title = serializers.CharField()
    start_s = serializers.FloatField()
    score = serializers.FloatField(help_text="Higher is better; comparable within one space.")
    transition_url = serializers.CharField(help_text="Where the rendered transition is.")


class NextOut(serializers.Serializer):
    track = TrackRefOut()
    clip = ClipOut()
    space = serializers.CharField()
    candidates = CandidateOut(many=True)


class RenderIn(serializers.Serializer):
    style = serializers.ChoiceField(choices=Rendering.Style.values, default=DEFAULT_STYLE)

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        return {
            "from": serializers.IntegerField(min_value=1, help_text="Clip that plays first."),
            "to": serializers.IntegerField(min_value=1, help_text="Clip that follows."),
            **super().get_fields(),
        }

    def validate(self, data: dict) -> dict:
        if data["from"] == data["to"]:
            raise serializers.ValidationError("`from` and `to` must be different clips.")
        return data


class RenderingOut(serializers.Serializer):
    rendering = serializers.IntegerField()
    url = serializers.CharField()
    duration_s = serializers.FloatField()
    seam_s = serializers.FloatField(help_text="Where X hands over to Y, s into the rendering.")
    style = serializers.CharField()
    aligned = serializers.BooleanField(help_text="Y was shifted to meet X's beats.")
    alignment_note = serializers.CharField()


class RenderingPendingOut(serializers.Serializer):
    status = serializers.CharField(help_text='"rendering": ask again after Retry-After s.')


# Views ---------------------------------------------------------------------------------------


def transition_url(request: Request, clip_x: int, clip_y: int, style: str = DEFAULT_STYLE) -> str:
    query = urlencode({"from": clip_x, "to": clip_y, "style": style})
    return request.build_absolute_uri(f"{reverse('api-transition-render')}?{query}")


def _clip_payload(clip: Clip) -> dict:
    return {
        "id": clip.id,
        "position": clip.position,
        "start_s": clip.start_s,
        "duration_s": clip.duration_s,
    }


class TrackNextApi(APIView):
    """Ranked clips of other tracks that could follow one clip of this track.

    409 means nothing can be ranked yet (no clip index in the space, or the clip has no
    vector in it): run `embed`, then ask again. An empty list means there is simply no
    other approved track to offer."""

    @extend_schema(
        parameters=[NextIn],
        responses={200: NextOut, 400: FIELD_ERRORS, 404: DetailOut, 409: DetailOut},
    )
    def get(self, request: Request, track_id: int) -> Response:
        query = NextIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        track = _track_or_404(track_id)
        clip = _clip_or_error(track, v.get("clip"))
        space = _space_or_409(v.get("space"), clip)
        candidates = selectors.next_candidates(clip.id, space, v["k"])
        out = {
            "track": {"id": track.id, "title": track.title},
            "clip": _clip_payload(clip),
            "space": space,
            "candidates": [
                {
                    "clip": c.clip_id,
                    "track": c.track_id,
                    "title": c.title,
                    "start_s": c.start_s,
                    "score": c.score,
                    "transition_url": transition_url(request, clip.id, c.clip_id),
                }
                for c in candidates
            ],
        }
        return Response(NextOut(out).data)


def _track_or_404(track_id: int) -> Track:
    track = selectors.track_public(track_id)
    if track is None:
        raise NotFound(f"No track {track_id}.")
    return track


def _clip_or_error(track: Track, clip_id: int | None) -> Clip:
    clip = selectors.track_clip(track, clip_id)
    if clip is not None:
        return clip
    if clip_id is not None:
        raise NotFound(f"Track {track.id} has no clip {clip_id}.")
    raise NotReady(f"Track {track.id} is not cut into clips; import it again.")


def _space_or_409(space: str | None, clip: Clip) -> str:
    space = space or selectors.proposer_space()
    if space is None:
        raise NotReady("No clip index exists yet; run `embed` first.")
    if not selectors.clip_index_path(space).is_file():
        raise NotReady(f"Space {space} has no clip index; run `embed` first.")
    if not selectors.clip_has_ending(clip.id, space):
        raise NotReady(f"Clip {clip.id} has no vector in {space} yet; run `embed`.")
    return space


class TransitionRenderApi(APIView):
    """One clip flowing into another, rendered once and cached.

    The first request for a pair and style sends the render to a worker and answers 202
    with Retry-After; later ones answer 200 once it is made. In the embedded default the
    render runs at once, so the first request already answers 200. Rate-limited per client
    (scope "transition-render")."""

    throttle_classes = [RenderThrottle]
    throttle_scope = RENDER_THROTTLE_SCOPE

    @extend_schema(
        parameters=[RenderIn],
        responses={
            200: RenderingOut,
            202: RenderingPendingOut,
            400: FIELD_ERRORS,
            404: DetailOut,
            409: DetailOut,
        },
    )
    def get(self, request: Request) -> Response:
        query = RenderIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        clips = [_public_clip_or_404(v[end]) for end in ("from", "to")]
        x, y, style = clips[0].id, clips[1].id, v["style"]
        found = selectors.rendering_find(x, y, style)
        if found is None:
            missing = [c.track_id for c in clips if not c.track.original]
            if missing:
                raise NotReady(f"Track {missing[0]} has no stored original; import it again.")
            _render_request(x, y, style)
            found = selectors.rendering_find(x, y, style)  # made already when run in-process
        if found is None:
            headers = {"Retry-After": str(RENDER_RETRY_AFTER_S)}
            body = RenderingPendingOut({"status": "rendering"}).data
            return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)
        out = {
            "rendering": found.id,
            "url": request.build_absolute_uri(found.audio.url),
            "duration_s": found.duration_s,
            "seam_s": found.seam_s,
            "style": found.style,
            "aligned": found.aligned,
            "alignment_note": found.alignment_note,
        }
        return Response(RenderingOut(out).data)


def _public_clip_or_404(clip_id: int) -> Clip:
    clip = selectors.clip_public(clip_id)
    if clip is None:
        raise NotFound(f"No clip {clip_id}.")
    return clip


def _render_request(x: int, y: int, style: str) -> None:
    """Send the render on commit, once per RENDER_PENDING_S (a client polling while it is
    under way must not queue it again). A render that fails in-process answers 409."""
    pending = f"oddball:render:{x}:{y}:{style}"
    if not cache.add(pending, True, RENDER_PENDING_S):
        return
    try:
        transaction.on_commit(lambda: render_transition_pair.delay(x, y, style))
    except AudioError as e:
        cache.delete(pending)
        log.warning("rendering %s -> %s (%s) failed: %s", x, y, style, e, exc_info=True)
        raise NotReady(f"This transition cannot be rendered: {e}") from e
