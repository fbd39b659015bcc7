"""Reads for the embeddings app."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Max, Q

from embeddings import index
from embeddings.extractors import mel_stats
from embeddings.models import Clip, ClipEmbedding, Embedding, Rendering, Snippet, Track
from embeddings.transitions import RENDER_VERSION

TRANSITION_SPACE_PREFIX = "transnet@"  # clip spaces written by the transition model
NEXT_SLACK = 20  # extra neighbours asked of the index, for candidates on unapproved tracks


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


_indexes: dict[Path, tuple[tuple[int, int], index.VectorIndex]] = {}  # per process


def index_loaded(path: Path) -> index.VectorIndex:
    """The vector index at `path`, read again only when the file changed (an index is
    swapped in by renaming, so a new index is a new inode). Making tasks asks for next
    clips hundreds of times in a row, and every similar-track query needs its space's
    index; each read would load the file anew."""
    stat = path.stat()
    stamp = (stat.st_ino, stat.st_mtime_ns)
    cached = _indexes.get(path)
    if cached is None or cached[0] != stamp:
        cached = (stamp, index.VectorIndex.load(path))
        _indexes[path] = cached
    return cached[1]


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
    found = index_loaded(path)
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


def proposer_space() -> str | None:
    """The space that proposes next clips: the newest transition model version with an
    index of openings, else mel-stats when it has one; None while no clip index exists."""
    learned = [s for s in clip_spaces() if s.startswith(TRANSITION_SPACE_PREFIX)]
    # Newest by version number: a sweep adding vectors to an older version must not win.
    learned.sort(key=lambda s: int(s.rpartition("@")[2] or 0), reverse=True)
    for space in [*learned, f"{mel_stats.NAME}@{mel_stats.VERSION}"]:
        if clip_index_path(space).is_file():
            return space
    return None


def track_public(track_id: int) -> Track | None:
    """An approved track, or None (unknown, pending or rejected tracks are not offered)."""
    return Track.objects.filter(id=track_id, status=Track.Status.APPROVED, hidden=False).first()


def track_clip(track: Track, clip_id: int | None = None) -> Clip | None:
    """Clip `clip_id` of this track, or its last clip (where "what plays next" is asked
    most); None when the track has no such clip."""
    clips = Clip.objects.filter(track=track)
    if clip_id is not None:
        return clips.filter(id=clip_id).first()
    return clips.order_by("-position").first()


def clip_has_ending(clip_id: int, space: str) -> bool:
    return ClipEmbedding.objects.filter(clip_id=clip_id, space=space, part="ending").exists()


@dataclass(frozen=True)
class NextCandidate:
    clip_id: int
    track_id: int
    title: str
    start_s: float
    score: float  # as in NextClip: higher is better


def next_candidates(clip_id: int, space: str, k: int = 10) -> list[NextCandidate]:
    """The k best next clips after `clip_id` in `space` from other approved tracks, best
    first, with what a listing shows of them (see `clips_next`). Four queries."""
    ranked = clips_next(clip_id, space, k=k + NEXT_SLACK)
    rows = Clip.objects.filter(
        id__in=[c.clip_id for c in ranked], track__status=Track.Status.APPROVED, track__hidden=False
    ).values_list("id", "track_id", "track__title", "start_s")
    found = {row[0]: row for row in rows}
    out = [NextCandidate(*found[c.clip_id], c.score) for c in ranked if c.clip_id in found]
    return out[:k]


def clip_public(clip_id: int) -> Clip | None:
    """A clip of an approved track, with its track, or None."""
    return (
        Clip.objects.select_related("track")
        .filter(id=clip_id, track__status=Track.Status.APPROVED, track__hidden=False)
        .first()
    )


def rendering_find(clip_x_id: int, clip_y_id: int, style: str, seed: int = 0) -> Rendering | None:
    """The current renderer's rendering of this pair and style, if it was made."""
    return Rendering.objects.filter(
        clip_x_id=clip_x_id, clip_y_id=clip_y_id, style=style, seed=seed, version=RENDER_VERSION
    ).first()


def clip_track_ids() -> dict[int, int]:
    """The track of every clip, by clip id."""
    return dict(Clip.objects.values_list("id", "track_id"))


def rendering_get(rendering_id: int) -> Rendering | None:
    return Rendering.objects.filter(id=rendering_id).first()
