"""The research API's model registry under /api/v1/: model versions with their metrics,
latest held-out evaluation and exported files (ONNX, safetensors, JSON), and the files
themselves, downloadable with a researcher token.

Same access, rate limit and error shape as annotation/research_api.py.
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.api_errors import error_responses
from annotation.research_api import PageIn, ResearchApiView, page, page_of, query_valid
from training.models import Evaluation, ModelVersion

HASH_CACHE_S = 24 * 3600  # a file's SHA-256, keyed by its path, size and mtime
EVALUATION_KEYS = (
    "agreement",
    "ci_low",
    "ci_high",
    "vote_agreement",
    "ceiling",
    "random",
    "mel_stats",
)


class ModelListIn(PageIn):
    name = serializers.CharField(max_length=40, required=False, help_text='e.g. "oddnet".')
    promoted = serializers.BooleanField(required=False, allow_null=True, default=None)


class ArtifactOut(serializers.Serializer):
    kind = serializers.CharField(help_text="onnx, onnx_waveform, safetensors, json, ...")
    name = serializers.CharField(help_text="The file's name.")
    url = serializers.URLField(help_text="Download with the same token.")
    bytes = serializers.IntegerField(allow_null=True, help_text="Null when the file is missing.")
    sha256 = serializers.CharField(allow_null=True, help_text="Null when the file is missing.")


class EvaluationOut(serializers.Serializer):
    split = serializers.CharField()
    created_at = serializers.DateTimeField()
    agreement = serializers.FloatField(allow_null=True, help_text="With the majority answer.")
    ci_low = serializers.FloatField(allow_null=True, help_text="Bootstrap 95% interval.")
    ci_high = serializers.FloatField(allow_null=True)
    vote_agreement = serializers.FloatField(allow_null=True, help_text="With single votes.")
    ceiling = serializers.FloatField(allow_null=True, help_text="The human ceiling.")
    random = serializers.FloatField(allow_null=True)
    mel_stats = serializers.FloatField(allow_null=True, help_text="The mel-stats baseline.")
    n_triplets = serializers.IntegerField(allow_null=True)
    n_votes = serializers.IntegerField(allow_null=True)


class ModelVersionOut(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.IntegerField()
    space = serializers.CharField(help_text='Where its vectors are stored, "name@version".')
    promoted = serializers.BooleanField(help_text="The version served now.")
    promoted_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    n_params = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    metrics = serializers.DictField(
        child=serializers.JSONField(), help_text="Training metrics (scalar values only)."
    )
    evaluation = EvaluationOut(allow_null=True, help_text="The latest held-out evaluation.")
    artifacts = ArtifactOut(many=True)
    url = serializers.URLField()


ModelPageOut = page_of(ModelVersionOut, "ModelPageOut")


def _sha256(path: Path) -> tuple[int, str] | None:
    """Size and SHA-256 of a file, cached while it stays the same; None when missing."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (
        "oddball:sha256:"
        + hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
    )
    digest = cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        cache.set(key, digest, HASH_CACHE_S)
    return stat.st_size, digest


def latest_evaluations(versions: list[ModelVersion]) -> dict[int, Evaluation]:
    """The newest evaluation of each of these versions, in one query."""
    rows = Evaluation.objects.filter(model_version__in=versions).order_by("-created_at", "-id")
    latest: dict[int, Evaluation] = {}
    for evaluation in rows:
        latest.setdefault(evaluation.model_version_id, evaluation)
    return latest


def _evaluation(latest: Evaluation | None) -> dict | None:
    if latest is None:
        return None
    r = latest.results if isinstance(latest.results, dict) else {}
    out = {k: r.get(k) if isinstance(r.get(k), int | float) else None for k in EVALUATION_KEYS}
    counts = {k: r.get(k) if isinstance(r.get(k), int) else None for k in ("n_triplets", "n_votes")}
    return {"split": latest.split, "created_at": latest.created_at, **out, **counts}


def version_payload(request: Request, version: ModelVersion, latest: Evaluation | None) -> dict:
    artifacts = []
    for kind, relative in sorted(version.artifacts.items()):
        path = Path(settings.MEDIA_ROOT) / str(relative)
        found = _sha256(path)
        url = reverse("api-research-model-file", args=[version.space, kind])
        artifacts.append(
            {
                "kind": kind,
                "name": path.name,
                "url": request.build_absolute_uri(url),
                "bytes": found[0] if found else None,
                "sha256": found[1] if found else None,
            }
        )
    scalars = (str, int, float, bool, type(None))
    return {
        "name": version.name,
        "version": version.version,
        "space": version.space,
        "promoted": version.promoted,
        "promoted_at": version.promoted_at,
        "created_at": version.created_at,
        "n_params": version.n_params,
        "size_bytes": version.size_bytes,
        "metrics": {k: v for k, v in version.metrics.items() if isinstance(v, scalars)},
        "evaluation": _evaluation(latest),
        "artifacts": artifacts,
        "url": request.build_absolute_uri(reverse("api-research-model", args=[version.space])),
    }


def _version_or_404(space: str) -> ModelVersion:
    name, _, number = space.rpartition("@")
    version = None
    if name and number.isdecimal() and len(number) < 10:
        version = ModelVersion.objects.filter(name=name, version=int(number)).first()
    if version is None:
        raise NotFound(f'No model version "{space}"; spaces look like "oddnet@3".')
    return version


class ModelListApi(ResearchApiView):
    """Every registered model version, by name and version."""

    @extend_schema(
        tags=["research"],
        operation_id="research_models_list",
        parameters=[ModelListIn],
        responses={200: ModelPageOut, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        v = query_valid(ModelListIn, request)
        versions = ModelVersion.objects.order_by("name", "version")
        if v.get("name"):
            versions = versions.filter(name=v["name"])
        if v.get("promoted") is not None:
            versions = versions.filter(promoted=v["promoted"])
        out = page(request, versions, v["limit"], v["offset"])
        latest = latest_evaluations(out["results"])
        out["results"] = [version_payload(request, m, latest.get(m.id)) for m in out["results"]]
        return Response(ModelPageOut(out).data)


class ModelDetailApi(ResearchApiView):
    """One model version by its space, e.g. `oddnet@3`."""

    @extend_schema(
        tags=["research"],
        operation_id="research_model",
        responses={200: ModelVersionOut, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request: Request, space: str) -> Response:
        version = _version_or_404(space)
        latest = latest_evaluations([version]).get(version.id)
        return Response(ModelVersionOut(version_payload(request, version, latest)).data)


class AnyAccept(DefaultContentNegotiation):
    """A download answers whatever the client accepts (`Accept: application/octet-stream`
    included) instead of 406; its errors are JSON."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class ModelFileApi(ResearchApiView):
    """One exported file of a model version; compare its SHA-256 with the listing's."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = AnyAccept

    @extend_schema(
        tags=["research"],
        operation_id="research_model_file",
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
            **error_responses(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, space: str, kind: str) -> FileResponse:
        version = _version_or_404(space)
        if kind not in version.artifacts:
            kinds = ", ".join(sorted(version.artifacts)) or "none"
            raise NotFound(f"{version.space} has no {kind} file; its files: {kinds}.")
        path = Path(settings.MEDIA_ROOT) / str(version.artifacts[kind])
        if not path.is_file():
            raise NotFound(f"The {kind} file of {version.space} is missing on the server.")
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
