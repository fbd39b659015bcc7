"""Similar tracks under /api/v1/similar/: the nearest approved tracks to a snippet (GET) or
to an uploaded clip (POST, multipart), in the promoted model's space.

Open to everyone, like the tracks' snippets themselves (every snippet URL here is already
public through /tracks/<id>/next/); rate-limited per client with the scope "similar"
(ODDBALL_RATE_SIMILAR), since an upload costs a decode and an embedding of up to ten
minutes of audio.
"""

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from annotation.api_errors import ApiErrorOut, enveloped_exception_handler, error_responses
from annotation.auth import ResearchTokenAuthentication
from embeddings.audio import SUPPORTED_SUFFIXES, AudioError
from training import similar

log = logging.getLogger(__name__)

DEFAULT_K, MAX_K = 10, 50  # tracks per answer
MAX_ID = 2**63 - 1  # the largest bigint primary key; a larger number would fail in SQL
THROTTLE_SCOPE = "similar"
THROTTLE_RATE = "30/min"  # used while settings name no rate for the scope
UPLOAD_SLACK_BYTES = 64 * 1024  # multipart framing around the file itself
AGGREGATION = (
    "Snippet neighbours from the space's FAISS index, aggregated per track: a track's score "
    "is the mean over the query's windows of its best snippet's score; the snippet given is "
    "the track's closest one."
)


class NotReady(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "not_ready"


class SimilarThrottle(ScopedRateThrottle):
    """The "similar" scope's rate from settings (None there turns it off), else
    THROTTLE_RATE."""

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        return rates.get(self.scope, THROTTLE_RATE)


# Serializers ---------------------------------------------------------------------------------


class SnippetQueryIn(serializers.Serializer):
    snippet = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="A snippet of an approved track."
    )
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=DEFAULT_K)


@extend_schema_field(OpenApiTypes.BINARY)  # a file's bytes in the multipart body, not a URI
class AudioFileField(serializers.FileField):
    pass


class UploadIn(serializers.Serializer):
    audio = AudioFileField(
        help_text=(
            f"{similar.MIN_UPLOAD_S:.0f} s to {similar.MAX_UPLOAD_S:.0f} s of audio (Ogg, "
            "Opus, MP3, FLAC or WAV), at most ODDBALL_SIMILAR_MAX_UPLOAD_MB megabytes."
        )
    )
    k = serializers.IntegerField(min_value=1, max_value=MAX_K, default=DEFAULT_K)


class SimilarTrackOut(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    attribution = serializers.CharField(help_text="Artist and credit, as imported.")
    license = serializers.CharField()
    source = serializers.CharField()
    genre = serializers.CharField()


class SimilarSnippetOut(serializers.Serializer):
    id = serializers.IntegerField()
    start_s = serializers.FloatField()
    duration_s = serializers.FloatField()
    audio_url = serializers.CharField(help_text="The browser copy (Ogg Vorbis).")


class SimilarResultOut(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.FloatField(help_text="Higher is better; see `score_kind`.")
    track = SimilarTrackOut()
    snippet = SimilarSnippetOut(help_text="The track's best-matching snippet.")


class SimilarQueryOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["snippet", "upload"])
    snippet = serializers.IntegerField(allow_null=True)
    track = serializers.IntegerField(allow_null=True, help_text="Left out of the results.")
    windows = serializers.IntegerField(help_text="Windows the query was cut into.")


class SimilarOut(serializers.Serializer):
    space = serializers.CharField(help_text='The space that answered, e.g. "oddnet@3".')
    promoted = serializers.BooleanField(help_text="The promoted model answered.")
    fallback = serializers.CharField(help_text='Why mel-stats answered instead; "" if not.')
    score_kind = serializers.ChoiceField(
        choices=["cosine", "negative_distance"],
        help_text="cosine in a learned space; minus the z-scored L2 distance in mel-stats.",
    )
    aggregation = serializers.CharField()
    query = SimilarQueryOut()
    results = SimilarResultOut(many=True)


ERRORS = {
    **error_responses(400, 401, 404, 429),
    409: OpenApiResponse(ApiErrorOut, description="Nothing has vectors yet: run `embed`."),
}


# Views ---------------------------------------------------------------------------------------


class SimilarApi(APIView):
    """The nearest approved tracks to a snippet (GET, its own track left out) or to an
    uploaded clip (POST). 409 means nothing has vectors yet: run `embed`."""

    # Anyone may ask; a researcher's token or a session only changes whose rate is counted.
    authentication_classes = [ResearchTokenAuthentication, SessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [SimilarThrottle]
    throttle_scope = THROTTLE_SCOPE
    parser_classes = [MultiPartParser, FormParser]

    def get_exception_handler(self) -> Callable:
        return enveloped_exception_handler  # the research API's shape: detail, code, errors

    @extend_schema(parameters=[SnippetQueryIn], responses={200: SimilarOut, **ERRORS})
    def get(self, request: Request) -> Response:
        query = SnippetQueryIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        v = query.validated_data
        snippet = similar.snippet_public(v["snippet"])
        if snippet is None:
            raise NotFound(f"No snippet {v['snippet']}.")
        try:
            space, found = similar.snippet_similar(snippet, v["k"])
        except similar.NotReady as e:
            raise NotReady(str(e)) from e
        query = {"kind": "snippet", "snippet": snippet.id, "track": snippet.track_id, "windows": 1}
        return Response(_payload(request, space, found, query))

    @extend_schema(
        request={"multipart/form-data": UploadIn},
        responses={
            200: SimilarOut,
            415: OpenApiResponse(ApiErrorOut, description="The body is not multipart."),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        limit = settings.ODDBALL_SIMILAR_MAX_UPLOAD_MB * 1024 * 1024
        # Refuse before the body is read and spooled to disk.
        if int(request.META.get("CONTENT_LENGTH") or 0) > limit + UPLOAD_SLACK_BYTES:
            raise _too_big(settings.ODDBALL_SIMILAR_MAX_UPLOAD_MB)
        form = UploadIn(data=request.data)
        form.is_valid(raise_exception=True)
        v = form.validated_data
        upload = v["audio"]
        if upload.size > limit:
            raise _too_big(settings.ODDBALL_SIMILAR_MAX_UPLOAD_MB)
        suffix = Path(upload.name or "").suffix.lower()
        with tempfile.TemporaryDirectory(prefix="oddball-similar-") as folder:
            path = Path(folder) / ("upload" + (suffix if suffix in SUPPORTED_SUFFIXES else ""))
            with path.open("wb") as f:
                for chunk in upload.chunks():
                    f.write(chunk)
            try:
                space, found, windows = similar.audio_similar(path, v["k"])
            except AudioError as e:
                log.info("similar: upload %r refused: %s", upload.name, e)
                raise ValidationError({"audio": [f"This audio cannot be compared: {e}."]}) from e
            except similar.NotReady as e:
                raise NotReady(str(e)) from e
        query = {"kind": "upload", "snippet": None, "track": None, "windows": windows}
        return Response(_payload(request, space, found, query))


def _too_big(limit_mb: int) -> ValidationError:
    return ValidationError({"audio": [f"The file is too big: at most {limit_mb} MB."]})


def _payload(
    request: Request, space: similar.Space, found: list[similar.SimilarTrack], query: dict
) -> dict:
    results = [
        {
            "rank": rank,
            "score": round(hit.score, 6),
            "track": {
                "id": hit.track.id,
                "title": hit.track.title,
                "attribution": hit.track.attribution,
                "license": hit.track.license,
                "source": hit.track.source,
                "genre": hit.track.genre,
            },
            "snippet": {
                "id": hit.snippet.id,
                "start_s": hit.snippet.start_s,
                "duration_s": hit.snippet.duration_s,
                "audio_url": request.build_absolute_uri(hit.snippet.audio.url),
            },
        }
        for rank, hit in enumerate(found, start=1)
    ]
    out = {
        "space": space.name,
        "promoted": space.version is not None,
        "fallback": space.note,
        "score_kind": space.score_kind,
        "aggregation": AGGREGATION,
        "query": query,
        "results": results,
    }
    return SimilarOut(out).data
