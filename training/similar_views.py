"""/similar/: ask for the tracks nearest to a snippet or to an uploaded clip (similar.js
calls /api/v1/similar/), and the embedding map of the collection, drawn here as SVG.

A research tool open to everyone, in English like the other research pages (/models/)."""

from collections import Counter

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from training import similar
from training.similar_api import DEFAULT_K, MAX_K

MAP_W, MAP_H, MAP_PAD = 640, 480, 16  # px of the SVG's viewBox
POINT_R = 6  # px
# Tableau 10: distinct at a glance and readable on white; the tenth colour is "other".
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip


def map_drawing(layout: dict) -> dict:
    """SVG geometry of the embedding map: points at their PCA and t-SNE places, coloured by
    collection (the nine largest; the rest share "other"), and the legend."""
    points = layout.get("points", [])
    counts = Counter(p["collection"] for p in points)
    named = [c for c, _ in counts.most_common(len(PALETTE) - 1)]
    if len(counts) > len(named):
        named.append("other")
    colour = {c: PALETTE[i] for i, c in enumerate(named)}

    def place(xy: list[float]) -> tuple[float, float]:
        x = MAP_PAD + xy[0] * (MAP_W - 2 * MAP_PAD)
        y = MAP_PAD + (1 - xy[1]) * (MAP_H - 2 * MAP_PAD)
        return round(x, 1), round(y, 1)

    drawn = []
    for p in points:
        group = p["collection"] if p["collection"] in colour else "other"
        drawn.append(
            {
                **p,
                "group": group,
                "colour": colour[group],
                "url": default_storage.url(p["audio"]),
                "at": {"pca": place(p["pca"]), "tsne": place(p["tsne"])},
            }
        )
    legend = [
        {"name": c, "colour": colour[c], "n": sum(1 for p in drawn if p["group"] == c)}
        for c in named
    ]
    return {"points": drawn, "legend": legend, "tsne": layout.get("tsne", False)}


def similar_page(request: HttpRequest) -> HttpResponse:
    """Query by snippet or by upload; the embedding map of the answering space."""
    try:
        space, reason = similar.similar_space(), ""
    except similar.NotReady as e:
        space, reason = None, str(e)
    drawing = map_drawing(similar.embedding_map(space.name)) if space else None
    context = {
        "space": space,
        "reason": reason,
        "tracks": similar.pickable_tracks() if space else [],
        "drawing": drawing,
        "map_w": MAP_W,
        "map_h": MAP_H,
        "point_r": POINT_R,
        "api_url": reverse("api-similar"),
        "default_k": DEFAULT_K,
        "max_k": MAX_K,
        "max_upload_mb": settings.ODDBALL_SIMILAR_MAX_UPLOAD_MB,
        "min_upload_s": int(similar.MIN_UPLOAD_S),
        "max_upload_s": int(similar.MAX_UPLOAD_S),
    }
    return render(request, "training/similar.html", context)
