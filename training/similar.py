"""Similar tracks: the nearest approved tracks to a snippet or to uploaded audio, in the
promoted model's space (mel-stats until a version is promoted), and the embedding map of
the collection.

Design note. The FAISS index of a space holds snippets, but people ask for tracks, so
snippet neighbours are aggregated per track (`index.track_ranking`): a track scores the
mean, over the query's windows, of its best snippet's score. A snippet query is one
window; an upload is cut into snippet-length windows (UPLOAD_WINDOW_S, half overlapping),
each loudness-normalised like a snippet and embedded as a snippet is, so queries and the
collection are described alike even though oddnet would take any length: mel-stats
summaries of a three-minute clip are not comparable with those of 15 s snippets.
"""

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db.models import Count

from embeddings import audio, index
from embeddings.extractors import mel_stats
from embeddings.models import Embedding, Snippet, Track
from embeddings.selectors import embedding_matrix, index_loaded
from embeddings.services import MEL_STATS_SPACE, index_build, index_path
from training import nets
from training.models import ModelVersion
from training.selectors import served_version
from training.services import HEAD_NAME, model_load

log = logging.getLogger(__name__)

UPLOAD_WINDOW_S = audio.DEFAULT_SNIPPET_S  # s, as long as an imported snippet
UPLOAD_HOP_S = UPLOAD_WINDOW_S / 2  # s between window starts
MIN_UPLOAD_S = 5.0  # s; shorter clips say too little about a track
MAX_UPLOAD_S = 600.0  # s; "a few minutes", with room
MIN_UPLOAD_RATE = 8_000  # Hz; below this a file is not music (and loudness filters fail)
# Samples decoded at most (600 s of 48 kHz stereo, 230 MB as float32): a small FLAC of
# 8-channel 384 kHz silence would otherwise decode to gigabytes.
MAX_UPLOAD_SAMPLES = round(MAX_UPLOAD_S) * audio.BROWSER_RATE * 2
SILENT_DBFS = -60.0  # dBFS mean level below which a window is left out
SEARCH_DEPTH = 2000  # snippet neighbours asked per window before aggregating into tracks
MAP_MAX_TRACKS = 3000  # t-SNE of more tracks would keep a page view waiting for minutes


class NotReady(Exception):
    """Nothing can be searched yet (no vectors stored); the message says what to run."""


@dataclass(frozen=True)
class Space:
    name: str  # "oddnet@3", "mel-stats@1"
    version: ModelVersion | None  # the promoted version that answers, None for mel-stats
    note: str  # why mel-stats answers instead of the promoted model; "" when it does not

    @property
    def score_kind(self) -> str:
        return "negative_distance" if self.version is None else "cosine"


@dataclass(frozen=True)
class SimilarTrack:
    track: Track
    score: float  # higher is better; see Space.score_kind
    snippet: Snippet  # the track's best-matching snippet, to play


def similar_space(for_upload: bool = False) -> Space:
    """The space that answers: the promoted version's when it has vectors (and, for an
    upload, when audio can be embedded in it), else mel-stats. NotReady without vectors."""
    served = served_version()
    note = "no model version is promoted"
    if served is not None:
        if not Embedding.objects.filter(space=served.space).exists():
            note = f"the promoted {served.space} has no stored vectors"
        elif for_upload and served.name == HEAD_NAME:
            note = f"the promoted {served.space} reads BEATs vectors, not audio"
        else:
            return Space(served.space, served, "")
    if not Embedding.objects.filter(space=MEL_STATS_SPACE).exists():
        raise NotReady("No snippet has vectors yet; run `embed` first.")
    return Space(MEL_STATS_SPACE, None, note)


def space_index(space: str) -> index.VectorIndex:
    """The space's FAISS snippet index, built when missing or stale (it holds fewer or more
    vectors than are stored; vectors are only ever added, so a count tells). Read from
    disk again only when the file changes."""
    path = index_path(space)
    stored = Embedding.objects.filter(space=space).count()
    found = index_loaded(path) if path.is_file() else None
    if found is None or len(found) != stored:
        log.info("similar: index of %s missing or stale (%d vectors stored)", space, stored)
        index_build(space)
        found = index_loaded(path)
    return found


def snippet_similar(snippet: Snippet, k: int) -> tuple[Space, list[SimilarTrack]]:
    """The k approved tracks nearest to a snippet, its own track left out. NotReady when
    the snippet has no vector in the answering space."""
    space = similar_space()
    row = Embedding.objects.filter(snippet=snippet, space=space.name).first()
    if row is None:
        raise NotReady(f"Snippet {snippet.id} has no vector in {space.name} yet; run `embed`.")
    return space, _nearest(space, row.as_array()[None, :], k, exclude_track=snippet.track_id)


def audio_similar(path: Path, k: int) -> tuple[Space, list[SimilarTrack], int]:
    """The k approved tracks nearest to the audio file at `path`, and the number of windows
    it was cut into. Raises audio.AudioError with a reason for audio that cannot be used
    (undecodable, too short, too long, silent)."""
    info = audio.probe(path)
    if info.duration_s > MAX_UPLOAD_S:
        raise audio.AudioError(
            f"too long: {info.duration_s:.0f} s; at most {MAX_UPLOAD_S:.0f} s are compared"
        )
    if info.sample_rate < MIN_UPLOAD_RATE:
        raise audio.AudioError(f"sample rate {info.sample_rate} Hz is below {MIN_UPLOAD_RATE} Hz")
    if info.frames * info.channels > MAX_UPLOAD_SAMPLES:
        raise audio.AudioError(
            f"too much audio: {info.channels} channels at {info.sample_rate} Hz; "
            f"at most {MAX_UPLOAD_S:.0f} s of {audio.BROWSER_RATE} Hz stereo"
        )
    # A header can lie about the length: decoding stops past the longest clip compared.
    wave, sr = audio.decode(path, max_frames=int(MAX_UPLOAD_S * info.sample_rate) + 1)
    if wave.shape[1] / sr < MIN_UPLOAD_S:
        raise audio.AudioError(
            f"too short: {wave.shape[1] / sr:.1f} s, at least {MIN_UPLOAD_S:.0f} s"
        )
    windows = upload_windows(wave, sr)
    if not windows:
        raise audio.AudioError("the clip is silent")
    space = similar_space(for_upload=True)
    return space, _nearest(space, windows_embed(space, windows), k), len(windows)


def upload_windows(wave: np.ndarray, sr: int) -> list[np.ndarray]:
    """16 kHz mono windows of UPLOAD_WINDOW_S (the last one ends where the audio ends; a
    shorter clip is one window), each scaled by the gain that normalises its loudness as
    an imported snippet's is. Near-silent windows are left out."""
    mono16k = audio.resample(audio.to_mono(wave), sr, audio.ANALYSIS_RATE)
    length = round(UPLOAD_WINDOW_S * audio.ANALYSIS_RATE)
    hop = round(UPLOAD_HOP_S * audio.ANALYSIS_RATE)
    last = max(0, len(mono16k) - length)
    starts = sorted({*range(0, last + 1, hop), last})
    out = []
    for start in starts:
        piece = mono16k[start : start + length]
        if 10 * np.log10(max(float(np.mean(piece**2)), 1e-20)) < SILENT_DBFS:
            continue
        first = round(start * sr / audio.ANALYSIS_RATE)
        _, gain_db = audio.normalise_loudness(
            wave[:, first : first + round(UPLOAD_WINDOW_S * sr)], sr
        )
        out.append(np.clip(piece * np.float32(10 ** (gain_db / 20)), -1.0, 1.0))
    return out


def windows_embed(space: Space, windows: list[np.ndarray]) -> np.ndarray:
    """(M, D) vectors of 16 kHz windows in `space`, computed as for imported snippets:
    mel-stats directly, an oddnet from the log-mel cut or wrapped to the snippet length
    (training.selectors.snippet_log_mels)."""
    if space.version is None:
        return np.stack([mel_stats.extract(w) for w in windows])
    frames = nets.seconds_to_frames(UPLOAD_WINDOW_S)
    mels = []
    for window in windows:
        mel = nets.log_mel(torch.from_numpy(np.ascontiguousarray(window))).numpy()
        if mel.shape[1] < frames:
            mel = np.tile(mel, (1, int(np.ceil(frames / mel.shape[1]))))
        mels.append(np.ascontiguousarray(mel[:, :frames], dtype=np.float32))
    return nets.embed(model_load(space.version), mels)


def _nearest(
    space: Space, queries: np.ndarray, k: int, exclude_track: int | None = None
) -> list[SimilarTrack]:
    """Rank approved tracks by their snippets' nearness to the query windows (see the
    design note); the search goes deeper until k tracks are found or the index is spent."""
    found = space_index(space.name)
    depth = min(len(found), max(SEARCH_DEPTH, 50 * k))
    while True:
        ids, distances = found.search(queries, depth)
        scores = _scores(distances, found.standardised)
        visible = Snippet.objects.filter(
            id__in={int(i) for i in ids.ravel() if i >= 0},
            hidden=False,
            track__status=Track.Status.APPROVED,
            track__hidden=False,
        )
        if exclude_track is not None:
            visible = visible.exclude(track_id=exclude_track)
        track_of = dict(visible.values_list("id", "track_id"))
        ranked = index.track_ranking(scores, ids, track_of)
        if len(ranked) >= k or depth >= len(found):
            break
        depth = min(len(found), depth * 4)
    ranked = ranked[:k]
    snippets = Snippet.objects.select_related("track").in_bulk([r[2] for r in ranked])
    return [SimilarTrack(snippets[s].track, float(score), snippets[s]) for _, score, s in ranked]


def _scores(squared: np.ndarray, standardised: bool) -> np.ndarray:
    """Higher-is-better scores from squared L2 distances: minus the distance in a z-scored
    (mel-stats) index, the cosine for L2-normalised vectors (d² = 2 - 2 cos)."""
    if standardised:
        return -np.sqrt(np.maximum(squared, 0.0))
    return 1.0 - squared / 2


# The embedding map ----------------------------------------------------------------------------


def collection_of(source: str) -> str:
    """The collection a track's source names, without versions or paths:
    "debian:wesnoth-1.16-music=1:1.16.9-1:/usr/…" → "debian:wesnoth-1.16-music",
    "github:librosa/data@450cdd8:audio/…" → "github:librosa/data"; "" → "(no source)"."""
    source = source.strip()
    if not source:
        return "(no source)"
    scheme, sep, rest = source.partition(":")
    if not sep:
        return source[:60]
    for mark in "=@:":
        rest = rest.split(mark, 1)[0]
    return f"{scheme}:{rest}"[:60]


def embedding_map(space: str) -> dict:
    """One point per approved track (the mean of its visible snippets' vectors) laid out by
    PCA and by t-SNE in [0, 1]², with the track's title, collection, genre and a snippet
    to play. Cached as a file per space and set of tracks (titles as they were then):
    t-SNE is not recomputed for a page view unless the collection changed."""
    rows = (
        Snippet.objects.filter(
            hidden=False, track__status=Track.Status.APPROVED, track__hidden=False
        )
        .filter(embeddings__space=space)
        .order_by("track_id", "position")
        .values_list("id", "track_id")
    )
    track_of = dict(rows)
    track_ids = sorted(set(track_of.values()))[:MAP_MAX_TRACKS]
    key = hashlib.sha256(json.dumps([space, sorted(track_of.items())]).encode()).hexdigest()[:16]
    path = (
        Path(settings.MEDIA_ROOT)
        / "index"
        / f"map-{space.replace('@', '-')}-{len(track_ids)}-{key}.json"
    )
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    layout = _map_compute(space, track_of, track_ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two workers may race here
    tmp.write_text(json.dumps(layout), encoding="utf-8")
    tmp.replace(path)
    return layout


def _map_compute(space: str, track_of: dict[int, int], track_ids: list[int]) -> dict:
    ids, matrix = embedding_matrix(space, list(track_of))
    if space == MEL_STATS_SPACE and len(ids):
        matrix, _, _ = index.standardise(matrix)  # features in different units
    wanted = set(track_ids)
    by_track: dict[int, list[int]] = {}
    for row, sid in enumerate(ids.tolist()):
        if track_of[sid] in wanted:
            by_track.setdefault(track_of[sid], []).append(row)
    order = [t for t in track_ids if t in by_track]
    if not order:
        return {"space": space, "points": [], "tsne": False}
    vectors = np.stack([matrix[by_track[t]].mean(axis=0) for t in order])
    pca = index.unit_square(index.pca_2d(vectors))
    tsne_raw = index.tsne_2d(vectors)
    tsne = index.unit_square(tsne_raw) if tsne_raw is not None else pca
    tracks = Track.objects.in_bulk(order)
    first = {t: int(ids[by_track[t][0]]) for t in order}
    audio_of = dict(Snippet.objects.filter(id__in=first.values()).values_list("id", "audio"))
    points = [
        {
            "track": t,
            "title": tracks[t].title,
            "collection": collection_of(tracks[t].source),
            "genre": tracks[t].genre,
            "snippet": first[t],
            "audio": audio_of[first[t]],
            "pca": [round(float(v), 4) for v in pca[i]],
            "tsne": [round(float(v), 4) for v in tsne[i]],
        }
        for i, t in enumerate(order)
    ]
    return {"space": space, "points": points, "tsne": tsne_raw is not None}


def pickable_tracks() -> list[dict]:
    """Approved tracks with their visible snippets (id, start s), for choosing a query."""
    tracks = (
        Track.objects.filter(status=Track.Status.APPROVED, hidden=False)
        .annotate(n=Count("snippets"))
        .filter(n__gt=0)
        .order_by("title", "id")
    )
    snippets: dict[int, list[list]] = {}
    for sid, tid, start in (
        Snippet.objects.filter(hidden=False, track__in=tracks)
        .order_by("track_id", "position")
        .values_list("id", "track_id", "start_s")
    ):
        snippets.setdefault(tid, []).append([sid, round(start)])
    return [
        {"id": t.id, "title": t.title, "snippets": snippets[t.id]}
        for t in tracks
        if t.id in snippets
    ]


def snippet_public(snippet_id: int) -> Snippet | None:
    """A visible snippet of an approved track, or None."""
    return (
        Snippet.objects.select_related("track")
        .filter(
            id=snippet_id, hidden=False, track__status=Track.Status.APPROVED, track__hidden=False
        )
        .first()
    )
