"""Celery adapters for ingest and embedding: take ids or paths, call one service, return."""

from pathlib import Path

from celery import shared_task

from embeddings import services


@shared_task(name="embeddings.import_file", queue="ingest", acks_late=True)
def import_file(
    path: str, meta: dict | None = None, snippet_s: float = 15.0, status: str | None = None
) -> dict:
    """Import one audio file (idempotent by checksum), then ask for its snippets' vectors.
    `status` "pending" holds the track for a curator's approval (None: the setting decides).

    Returns the ImportOutcome as a dict.
    """
    track_meta = services.TrackMeta(**meta) if meta else None
    outcome = services.track_import(Path(path), track_meta, snippet_s, status=status)
    if outcome.snippet_ids:
        embed_mel_stats.delay(outcome.snippet_ids)
    if outcome.clip_ids:
        embed_clips_mel_stats.delay(outcome.track_id)
    return outcome.as_dict()


@shared_task(name="embeddings.embed_mel_stats", queue="embed", acks_late=True)
def embed_mel_stats(snippet_ids: list[int]) -> int:
    """Compute missing mel-stats vectors for these snippets; returns how many were stored."""
    return services.snippets_embed_mel_stats(snippet_ids)


@shared_task(name="embeddings.embed_beats", queue="embed", acks_late=True)
def embed_beats(snippet_ids: list[int]) -> int:
    """Compute missing BEATs vectors for these snippets; returns how many were stored."""
    return services.snippets_embed_beats(snippet_ids)


@shared_task(name="embeddings.build_index", queue="embed", acks_late=True)
def build_index(space: str) -> str:
    """Rebuild the FAISS index of one space and swap it in."""
    return str(services.index_build(space))


@shared_task(name="embeddings.embed_clips_mel_stats", queue="embed", acks_late=True)
def embed_clips_mel_stats(track_id: int) -> int:
    """Compute missing mel-stats vectors of one track's clip openings and endings."""
    return services.clips_embed_mel_stats(track_id)


@shared_task(name="embeddings.build_clip_index", queue="embed", acks_late=True)
def build_clip_index(space: str) -> str:
    """Rebuild the FAISS index of one space's clip openings and swap it in."""
    return str(services.clip_index_build(space))


@shared_task(name="embeddings.render_transition_pair", queue="ingest", acks_late=True)
def render_transition_pair(clip_x_id: int, clip_y_id: int, style: str) -> int:
    """Render clip X flowing into clip Y in `style` (idempotent), as "what plays next" asks
    for it; returns the rendering id."""
    rendering, _created = services.rendering_make(clip_x_id, clip_y_id, style)
    return rendering.id
