"""Reads for the embeddings app."""

import numpy as np

from embeddings.models import Embedding, Snippet


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
