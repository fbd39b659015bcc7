"""Writes for the embeddings app: importing tracks, cutting snippets and clips, embedding,
indexing, rendering transitions."""

import contextlib
import csv
import logging
import secrets
import shutil
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count

from embeddings import audio, index, transitions
from embeddings.extractors import beats, mel_stats
from embeddings.models import Clip, ClipEmbedding, Embedding, Rendering, Snippet, Split, Track
from embeddings.selectors import clip_index_path, clip_matrix, embedding_matrix

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
    clip_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def manifest_find(path: Path) -> TrackMeta:
    """Metadata for `path` from the nearest MANIFEST.csv in its folder or an ancestor
    (the format of the shared corpus), plus attribution text from a sibling .txt file."""
    try:
        path = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: the importer reports it
        path = path.absolute()
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
    path: Path,
    meta: TrackMeta | None = None,
    snippet_s: float = audio.DEFAULT_SNIPPET_S,
    *,
    status: str | None = None,
    file_name: str | None = None,
) -> ImportOutcome:
    """Validate, decode and cut one audio file into snippets.

    Idempotent: a file whose checksum is known creates nothing. Bad input never raises;
    the outcome says why the file was skipped, and nothing of it is stored: its media files
    are written before its rows, which commit in one transaction, and a failure in between
    removes the files again. Files beyond the ODDBALL_MAX_* limits are refused from their
    header. `file_name` is the name to keep (an upload's, not its temporary path's). The
    new track is `status`; by default pending when ODDBALL_REQUIRE_APPROVAL is on (not
    served until a curator approves it), else approved.
    """
    if status is None:
        require = settings.ODDBALL_REQUIRE_APPROVAL
        status = Track.Status.PENDING if require else Track.Status.APPROVED
    path = Path(path)
    display = _printable(file_name or path.name)[:FILE_NAME_MAX]
    name = _printable(str(path)) if file_name is None else display
    if path.suffix.lower() not in audio.SUPPORTED_SUFFIXES:
        return ImportOutcome(name, "failed", f"unsupported file type {path.suffix or '(none)'}")
    try:
        # Not only a missing file: a named pipe would block the checksum for ever.
        if not stat.S_ISREG(path.stat().st_mode):
            return ImportOutcome(name, "failed", "not a regular file")
        checksum = audio.sha256_file(path)
    except OSError as e:
        return ImportOutcome(name, "failed", f"cannot read file: {e.strerror or e}")
    existing = Track.objects.filter(checksum=checksum).first()
    if existing:
        return ImportOutcome(name, "exists", track_id=existing.id)
    meta = meta or manifest_find(path)
    try:
        info = audio.probe(path)
        audio.limits_check(
            info,
            max_duration_s=settings.ODDBALL_MAX_TRACK_S,
            max_sample_rate=settings.ODDBALL_MAX_SAMPLE_RATE,
            max_channels=settings.ODDBALL_MAX_CHANNELS,
            max_decode_mb=settings.ODDBALL_MAX_DECODE_MB,
        )
        wave, sr = audio.decode(path, max_frames=settings.ODDBALL_MAX_TRACK_S * info.sample_rate)
        mono16k = audio.resample(audio.to_mono(wave), sr, audio.ANALYSIS_RATE)
    except audio.AudioError as e:
        return ImportOutcome(name, "failed", str(e))
    plans = audio.plan_snippets(mono16k, audio.ANALYSIS_RATE, length_s=snippet_s)
    if not plans:
        sounding = audio.sounding_s(mono16k, audio.ANALYSIS_RATE)
        reason = (
            "silent: no sound above -45 dBFS"
            if sounding == 0
            else f"too short: {sounding:.1f} s of sound, a snippet needs "
            f"{audio.MIN_SNIPPET_S:.0f} s"
        )
        return ImportOutcome(name, "failed", reason)
    written: list[Path] = []
    try:
        title = _printable(meta.title or Path(display).stem)[:TITLE_MAX]
        stored = _track_store(
            wave, sr, mono16k, plans, path, info, checksum, written, title, display, meta, status
        )
        track, snippets, clips = stored
    except IntegrityError:
        # Another worker imported the same file at the same moment; its rows (and the files
        # at the same checksum-named paths) stand.
        track = Track.objects.get(checksum=checksum)
        return ImportOutcome(name, "exists", track_id=track.id)
    except BaseException:
        if not Track.objects.filter(checksum=checksum).exists():
            _files_remove(written)
        raise
    return ImportOutcome(
        name,
        "imported",
        track_id=track.id,
        snippet_ids=[s.id for s in snippets],
        clip_ids=[c.id for c in clips],
    )


FILE_NAME_MAX = Track._meta.get_field("file_name").max_length
TITLE_MAX = Track._meta.get_field("title").max_length
# The stored original keeps the suffix of what the file really is, not of what it was called.
ORIGINAL_SUFFIX = {"OGG": ".ogg", "MP3": ".mp3", "FLAC": ".flac", "WAV": ".wav"}


def _printable(text: str) -> str:
    """A name from the file system as text the database and a page can hold: bytes that
    are not UTF-8 (kept by Python as lone surrogates) become U+FFFD, controls are dropped."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c for c in text if c.isprintable())


def _track_store(
    wave: np.ndarray,
    sr: int,
    mono16k: np.ndarray,
    plans: list[audio.SnippetPlan],
    path: Path,
    info: audio.AudioInfo,
    checksum: str,
    written: list[Path],
    title: str,
    file_name: str,
    meta: TrackMeta,
    status: str,
) -> tuple[Track, list[Snippet], list[Clip]]:
    """Write the media files (appending each to `written` first), then the rows in one
    transaction."""
    folder = Path("snippets") / checksum[:2] / checksum[:16]
    media = Path(settings.MEDIA_ROOT)
    written.append(media / folder)
    (media / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for position, plan in enumerate(plans):
        rows.append(_snippet_write(wave, sr, mono16k, plan, folder, position, written))
    suffix = ORIGINAL_SUFFIX.get(info.format, path.suffix.lower())
    if info.subtype == "OPUS":
        suffix = ".opus"
    copies = _track_copies_write(path, mono16k, checksum, suffix, written)
    with transaction.atomic():
        track = Track.objects.create(
            title=title,
            file_name=file_name,
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
            status=status,
            **copies,
        )
        snippets = Snippet.objects.bulk_create(Snippet(track=track, **row) for row in rows)
        clips = clips_cut(track, len(mono16k) / audio.ANALYSIS_RATE)
    return track, snippets, clips


def _files_remove(written: list[Path]) -> None:
    """Remove the files of a failed import, then its folders if they are left empty."""
    for path in written:
        if not path.is_dir():
            # Not there, or its folder could not be made: nothing to remove.
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()
    media = Path(settings.MEDIA_ROOT).resolve()
    for path in written:
        folder = path if path.is_dir() else path.parent
        while folder.resolve() != media and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _track_copies_write(
    path: Path, mono16k: np.ndarray, checksum: str, suffix: str, written: list[Path]
) -> dict:
    """Keep the imported file as it was (renderings are made from it at its own quality)
    and a whole-track 16 kHz analysis copy (clips are analysed from it)."""
    folder = Path("tracks") / checksum[:2] / checksum[:16]
    media = Path(settings.MEDIA_ROOT)
    written.append(media / folder)
    (media / folder).mkdir(parents=True, exist_ok=True)
    original = (folder / f"original{suffix}").as_posix()
    analysis_name = (folder / "analysis.flac").as_posix()
    tmp = media / f"{original}.part"
    written += [tmp, media / original, media / analysis_name]
    shutil.copyfile(path, tmp)
    tmp.replace(media / original)
    audio.encode_analysis(np.clip(mono16k, -1.0, 1.0), media / analysis_name)
    return {"original": original, "analysis": analysis_name}


def clips_cut(track: Track, duration_s: float) -> list[Clip]:
    """Create the track's ordered clips (ODDBALL_CLIP_S long, overlapping by
    ODDBALL_CLIP_OVERLAP_S; a last shorter clip is kept when it lasts at least 10 s, since
    a track's real end is where "what plays next" is asked most). Idempotent."""
    plans = transitions.plan_clips(
        duration_s,
        clip_s=settings.ODDBALL_CLIP_S,
        overlap_s=settings.ODDBALL_CLIP_OVERLAP_S,
        ending_s=settings.ODDBALL_CLIP_EDGE_S,
        min_clip_s=min(transitions.MIN_CLIP_S, settings.ODDBALL_CLIP_S),
    )
    rows = [
        Clip(
            track=track,
            position=p.index,
            start_s=p.start_s,
            duration_s=p.duration_s,
            edge_s=p.opening.duration_s,
        )
        for p in plans
    ]
    Clip.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Clip.objects.filter(track=track))


def _snippet_write(
    wave: np.ndarray,
    sr: int,
    mono16k: np.ndarray,
    plan: audio.SnippetPlan,
    folder: Path,
    position: int,
    written: list[Path],
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
    written += [media / audio_name, media / analysis_name]
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


def track_analysis_audio(track: Track) -> np.ndarray:
    """The whole track as 16 kHz mono; AudioError when the track has no copy."""
    if not track.analysis:
        raise audio.AudioError(f"track {track.id} has no whole-track copy; import it again")
    return audio.load_analysis(Path(settings.MEDIA_ROOT) / track.analysis.name)


def clip_edges(clip: Clip, mono16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(opening, ending) audio of a clip, cut from its track's 16 kHz copy."""
    rate = audio.ANALYSIS_RATE
    start, end, edge = (round(t * rate) for t in (clip.start_s, clip.end_s, clip.edge_s))
    return mono16k[start : start + edge], mono16k[end - edge : end]


def clip_embeddings_store(space: str, vectors: dict[tuple[int, str], np.ndarray]) -> int:
    """Store vectors keyed by (clip id, part) in `space`; existing ones are kept."""
    rows = [
        ClipEmbedding(
            clip_id=clip_id,
            part=part,
            space=space,
            dim=len(vector),
            vector=np.asarray(vector, dtype="<f4").tobytes(),
        )
        for (clip_id, part), vector in vectors.items()
    ]
    return len(ClipEmbedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500))


def clips_embed_mel_stats(track_id: int) -> int:
    """Mel-stats vectors of the opening and ending of each of a track's clips (idempotent)."""
    track = Track.objects.get(id=track_id)
    done = set(
        ClipEmbedding.objects.filter(clip__track=track, space=MEL_STATS_SPACE).values_list(
            "clip_id", "part"
        )
    )
    clips = [c for c in track.clips.all() if {(c.id, "opening"), (c.id, "ending")} - done]
    if not clips:
        return 0
    mono16k = track_analysis_audio(track)
    vectors = {}
    for clip in clips:
        opening, ending = clip_edges(clip, mono16k)
        vectors[(clip.id, "opening")] = mel_stats.extract(opening)
        vectors[(clip.id, "ending")] = mel_stats.extract(ending)
    return clip_embeddings_store(MEL_STATS_SPACE, vectors)


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


def clip_index_build(space: str) -> Path:
    """Build the FAISS index of every clip opening in `space` and swap it in atomically.

    Mel-stats openings are z-scored (features with different units); a transition model's
    openings are L2-normalised, so L2 order is cosine order."""
    ids, matrix = clip_matrix(space, ClipEmbedding.Part.OPENING)
    if len(ids) == 0:
        raise ValueError(f"no clip openings stored in space {space!r}")
    built = index.VectorIndex.build(matrix, ids, standardise=space == MEL_STATS_SPACE)
    path = clip_index_path(space)
    path.parent.mkdir(parents=True, exist_ok=True)
    built.save(path)
    return path


def rendering_make(
    clip_x_id: int, clip_y_id: int, style: str, seed: int = 0
) -> tuple[Rendering, bool]:
    """Render clip X's ending flowing into clip Y in `style` and store it; (rendering,
    created). Idempotent: a rendering of the same pair, style, seed and renderer version is
    returned as it is.

    Renderings are made from the imported files at their own rate. When Y holds what really
    followed X in the same track, Y starts exactly where X stops and beats are not shifted,
    so a hard cut of a true continuation is the original audio.
    """
    if style not in Rendering.Style.values:
        raise ValueError(f"style must be one of {', '.join(Rendering.Style.values)}")
    version = transitions.RENDER_VERSION
    found = Rendering.objects.filter(
        clip_x_id=clip_x_id, clip_y_id=clip_y_id, style=style, seed=seed, version=version
    ).first()
    if found:
        return found, False
    clip_x = Clip.objects.select_related("track").get(id=clip_x_id)
    clip_y = Clip.objects.select_related("track").get(id=clip_y_id)
    continues = clip_y.track_id == clip_x.track_id and clip_y.start_s <= clip_x.end_s < clip_y.end_s
    config = transitions.RenderConfig(align_beats=not continues)
    y_seam_s = clip_x.end_s if continues else clip_y.start_s
    # Only the seconds around each seam are decoded: the rendering, the tempo windows and
    # room for a beat shift (at most half a beat, under a second).
    margin = max(config.before_s, config.after_s, config.tempo_window_s) + 1.0
    x, sr, x_offset = _track_span(clip_x.track, clip_x.end_s, margin)
    y, sr_y, y_offset = _track_span(clip_y.track, y_seam_s, margin)
    if sr_y != sr:
        y = audio.resample(y, sr_y, sr)
    made = transitions.render_transition(
        x,
        y,
        sr,
        style,
        x_seam_s=clip_x.end_s - x_offset,
        y_seam_s=y_seam_s - y_offset,
        config=config,
        seed=seed,
    )
    # A random name: clip ids in the URL would let a listener guess a true continuation
    # (neighbouring clips of one track) and so unblind the test.
    token = secrets.token_hex(10)
    name = (Path("renderings") / token[:2] / f"{token}.ogg").as_posix()
    target = Path(settings.MEDIA_ROOT) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    transitions.write_rendering(made, target)
    tempo = [{"bpm": t.bpm, "confidence": t.confidence, "phase_s": t.phase_s}
             for t in (made.tempo_x, made.tempo_y)]  # fmt: skip
    try:
        with transaction.atomic():
            row = Rendering.objects.create(
                clip_x=clip_x,
                clip_y=clip_y,
                style=style,
                seed=seed,
                version=version,
                x_seam_s=clip_x.end_s,
                y_seam_s=y_seam_s,
                seam_s=made.seam_s,
                duration_s=made.duration_s,
                config=asdict(config),
                crossfade_s=made.crossfade_s,
                mask=None if made.mask is None else [round(float(v), 4) for v in made.mask],
                mask_rate_hz=made.mask_rate_hz,
                gain_x_db=made.gain_x_db,
                gain_y_db=made.gain_y_db,
                lufs_x=made.lufs_x,
                lufs_y=made.lufs_y,
                limited_x=made.limited_x,
                limited_y=made.limited_y,
                mix_gain_db=made.mix_gain_db,
                tempo_x=tempo[0],
                tempo_y=tempo[1],
                beat_shift_s=made.beat_shift_s,
                aligned=made.aligned,
                alignment_note=made.alignment_note[:200],
                sample_rate=min(made.sample_rate, audio.BROWSER_RATE),
                audio=name,
                sha256=audio.sha256_file(target),
            )
    except IntegrityError:
        # A second delivery of the same render task got there first; its file stands.
        target.unlink(missing_ok=True)
        existing = Rendering.objects.get(
            clip_x_id=clip_x_id, clip_y_id=clip_y_id, style=style, seed=seed, version=version
        )
        return existing, False
    return row, True


def _track_span(track: Track, at_s: float, margin_s: float) -> tuple[np.ndarray, int, float]:
    """(audio, rate, start s) of the stored original within `margin_s` of `at_s`."""
    if not track.original:
        raise audio.AudioError(f"track {track.id} has no stored original; import it again")
    path = Path(settings.MEDIA_ROOT) / track.original.name
    return audio.decode_span(path, at_s - margin_s, at_s + margin_s)
