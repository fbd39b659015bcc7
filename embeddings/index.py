"""Exact nearest-neighbour search over embedding vectors (FAISS), with optional z-scoring.

Collections here are small (thousands to a few hundred thousand snippets), so an exact
IndexFlatL2 is both fast enough and free of recall questions.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

STD_FLOOR = 1e-6  # keeps constant features from dividing by zero
SMALL_BATCH = 32  # queries; below this one OpenMP thread is faster (24 ms -> 0.4 ms each)
LOAD_ATTEMPTS = 5  # tries before a mismatched index and sidecar count as damaged
LOAD_RETRY_S = 0.05  # s between tries, long enough for a concurrent save to finish
_DEFAULT_THREADS = faiss.omp_get_max_threads()


def standardise(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-score the columns of (N, D) vectors; returns (z, mean, std), std floored at 1e-6."""
    vectors = np.asarray(vectors, dtype=np.float32)
    mean = vectors.mean(axis=0)
    std = np.maximum(vectors.std(axis=0), STD_FLOOR)
    return ((vectors - mean) / std).astype(np.float32), mean, std.astype(np.float32)


_zscore = standardise  # VectorIndex.build's `standardise` flag shadows the function's name


class VectorIndex:
    """Exact L2 search over vectors keyed by int64 ids (snippet ids, usually).

    Build with `VectorIndex.build`, or read a saved one with `VectorIndex.load`.
    """

    def __init__(self, index: faiss.IndexIDMap, mean: np.ndarray | None, std: np.ndarray | None):
        self._index = index
        self.mean = mean
        self.std = std

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, standardise: bool) -> VectorIndex:
        """Index (N, D) float32 `vectors` under int64 `ids`.

        With `standardise`, every dimension is z-scored by the collection's mean and std,
        which are kept so queries are scaled the same way (features with different units,
        like mel-stats, need this; L2-normalised learned embeddings do not).
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        ids = np.asarray(ids)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"expected a non-empty (N, D) matrix, got shape {vectors.shape}")
        if ids.shape != (len(vectors),) or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"expected {len(vectors)} integer ids, got {ids.dtype} {ids.shape}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique")
        if not np.isfinite(vectors).all():
            raise ValueError("vectors contain NaN or infinite values")
        mean = std = None
        if standardise:
            vectors, mean, std = _zscore(vectors)
        index = faiss.IndexIDMap(faiss.IndexFlatL2(vectors.shape[1]))
        index.add_with_ids(np.ascontiguousarray(vectors), ids.astype(np.int64))
        return cls(index, mean, std)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def standardised(self) -> bool:
        return self.mean is not None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest ids and their squared L2 distances for (D,) or (M, D) queries.

        Returns (ids, distances), each (M, k), nearest first; k is capped at the index size.
        Distances are in the standardised space when the index standardises.
        """
        query = np.atleast_2d(np.asarray(query, dtype=np.float32))
        if query.ndim != 2 or query.shape[1] != self.dim:
            raise ValueError(f"expected queries of dimension {self.dim}, got shape {query.shape}")
        if self.standardised:
            query = (query - self.mean) / self.std
        k = min(int(k), len(self))
        if k < 1:
            raise ValueError("k must be at least 1")
        # FAISS's OpenMP start-up dominates a single small query on this hardware.
        faiss.omp_set_num_threads(1 if len(query) < SMALL_BATCH else _DEFAULT_THREADS)
        distances, ids = self._index.search(np.ascontiguousarray(query, dtype=np.float32), k)
        return ids, distances

    def save(self, path: Path | str) -> None:
        """Write the index to `path` and its scaling to `path` + ".npz", each atomically.

        The index file is a plain FAISS file (faiss.read_index opens it). The sidecar
        holds the index's SHA-256, so `load` never pairs a new index with an old sidecar.
        """
        path = Path(path)
        blob = faiss.serialize_index(self._index)
        sidecar = io.BytesIO()
        empty = np.zeros(0, dtype=np.float32)
        np.savez(
            sidecar,
            mean=empty if self.mean is None else self.mean,
            std=empty if self.std is None else self.std,
            standardised=np.array(self.standardised),
            index_sha256=np.array(hashlib.sha256(blob).hexdigest()),
        )
        # Index first, sidecar second: a reader in between sees a mismatch and retries.
        _write_atomic(path, blob.tobytes())
        _write_atomic(_sidecar_path(path), sidecar.getvalue())

    @classmethod
    def load(cls, path: Path | str) -> VectorIndex:
        """Read an index written by `save`, waiting out a save that is in progress."""
        path = Path(path)
        for attempt in range(LOAD_ATTEMPTS):
            with np.load(_sidecar_path(path)) as meta:
                fields = {name: meta[name] for name in meta.files}
            blob = np.fromfile(path, dtype=np.uint8)
            if hashlib.sha256(blob).hexdigest() == str(fields["index_sha256"]):
                break
            if attempt < LOAD_ATTEMPTS - 1:
                time.sleep(LOAD_RETRY_S)
        else:
            raise ValueError(f"{path} does not match its sidecar; rebuild the index")
        index = faiss.deserialize_index(blob)
        if bool(fields["standardised"]):
            return cls(index, fields["mean"].astype(np.float32), fields["std"].astype(np.float32))
        return cls(index, None, None)


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".npz")


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Similar tracks and the embedding map (training/similar.py) ---------------------------------


def track_ranking(
    scores: np.ndarray, ids: np.ndarray, track_of: dict[int, int]
) -> list[tuple[int, float, int]]:
    """Aggregate snippet neighbours into tracks: [(track id, score, best snippet id)], best
    first.

    `scores` and `ids` are (M, k) per query window, higher scores better (padding ids -1).
    A track's score is the mean over the windows of its best snippet's score there; a
    track missing from one window's list is given that window's lowest score (its true
    score is at most that), so a track that matches only one window of a long clip does
    not outrank one that matches all of them. Snippets absent from `track_of` (hidden,
    or on a track left out) are skipped. The best snippet is the track's single closest
    snippet to any window.
    """
    scores, ids = np.atleast_2d(scores), np.atleast_2d(ids)
    per_window: list[dict[int, float]] = []
    floors: list[float] = []
    best: dict[int, tuple[float, int]] = {}
    for row_scores, row_ids in zip(scores, ids, strict=True):
        found: dict[int, float] = {}
        lowest = 0.0
        for score, sid in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
            track = track_of.get(int(sid)) if sid >= 0 else None
            if track is None:
                continue
            lowest = min(lowest, score) if found else score
            found[track] = max(found.get(track, -np.inf), score)
            if score > best.get(track, (-np.inf, 0))[0]:
                best[track] = (score, int(sid))
        per_window.append(found)
        floors.append(lowest)
    totals = {
        track: float(np.mean([w.get(track, f) for w, f in zip(per_window, floors, strict=True)]))
        for track in best
    }
    ranked = sorted(totals, key=lambda t: (-totals[t], t))
    return [(t, totals[t], best[t][1]) for t in ranked]


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The (N, 2) projection of (N, D) vectors on their first two principal axes, signs
    fixed (largest loading positive) so the picture does not flip between runs."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.argmax(np.abs(axes), axis=1)])
    out = x @ (axes * signs[:, None]).T
    return out if out.shape[1] == 2 else np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


TSNE_MIN_POINTS = 5  # below this t-SNE's perplexity has no room; the map shows PCA only


def tsne_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """A seeded 2-D t-SNE of (N, D) vectors (scikit-learn, PCA start), or None for fewer
    than TSNE_MIN_POINTS points. Perplexity is 30, or less for small sets (it must stay
    below N)."""
    x = np.asarray(vectors, dtype=np.float32)
    if len(x) < TSNE_MIN_POINTS:
        return None
    from sklearn.manifold import TSNE  # imported here: only the map needs scikit-learn (2 s)

    perplexity = float(min(30.0, (len(x) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(x).astype(np.float64)


def unit_square(points: np.ndarray) -> np.ndarray:
    """Scale (N, 2) points into [0, 1]² keeping their aspect ratio, centred."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return points.reshape(0, 2)
    low, high = points.min(axis=0), points.max(axis=0)
    span = float(max(high - low)) or 1.0
    return (points - low) / span + (1.0 - (high - low) / span) / 2
