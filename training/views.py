"""The staff dashboard: how often each model version agrees with people, training runs as
they happen, and the buttons to retrain and to promote a version."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.models import Judgment, Listener, Triplet
from embeddings.extractors import beats
from embeddings.models import Snippet, Track
from training import services
from training.models import ModelVersion
from training.selectors import dashboard_rows, retraining_status, training_runs_recent
from training.tasks import promote_model, train_model

CHART_W, CHART_H, BAR_GAP = 640, 240, 12  # px


def chart_bars(rows: list[dict]) -> dict:
    """Geometry of the agreement chart: one bar per evaluated version with its 95% interval,
    and reference lines for random, mel-stats and the human ceiling (from the newest)."""
    evaluated = [r for r in rows if r["evaluation"]]
    if not evaluated:
        return {}
    width = (CHART_W - BAR_GAP) / len(evaluated) - BAR_GAP

    def y(value: float | None) -> float | None:
        return None if value is None else round(CHART_H * (1 - value), 1)

    bars = []
    for i, row in enumerate(evaluated):
        r = row["evaluation"].results
        x = BAR_GAP + i * (width + BAR_GAP)
        bars.append(
            {
                "x": round(x, 1),
                "w": round(width, 1),
                "y": y(r["agreement"]),
                "h": round(CHART_H * r["agreement"], 1),
                "cx": round(x + width / 2, 1),
                "lo": y(r["ci_low"]),
                "hi": y(r["ci_high"]),
                "label": r["model"],
                "value": r["agreement"],
            }
        )
    newest = evaluated[-1]["evaluation"].results
    lines = [
        {"name": "random", "y": y(newest["random"]), "value": newest["random"]},
        {"name": "mel-stats", "y": y(newest["mel_stats"]), "value": newest["mel_stats"]},
    ]
    if newest["ceiling"] is not None:
        lines.append(
            {"name": "human ceiling", "y": y(newest["ceiling"]), "value": newest["ceiling"]}
        )
    return {"w": CHART_W, "h": CHART_H, "bars": bars, "lines": lines}


@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    rows = dashboard_rows()
    counts = {
        "tracks": Track.objects.count(),
        "snippets": Snippet.objects.count(),
        "triplets": Triplet.objects.count(),
        "listeners": Listener.objects.count(),
        "judgments": Judgment.objects.count(),
    }
    status = retraining_status()
    beats_ok, beats_reason = beats.availability(settings.ODDBALL_BEATS_CHECKPOINT)
    context = {
        "rows": rows,
        "chart": chart_bars(rows),
        "counts": counts,
        "runs": training_runs_recent(),
        "retraining": status,
        "beats": {"available": beats_ok, "reason": beats_reason},
        # While a run is going, the page refreshes itself to show its progress.
        "refresh_s": 5 if status["active"] else None,
    }
    return render(request, "training/dashboard.html", context)


@staff_member_required
@require_POST
def retrain(request: HttpRequest) -> HttpResponse:
    try:
        run = services.training_run_create(reason=f"started by {request.user.get_username()}")
    except services.TrainingBusy as e:
        messages.error(request, str(e))
        return redirect("dashboard")
    transaction.on_commit(lambda: train_model.delay(run.id))
    messages.success(request, f"Training run {run.id} queued.")
    return redirect("dashboard")


@staff_member_required
@require_POST
def promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, id=version_id)
    transaction.on_commit(lambda: promote_model.delay(version.id))
    messages.success(
        request, f"{version.space}: re-embedding every snippet, then it will be served."
    )
    return redirect("dashboard")


def models_page(request: HttpRequest) -> HttpResponse:
    """Every model version with its files, for anyone to take away."""
    versions = ModelVersion.objects.exclude(artifacts={}).order_by("name", "-version")
    return render(request, "training/models.html", {"versions": versions})


def model_file(request: HttpRequest, space: str, kind: str) -> FileResponse:
    name, _, number = space.rpartition("@")
    version = get_object_or_404(ModelVersion, name=name, version=int(number or 0))
    if kind not in version.artifacts:
        raise Http404(f"{space} has no {kind} file; kinds: {', '.join(version.artifacts)}")
    path = Path(settings.MEDIA_ROOT) / version.artifacts[kind]
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
