"""Reads for the embeddings app."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q

from embeddings import index
from embeddings.models import Clip, ClipEmbedding, Embedding, Snippet


def embedding_matrix(
    space: str, snippet_ids: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every snippet stored in `space`, ordered by snippet id."""
    rows = Embedding.objects.filter(space=space).order_by("snippet_id")
    if snippet_ids is not None:
        rows = rows.filter(snippet_id__in=snippet_ids)
    pairs = list(rows.values_list("snippet_id", "vector"))
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.array([p[0] for p in pairs], dtype=np.int64)
    matrix = np.stack([np.frombuffer(bytes(p[1]), dtype="<f4") for p in pairs])
    return ids, matrix


def snippets_missing(space: str) -> list[int]:
    """Ids of visible snippets that have no vector in `space` yet."""
    return list(
        Snippet.objects.filter(hidden=False)
        .exclude(embeddings__space=space)
        .order_by("id")
        .values_list("id", flat=True)
    )


def clip_matrix(space: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, vectors) of every clip opening or ending stored in `space`, by clip id."""
    pairs = list(
        ClipEmbedding.objects.filter(space=space, part=part)
        .order_by("clip_id")
        .values_list("clip_id", "vector")
    )
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.array([p[0] for p in pairs], dtype=np.int64)
    return ids, np.stack([np.frombuffer(bytes(p[1]), dtype="<f4") for p in pairs])


def clip_spaces() -> list[str]:
    """Spaces with clip vectors, newest first (by their latest vector)."""
    rows = ClipEmbedding.objects.values("space").annotate(last=Max("id")).order_by("-last")
    return [r["space"] for r in rows]


def clips_missing(space: str) -> list[int]:
    """Ids of tracks with a whole-track copy and a clip whose edges lack vectors in `space`."""
    counted = (
        Clip.objects.exclude(track__analysis="")
        .annotate(n=Count("embeddings", filter=Q(embeddings__space=space)))
        .filter(n__lt=2)
    )
    return sorted(set(counted.values_list("track_id", flat=True)))


def clip_index_path(space: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "index" / f"clips-{space.replace('@', '-')}.faiss"


@dataclass(frozen=True)
class NextClip:
    clip_id: int
    score: float  # higher is better: cosine in a learned space, minus distance in mel-stats


def clips_next(clip_id: int, space: str, k: int = 10, other_tracks: bool = True) -> list[NextClip]:
    """The k clips whose openings best follow clip `clip_id`'s ending in `space`, best first,
    from the space's FAISS index of openings. With `other_tracks`, clips of the same track
    are left out (its own next clip would win trivially). Empty when the clip has no ending
    vector or the space no index yet."""
    ending = ClipEmbedding.objects.filter(clip_id=clip_id, space=space, part="ending").first()
    path = clip_index_path(space)
    if ending is None or not path.is_file():
        return []
    found = index.VectorIndex.load(path)
    track_id = Clip.objects.filter(id=clip_id).values_list("track_id", flat=True).first()
    same = set(Clip.objects.filter(track_id=track_id).values_list("id", flat=True))
    extra = len(same) if other_tracks else 1
    ids, distances = found.search(ending.as_array(), k + extra)
    out = []
    for cid, d in zip(ids[0], distances[0], strict=True):
        if cid < 0 or cid == clip_id or (other_tracks and cid in same):
            continue
        score = -float(np.sqrt(max(d, 0.0))) if found.standardised else 1.0 - float(d) / 2
        out.append(NextClip(int(cid), score))
    return out[:k]
