"""Writes for the embeddings app: importing tracks, cutting snippets, embedding, indexing."""

import csv
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count

from embeddings import audio, index
from embeddings.extractors import beats, mel_stats
from embeddings.models import Embedding, Snippet, Split, Track
from embeddings.selectors import embedding_matrix

log = logging.getLogger(__name__)

# Share of tracks per split; 60/20/20 keeps enough held-out tracks for a meaningful test set.
SPLIT_SHARES = {Split.TRAIN: 0.6, Split.VAL: 0.2, Split.TEST: 0.2}
MEL_STATS_SPACE = f"{mel_stats.NAME}@{mel_stats.VERSION}"


@dataclass
class TrackMeta:
    title: str = ""
    license: str = ""
    attribution: str = ""
    source: str = ""
    genre: str = ""


@dataclass
class ImportOutcome:
    path: str
    status: str  # "imported", "exists" or "failed"
    reason: str = ""
    track_id: int | None = None
    snippet_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def manifest_find(path: Path) -> TrackMeta:
    """Metadata for `path` from the nearest MANIFEST.csv in its folder or an ancestor
    (the format of the shared corpus), plus attribution text from a sibling .txt file."""
    path = path.resolve()
    meta = TrackMeta(title=path.stem.removesuffix(".hq").replace("_", " "))
    for folder in list(path.parents)[:4]:
        manifest = folder / "MANIFEST.csv"
        if not manifest.is_file():
            continue
        relative = path.relative_to(folder).as_posix()
        with manifest.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row.get("path") == relative:
                    meta.license = row.get("license", "")
                    meta.source = row.get("source", "")
                    meta.genre = row.get("genre_label", "")
                    meta.attribution = row.get("attribution", "")
                    break
        break
    if not meta.attribution:
        meta.attribution = _attribution_beside(path) or meta.license
    return meta


def _attribution_beside(path: Path) -> str:
    for candidate in (path.with_suffix(".txt"), path.parent / (path.name.split(".")[0] + ".txt")):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace").strip()[:2000]
    copyright_file = path.parent / "debian_copyright.txt"
    if copyright_file.is_file():
        for line in copyright_file.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Upstream-Contact:"):
                return "Upstream: " + line.split(":", 1)[1].strip()
    return ""


def split_choose(checksum: str) -> str:
    """The split a new track joins: the one furthest below its target share.

    Greedy filling keeps the shares exact for small collections, where a hash alone could
    leave the test split with too few tracks to form any triplet.
    """
    counts = dict(Track.objects.values_list("split").annotate(n=Count("id")))
    total = sum(counts.values()) + 1
    tiebreak = int(checksum[:8], 16)
    return max(
        SPLIT_SHARES,
        key=lambda s: (SPLIT_SHARES[s] * total - counts.get(s, 0), (tiebreak >> len(s)) & 7),
    )


def track_import(
    path: Path, meta: TrackMeta | None = None, snippet_s: float = audio.DEFAULT_SNIPPET_S
) -> ImportOutcome:
    """Validate, decode and cut one audio file into snippets.

    Idempotent: a file whose checksum is known creates nothing. Bad input never raises;
    the outcome says why the file was skipped.
    """
    path = Path(path)
    name = str(path)
    if path.suffix.lower() not in audio.SUPPORTED_SUFFIXES:
        return ImportOutcome(name, "failed", f"unsupported file type {path.suffix or '(none)'}")
    try:
        checksum = audio.sha256_file(path)
    except OSError as e:
        return ImportOutcome(name, "failed", f"cannot read file: {e.strerror or e}")
    existing = Track.objects.filter(checksum=checksum).first()
    if existing:
        return ImportOutcome(name, "exists", track_id=existing.id)
    meta = meta or manifest_find(path)
    try:
        info = audio.probe(path)
        wave, sr = audio.decode(path)
    except audio.AudioError as e:
        return ImportOutcome(name, "failed", str(e))
    mono16k = audio.resample(audio.to_mono(wave), sr, audio.ANALYSIS_RATE)
    plans = audio.plan_snippets(mono16k, audio.ANALYSIS_RATE, length_s=snippet_s)
    if not plans:
        reason = (
            f"too short: {info.duration_s:.1f} s of sound, a snippet needs "
            f"{audio.MIN_SNIPPET_S:.0f} s"
        )
        return ImportOutcome(name, "failed", reason)

    folder = Path("snippets") / checksum[:2] / checksum[:16]
    (Path(settings.MEDIA_ROOT) / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for position, plan in enumerate(plans):
        rows.append(_snippet_write(wave, sr, mono16k, plan, folder, position))
    try:
        with transaction.atomic():
            track = Track.objects.create(
                title=meta.title or path.stem,
                file_name=path.name,
                checksum=checksum,
                duration_s=info.duration_s,
                sample_rate=info.sample_rate,
                channels=info.channels,
                format=f"{info.format}/{info.subtype}".lower(),
                license=meta.license,
                attribution=meta.attribution,
                source=meta.source,
                genre=meta.genre,
                split=split_choose(checksum),
            )
            snippets = Snippet.objects.bulk_create(Snippet(track=track, **row) for row in rows)
    except IntegrityError:
        # Another worker imported the same file at the same moment; its rows stand.
        track = Track.objects.get(checksum=checksum)
        return ImportOutcome(name, "exists", track_id=track.id)
    return ImportOutcome(name, "imported", track_id=track.id, snippet_ids=[s.id for s in snippets])


def _snippet_write(
    wave: np.ndarray,
    sr: int,
    mono16k: np.ndarray,
    plan: audio.SnippetPlan,
    folder: Path,
    position: int,
) -> dict:
    """Write one snippet's browser and analysis copies; return the Snippet fields."""
    start, stop = int(plan.start_s * sr), int((plan.start_s + plan.duration_s) * sr)
    piece = wave[:, start:stop]
    loudness = audio.loudness_lufs(piece, sr)
    normalised, gain_db = audio.normalise_loudness(piece, sr, lufs=loudness)
    start16, stop16 = (
        int(t * audio.ANALYSIS_RATE) for t in (plan.start_s, plan.start_s + plan.duration_s)
    )
    analysis16 = mono16k[start16:stop16] * np.float32(10 ** (gain_db / 20))
    audio_name = (folder / f"{position:03d}.ogg").as_posix()
    analysis_name = (folder / f"{position:03d}.flac").as_posix()
    media = Path(settings.MEDIA_ROOT)
    audio.encode_browser(normalised, sr, media / audio_name)
    audio.encode_analysis(np.clip(analysis16, -1.0, 1.0), media / analysis_name)
    return {
        "position": position,
        "start_s": plan.start_s,
        "duration_s": plan.duration_s,
        "audio": audio_name,
        "analysis": analysis_name,
        "loudness_lufs": loudness,
        "gain_db": gain_db,
    }


def snippet_analysis_audio(snippet: Snippet) -> np.ndarray:
    return audio.load_analysis(Path(settings.MEDIA_ROOT) / snippet.analysis.name)


def embeddings_store(space: str, vectors: dict[int, np.ndarray]) -> int:
    """Store one vector per snippet id in `space`; existing vectors are kept. Returns count."""
    rows = [
        Embedding(
            snippet_id=snippet_id,
            space=space,
            dim=len(vector),
            vector=np.asarray(vector, dtype="<f4").tobytes(),
        )
        for snippet_id, vector in vectors.items()
    ]
    created = Embedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(created)


def snippets_embed_mel_stats(snippet_ids: list[int]) -> int:
    """Compute and store mel-stats vectors for the given snippets (idempotent)."""
    done = set(
        Embedding.objects.filter(snippet_id__in=snippet_ids, space=MEL_STATS_SPACE).values_list(
            "snippet_id", flat=True
        )
    )
    vectors = {}
    for snippet in Snippet.objects.filter(id__in=snippet_ids).exclude(id__in=done):
        vectors[snippet.id] = mel_stats.extract(snippet_analysis_audio(snippet))
    return embeddings_store(MEL_STATS_SPACE, vectors)


BEATS_SPACE = f"{beats.NAME}@{beats.VERSION}"
_beats_model: tuple[str, beats.Beats] | None = None  # loaded once per worker process


def _beats_loaded() -> beats.Beats:
    """The configured BEATs checkpoint, loaded once per process (363 MB, 1.5 s to load)."""
    global _beats_model  # a per-process cache, keyed by the path
    path = settings.ODDBALL_BEATS_CHECKPOINT
    if _beats_model is None or _beats_model[0] != path:
        _beats_model = (path, beats.load_checkpoint(path))
    return _beats_model[1]


def snippets_embed_beats(snippet_ids: list[int]) -> int:
    """Compute and store BEATs vectors (the mean of the last layer over frames) for the given
    snippets (idempotent). Raises beats.BeatsUnavailable with the reason when no usable
    checkpoint is configured."""
    ok, reason = beats.availability(settings.ODDBALL_BEATS_CHECKPOINT)
    if not ok:
        raise beats.BeatsUnavailable(reason)
    done = set(
        Embedding.objects.filter(snippet_id__in=snippet_ids, space=BEATS_SPACE).values_list(
            "snippet_id", flat=True
        )
    )
    snippets = list(Snippet.objects.filter(id__in=snippet_ids).exclude(id__in=done))
    if not snippets:
        return 0
    clips = [snippet_analysis_audio(s) for s in snippets]
    vectors = beats.snippet_vectors(_beats_loaded(), clips)
    return embeddings_store(BEATS_SPACE, {s.id: v for s, v in zip(snippets, vectors, strict=True)})


def index_path(space: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "index" / f"{space.replace('@', '-')}.faiss"


def index_build(space: str) -> Path:
    """Build the FAISS index of every stored vector in `space` and swap it in atomically."""
    ids, matrix = embedding_matrix(space)
    if len(ids) == 0:
        raise ValueError(f"no embeddings stored in space {space!r}; run `embed` first")
    built = index.VectorIndex.build(matrix, ids, standardise=space == MEL_STATS_SPACE)
    path = index_path(space)
    path.parent.mkdir(parents=True, exist_ok=True)
    built.save(path)
    log.info("index %s: %d vectors of %d dims", space, len(ids), matrix.shape[1])
    return path
