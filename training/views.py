"""The staff dashboard: how often each model version agrees with people."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotation.models import Judgment, Listener, Triplet
from embeddings.models import Snippet, Track
from training.selectors import dashboard_rows, training_runs_recent

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
    context = {
        "rows": rows,
        "chart": chart_bars(rows),
        "counts": counts,
        "runs": training_runs_recent(),
    }
    return render(request, "training/dashboard.html", context)
