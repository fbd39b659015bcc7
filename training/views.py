"""The curators' dashboard: how often each model version agrees with people, how well each
transition model finds what plays next, training runs as they happen, and the buttons to
retrain, to train the transition model and to promote a version."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotation.models import Judgment, Listener, Triplet
from annotation.roles import curator_required, models_access_required
from embeddings.extractors import beats
from embeddings.models import Snippet, Track
from training import services
from training.models import TRANSITION_MODEL, ModelVersion
from training.selectors import (
    dashboard_rows,
    retraining_status,
    training_runs_recent,
    transition_rows,
)
from training.tasks import promote_model, train_model

CHART_W, CHART_H, BAR_GAP = 640, 240, 12  # px
COSINE_H = 180  # px, the cosine distributions' plot
COSINE_TICKS = (-1.0, -0.5, 0.0, 0.5, 1.0)


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


def cosine_chart(results: dict) -> dict:
    """Geometry of one transition evaluation's cosine distributions: the share of seams in
    each bin over [-1, 1], for the true continuation and for a random candidate, as two
    step lines on one scale, with each median marked."""

    def x(value: float) -> float:
        return round((value + 1) / 2 * CHART_W, 1)

    series = []
    for key, name, colour in (
        ("cosine_true", "true continuation", "#3b4fd8"),
        ("cosine_random", "random candidate", "#c0392b"),
    ):
        counts = results[key]["counts"]
        total = max(sum(counts), 1)
        series.append((results[key], name, colour, [c / total for c in counts]))
    top = max(max(shares) for *_, shares in series) or 1.0
    lines = []
    for legend, (distribution, name, colour, shares) in enumerate(series):
        edges = distribution["edges"]
        points = []
        for i, share in enumerate(shares):
            y = round(COSINE_H * (1 - share / top), 1)
            points += [f"{x(edges[i])},{y}", f"{x(edges[i + 1])},{y}"]
        median = distribution["quantiles"]["0.5"]
        lines.append(
            {
                "name": name,
                "colour": colour,
                "points": " ".join(points),
                "median": median,
                "median_x": x(median),
                "legend_y": 14 + 18 * legend,
            }
        )
    # The end labels are anchored inside the plot, so they are not cut off.
    anchors = {COSINE_TICKS[0]: "start", COSINE_TICKS[-1]: "end"}
    ticks = [{"value": t, "x": x(t), "anchor": anchors.get(t, "middle")} for t in COSINE_TICKS]
    return {"w": CHART_W, "h": COSINE_H, "lines": lines, "ticks": ticks}


SEAM_PICKS = (
    ("true", "true continuation"),
    ("model", "model's pick"),
    ("melstats", "mel-stats' pick"),
    ("random", "random candidate"),
)


def transition_sections() -> list[dict]:
    """One dashboard section per transition model version, newest first."""
    sections = []
    for row in transition_rows():
        results = row["evaluation"].results if row["evaluation"] else None
        section = {"version": row["version"], "r": results, "chart": None, "seam": []}
        if results:
            section["chart"] = cosine_chart(results)
            section["seam"] = [(name, results["seam"][key]) for key, name in SEAM_PICKS]
        sections.append(section)
    return sections


@curator_required
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
        "transitions": transition_sections(),
        "counts": counts,
        "runs": training_runs_recent(),
        "retraining": status,
        "beats": {"available": beats_ok, "reason": beats_reason},
        # While a run is going, the page refreshes itself to show its progress.
        "refresh_s": 5 if status["active"] else None,
    }
    return render(request, "training/dashboard.html", context)


@curator_required
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


@curator_required
@require_POST
def train_transitions(request: HttpRequest) -> HttpResponse:
    try:
        run = services.training_run_create(
            reason=f"transitions, started by {request.user.get_username()}",
            model_name=TRANSITION_MODEL,
        )
    except (services.TrainingBusy, ValueError) as e:
        messages.error(request, str(e))
        return redirect("dashboard")
    transaction.on_commit(lambda: train_model.delay(run.id))
    messages.success(request, f"Training run {run.id} (transition model) queued.")
    return redirect("dashboard")


@curator_required
@require_POST
def promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, id=version_id)
    if version.name == TRANSITION_MODEL:
        messages.error(request, f"{version.space} answers what plays next; it is not promoted.")
        return redirect("dashboard")
    transaction.on_commit(lambda: promote_model.delay(version.id))
    messages.success(
        request, f"{version.space}: re-embedding every snippet, then it will be served."
    )
    return redirect("dashboard")


@models_access_required
def models_page(request: HttpRequest) -> HttpResponse:
    """Every model version with its files, for curators and researchers to take away."""
    versions = ModelVersion.objects.exclude(artifacts={}).order_by("name", "-version")
    return render(request, "training/models.html", {"versions": versions})


@models_access_required
def model_file(request: HttpRequest, space: str, kind: str) -> FileResponse:
    name, _, number = space.rpartition("@")
    if not number.isdecimal() or len(number) > 9:
        raise Http404(f"{space} is not a model version (name@number)")
    version = get_object_or_404(ModelVersion, name=name, version=int(number))
    if kind not in version.artifacts:
        raise Http404(f"{space} has no {kind} file; kinds: {', '.join(version.artifacts)}")
    path = Path(settings.MEDIA_ROOT) / version.artifacts[kind]
    if not path.is_file():
        raise Http404(f"the {kind} file of {space} is missing on this server")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
