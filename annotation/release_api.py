"""The dataset release API under /api/v1/: the finished releases, one release with its
files and checksums, a file, and the votes of a release page by page.

Researchers and admins only (annotation.roles.IsResearcher: the download_datasets
permission), signed in or with a research token. Errors are JSON with a `detail`."""

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import release_files
from annotation import release_selectors as reads
from annotation.models import DatasetRelease
from annotation.roles import IsResearcher
from embeddings.models import Split

PAGE_SIZE, PAGE_SIZE_MAX = 100, 1000  # votes per page
MAX_PAGE = 10**7  # far past any release; keeps the offset arithmetic small


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField()


class FiltersOut(serializers.Serializer):
    min_votes = serializers.IntegerField()
    min_reliability = serializers.FloatField(allow_null=True)
    sources = serializers.ListField(child=serializers.CharField(), allow_null=True)
    licences = serializers.ListField(child=serializers.CharField(), allow_null=True)
    audio = serializers.BooleanField()


class CountsOut(serializers.Serializer):
    votes = serializers.IntegerField()
    triplets = serializers.IntegerField()
    listeners = serializers.IntegerField()
    tracks = serializers.IntegerField()
    snippets = serializers.IntegerField()
    ratings = serializers.IntegerField()
    audio_files = serializers.IntegerField()
    audio_missing = serializers.IntegerField()


class FileOut(serializers.Serializer):
    name = serializers.CharField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.URLField()


class ReleaseOut(serializers.Serializer):
    number = serializers.IntegerField()
    title = serializers.CharField(allow_blank=True)
    notes = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    filters = FiltersOut()
    counts = CountsOut()
    url = serializers.URLField()
    datasheet_url = serializers.URLField()


class ReleaseDetailOut(ReleaseOut):
    files = FileOut(many=True)


def _vote_field(column: release_files.Column) -> serializers.Field:
    kinds = {
        release_files.INT: serializers.IntegerField,
        release_files.FLOAT: serializers.FloatField,
        release_files.BOOL: serializers.BooleanField,
        release_files.TIME: serializers.DateTimeField,
    }
    field = kinds.get(column.type, serializers.CharField)
    return field(allow_null=True, help_text=column.note)


# One field per column of votes.parquet (release_files.VOTE_COLUMNS), so the schema is the file's.
VoteOut = type(
    "VoteOut",
    (serializers.Serializer,),
    {c.name: _vote_field(c) for c in release_files.VOTE_COLUMNS},
)


class VotesIn(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE)
    triplet = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="A triplet id."
    )
    listener = serializers.CharField(
        max_length=13, required=False, help_text="A pseudonym of this release."
    )
    split = serializers.ChoiceField(choices=Split.values, required=False)
    answer = serializers.ChoiceField(choices=["a", "b", "c", "none"], required=False)


class VotesPageOut(serializers.Serializer):
    count = serializers.IntegerField(help_text="Votes matching the filters.")
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = VoteOut(many=True)


def _release(number: int) -> DatasetRelease:
    release = reads.release_ready(number)
    if release is None:
        raise NotFound(f"There is no finished release {number}.")
    return release


def _payload(request: Request, release: DatasetRelease, files: bool = False) -> dict:
    def url(name: str, *args: object) -> str:
        return request.build_absolute_uri(reverse(name, args=args))

    out = {
        "number": release.number,
        "title": release.title,
        "notes": release.notes,
        "created_at": release.created_at,
        "finished_at": release.finished_at,
        "filters": release.filters,
        "counts": release.counts,
        "url": url("api-release", release.number),
        "datasheet_url": url("api-release-file", release.number, reads.DATASHEET),
    }
    if files:
        out["files"] = [
            {**f, "url": url("api-release-file", release.number, f["name"])} for f in release.files
        ]
    return out


NOT_FOUND = OpenApiResponse(ErrorOut, description="No finished release or file of that name.")
DENIED = {401: ErrorOut, 403: ErrorOut}


class ReleaseListApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: ReleaseOut(many=True), **DENIED})
    def get(self, request: Request) -> Response:
        releases = reads.releases_ready()
        return Response(ReleaseOut([_payload(request, r) for r in releases], many=True).data)


class ReleaseDetailApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(responses={200: ReleaseDetailOut, 404: NOT_FOUND, **DENIED})
    def get(self, request: Request, number: int) -> Response:
        release = _release(number)
        return Response(ReleaseDetailOut(_payload(request, release, files=True)).data)


class ReleaseFileApi(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: NOT_FOUND,
            **DENIED,
        }
    )
    def get(self, request: Request, number: int, name: str) -> FileResponse:
        release = _release(number)
        path = reads.release_file(release, name)
        if path is None:
            raise NotFound(f"Release {number} has no file {name!r}; see its `files`.")
        return FileResponse(
            path.open("rb"),
            as_attachment=True,
            filename=f"oddball-{number}-{name}",
            content_type="application/octet-stream",
        )


class ReleaseVotesApi(APIView):
    """The votes of a release exactly as its votes.parquet holds them, in file order."""

    permission_classes = [IsResearcher]

    @extend_schema(
        parameters=[VotesIn],
        responses={200: VotesPageOut, 400: OpenApiTypes.OBJECT, 404: NOT_FOUND, **DENIED},
    )
    def get(self, request: Request, number: int) -> Response:
        release = _release(number)
        query = VotesIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        filters = {
            "triplet_id": q.get("triplet"),
            "listener": q.get("listener"),
            "split": q.get("split"),
            "answer": q.get("answer"),
        }
        page = reads.release_votes_page(release, filters, q["page"], q["page_size"])

        def link(to: int) -> str:
            params = request.query_params.copy()
            params["page"] = str(to)
            return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

        more = q["page"] * q["page_size"] < page.count
        out = {
            "count": page.count,
            "page": q["page"],
            "page_size": q["page_size"],
            "next": link(q["page"] + 1) if more else None,
            "previous": link(q["page"] - 1) if q["page"] > 1 else None,
            "results": page.rows,
        }
        return Response(VotesPageOut(out).data)
