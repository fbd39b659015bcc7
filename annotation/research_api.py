"""The research API under /api/v1/: tracks and snippets with their licence and
attribution, and a snippet's embedding vector in a space. Read-only, for researchers.

Authentication: a researcher token (`Authorization: Bearer odb_...`, made on /research/)
or a signed-in researcher's session. Only approved, visible tracks and visible snippets
appear. Rate-limited per user (scope "research", ODDBALL_RATE_RESEARCH). Errors are
`{"detail", "code"}`; invalid parameters add `errors` by field (annotation/api_errors.py).
"""

from collections.abc import Callable

from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

from annotation import research_selectors as reads
from annotation.api_errors import enveloped_exception_handler, error_responses
from annotation.auth import ResearchTokenAuthentication
from annotation.roles import USE_RESEARCH_API
from embeddings.models import Snippet, Split, Track

SPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]*@[0-9]+$"  # "mel-stats@1", "oddnet@3"
DEFAULT_LIMIT, MAX_LIMIT = 50, 200  # items per page
MAX_OFFSET = 2**31 - 1


class ResearchTokenScheme(OpenApiAuthenticationExtension):
    target_class = "annotation.auth.ResearchTokenAuthentication"
    name = "researchToken"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "odb_<secret>",
            "description": "A researcher token from /research/: `Authorization: Bearer odb_...`.",
        }


class UsesResearchApi(BasePermission):
    message = "Only approved researchers may use the research API."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user is not None and user.is_authenticated and user.has_perm(USE_RESEARCH_API))


class ResearchThrottle(UserRateThrottle):
    """Per user (all their tokens share one budget); reads its rate when asked."""

    scope = "research"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class ResearchApiView(APIView):
    """What every research endpoint shares: who may call, how often, how errors look."""

    authentication_classes = [ResearchTokenAuthentication, SessionAuthentication]
    permission_classes = [UsesResearchApi]
    throttle_classes = [ResearchThrottle]

    def get_exception_handler(self) -> Callable:
        return enveloped_exception_handler


def query_valid(serializer: type[serializers.Serializer], request: Request) -> dict:
    query = serializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


# Pages of results ----------------------------------------------------------------------------


class PageIn(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


def page(request: Request, items: object, limit: int, offset: int) -> dict:
    """One page of a queryset or list, with links to its neighbours."""
    count = len(items) if isinstance(items, list) else items.count()
    url = request.build_absolute_uri()
    after = offset + limit
    before = max(offset - limit, 0)
    previous = None
    if offset > 0:
        previous = (
            replace_query_param(url, "offset", before)
            if before
            else remove_query_param(url, "offset")
        )
    return {
        "count": count,
        "next": replace_query_param(url, "offset", after) if after < count else None,
        "previous": previous,
        "results": list(items[offset:after]),
    }


def page_of(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item(many=True),
    }
    return type(name, (serializers.Serializer,), fields)


# Serializers ---------------------------------------------------------------------------------


class ResearchTrackListIn(PageIn):
    source = serializers.CharField(max_length=500, required=False, help_text="Exact source.")
    license = serializers.CharField(max_length=300, required=False, help_text="Exact licence.")
    split = serializers.ChoiceField(choices=Split.values, required=False)
    genre = serializers.CharField(max_length=200, required=False)


class ResearchTrackOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    duration_s = serializers.FloatField()
    license = serializers.CharField(help_text="Empty when unknown.")
    attribution = serializers.CharField()
    source = serializers.CharField(help_text="Where the file came from (folder, site).")
    genre = serializers.CharField()
    split = serializers.ChoiceField(choices=Split.values)
    sample_rate = serializers.IntegerField(help_text="Of the imported file, Hz.")
    channels = serializers.IntegerField()
    format = serializers.CharField()
    created_at = serializers.DateTimeField()
    url = serializers.URLField(help_text="This track in the API.")


class ResearchSnippetBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField(help_text="Order within the track.")
    start_s = serializers.FloatField()
    duration_s = serializers.FloatField()
    audio_url = serializers.URLField(help_text="Loudness-normalised browser copy (Ogg).")
    url = serializers.URLField(help_text="This snippet in the API.")


class ResearchTrackDetailOut(ResearchTrackOut):
    snippets = ResearchSnippetBriefOut(many=True)


class ResearchSnippetOut(ResearchSnippetBriefOut):
    track = ResearchTrackOut()
    license = serializers.CharField(help_text="The track's licence.")
    attribution = serializers.CharField(help_text="The track's attribution.")
    loudness_lufs = serializers.FloatField(help_text="Integrated loudness before normalisation.")
    gain_db = serializers.FloatField(help_text="Gain applied to reach the target loudness.")
    spaces = serializers.ListField(
        child=serializers.CharField(), help_text="Spaces with a vector of this snippet."
    )


class ResearchEmbeddingIn(serializers.Serializer):
    space = serializers.RegexField(
        SPACE_PATTERN, max_length=60, help_text='An embedding space, e.g. "oddnet@3".'
    )


class ResearchEmbeddingOut(serializers.Serializer):
    snippet = serializers.IntegerField()
    space = serializers.CharField()
    dim = serializers.IntegerField()
    vector = serializers.ListField(child=serializers.FloatField(), help_text="float32 values.")


ResearchTrackPageOut = page_of(ResearchTrackOut, "ResearchTrackPageOut")


def track_payload(request: Request, track: Track) -> dict:
    fields = ("id", "title", "duration_s", "license", "attribution", "source", "genre", "split")
    more = ("sample_rate", "channels", "format", "created_at")
    out = {f: getattr(track, f) for f in fields + more}
    out["url"] = request.build_absolute_uri(reverse("api-research-track", args=[track.id]))
    return out


def snippet_brief(request: Request, snippet: Snippet) -> dict:
    return {
        "id": snippet.id,
        "position": snippet.position,
        "start_s": snippet.start_s,
        "duration_s": snippet.duration_s,
        "audio_url": request.build_absolute_uri(snippet.audio.url),
        "url": request.build_absolute_uri(reverse("api-research-snippet", args=[snippet.id])),
    }


# Views ---------------------------------------------------------------------------------------


class TrackListApi(ResearchApiView):
    """Public tracks in id order, a page at a time, optionally filtered."""

    @extend_schema(
        tags=["research"],
        operation_id="research_tracks_list",
        parameters=[ResearchTrackListIn],
        responses={200: ResearchTrackPageOut, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        v = query_valid(ResearchTrackListIn, request)
        tracks = reads.tracks_public(
            v.get("source", ""), v.get("license", ""), v.get("split", ""), v.get("genre", "")
        )
        out = page(request, tracks, v["limit"], v["offset"])
        out["results"] = [track_payload(request, t) for t in out["results"]]
        return Response(ResearchTrackPageOut(out).data)


class TrackDetailApi(ResearchApiView):
    """One public track: metadata, licence, attribution and its visible snippets."""

    @extend_schema(
        tags=["research"],
        operation_id="research_track",
        responses={200: ResearchTrackDetailOut, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, track_id: int) -> Response:
        track = reads.track_public_with_snippets(track_id)
        if track is None:
            raise NotFound(f"No public track {track_id}.")
        out = track_payload(request, track)
        out["snippets"] = [snippet_brief(request, s) for s in track.public_snippets]
        return Response(ResearchTrackDetailOut(out).data)


def _snippet_or_404(snippet_id: int) -> Snippet:
    snippet = reads.snippet_public(snippet_id)
    if snippet is None:
        raise NotFound(f"No public snippet {snippet_id}.")
    return snippet


class SnippetDetailApi(ResearchApiView):
    """One visible snippet: where it lies in its track, its audio, licence and the
    embedding spaces it has a vector in."""

    @extend_schema(
        tags=["research"],
        operation_id="research_snippet",
        responses={200: ResearchSnippetOut, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, snippet_id: int) -> Response:
        snippet = _snippet_or_404(snippet_id)
        out = {
            **snippet_brief(request, snippet),
            "track": track_payload(request, snippet.track),
            "license": snippet.track.license,
            "attribution": snippet.track.attribution,
            "loudness_lufs": snippet.loudness_lufs,
            "gain_db": snippet.gain_db,
            "spaces": reads.snippet_spaces(snippet),
        }
        return Response(ResearchSnippetOut(out).data)


class SnippetEmbeddingApi(ResearchApiView):
    """A snippet's vector in one space; 404 (with the spaces it has) when it has none."""

    @extend_schema(
        tags=["research"],
        operation_id="research_snippet_embedding",
        parameters=[ResearchEmbeddingIn],
        responses={200: ResearchEmbeddingOut, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, snippet_id: int) -> Response:
        v = query_valid(ResearchEmbeddingIn, request)
        snippet = _snippet_or_404(snippet_id)
        embedding = reads.snippet_embedding(snippet, v["space"])
        if embedding is None:
            spaces = ", ".join(reads.snippet_spaces(snippet)) or "none yet"
            raise NotFound(
                f"Snippet {snippet.id} has no vector in {v['space']}; its spaces: {spaces}."
            )
        out = {
            "snippet": snippet.id,
            "space": embedding.space,
            "dim": embedding.dim,
            "vector": embedding.as_array().tolist(),
        }
        return Response(ResearchEmbeddingOut(out).data)
