"""Audio in and out: probe, decode, resample, loudness, snippet planning and encoding.

Pure numpy/torch/soundfile (no Django). File I/O is soundfile: torchaudio's needs ffmpeg.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

ANALYSIS_RATE = 16_000  # Hz, mono copy that extractors and models read
BROWSER_RATE = 48_000  # Hz, the rate browsers decode natively
MIN_SNIPPET_S = 10.0  # s
MAX_SNIPPET_S = 20.0  # s
DEFAULT_SNIPPET_S = 15.0  # s
SUPPORTED_SUFFIXES = {".ogg", ".oga", ".opus", ".mp3", ".flac", ".wav"}

MAX_SAMPLE_RATE = 384_000  # Hz; anything higher is a corrupt header, not audio
MAX_CHANNELS = 8
DECODE_BLOCK = 1 << 16  # frames read per call, so a damaged stream fails at a known time
MP3_FRAME_TOLERANCE = 0.01  # fraction; MP3 headers without an index only estimate length
SILENCE_LUFS = -70.0  # LUFS, the BS.1770 absolute gate; also what silence measures
FRAME_S = 0.1  # s, frame length for silence detection in plan_snippets
# Vorbis, not Opus: on a 15 s stereo snippet libsndfile encodes Vorbis about twice as fast
# (≈60x vs ≈30x real time, one core) at a similar bitrate, and Chromium plays both.
BROWSER_SUBTYPE = "VORBIS"
BROWSER_QUALITY = 0.6  # libsndfile compression level; ≈128 kbit/s stereo Vorbis


class AudioError(ValueError):
    """A file cannot be used as audio; the message is a reason a person can act on."""


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int  # Hz
    channels: int
    frames: int
    duration_s: float  # s
    format: str  # libsndfile major format, e.g. "OGG"
    subtype: str  # e.g. "VORBIS"


@dataclass(frozen=True)
class SnippetPlan:
    start_s: float  # s from the start of the track
    duration_s: float  # s


def probe(path: Path | str) -> AudioInfo:
    """Read the header of an audio file; raise AudioError when it is not usable audio."""
    path = Path(path)
    if not path.is_file():
        raise AudioError("not a file" if path.exists() else "file not found")
    if path.stat().st_size == 0:
        raise AudioError("empty file")
    try:
        info = sf.info(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        # libsndfile blames a missing file when the mp3 reader rejects what it found.
        reason = _reason(e) if "does not exist" not in str(e) else "format not recognised"
        raise AudioError(f"not an audio file ({reason})") from e
    if info.frames <= 0:
        raise AudioError("no audio frames")
    if not 0 < info.samplerate <= MAX_SAMPLE_RATE:
        raise AudioError(f"absurd sample rate {info.samplerate} Hz")
    if not 0 < info.channels <= MAX_CHANNELS:
        raise AudioError(f"{info.channels} channels; at most {MAX_CHANNELS} are supported")
    sr, frames = int(info.samplerate), int(info.frames)
    return AudioInfo(sr, int(info.channels), frames, frames / sr, info.format, info.subtype)


def limits_check(
    info: AudioInfo,
    max_duration_s: float,
    max_sample_rate: int,
    max_channels: int,
    max_decode_mb: float,
) -> None:
    """Raise AudioError for a file beyond these limits, judged from its header alone."""
    if info.sample_rate > max_sample_rate:
        raise AudioError(
            f"sample rate {info.sample_rate} Hz is above the limit of {max_sample_rate} Hz"
        )
    if info.channels > max_channels:
        raise AudioError(f"{info.channels} channels; at most {max_channels} are accepted")
    if info.duration_s > max_duration_s:
        raise AudioError(f"too long: {_clock(info.duration_s)}, at most {_clock(max_duration_s)}")
    decoded_mb = info.frames * info.channels * 4 / 2**20  # as float32 samples
    if decoded_mb > max_decode_mb:
        raise AudioError(
            f"too large to decode: {decoded_mb:.0f} MB of samples, at most {max_decode_mb} MB"
        )


def _clock(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


def decode(path: Path | str, max_frames: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file to float32 (channels, frames) and its rate; AudioError if damaged.

    With `max_frames`, a stream that turns out longer than that is refused as soon as it
    passes it, whatever its header claimed, so memory stays bounded."""
    info = probe(path)
    sr, done = info.sample_rate, 0
    blocks: list[np.ndarray] = []
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            while True:
                block = f.read(DECODE_BLOCK, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                if max_frames is not None and done + len(block) > max_frames:
                    raise AudioError(f"too long: more than {max_frames / sr:.0f} s of audio")
                if not np.isfinite(block).all():
                    bad = done + int(np.argmax(~np.isfinite(block).all(axis=1)))
                    raise AudioError(f"contains NaN or infinite samples (at {bad / sr:.2f} s)")
                blocks.append(block)
                done += len(block)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"decoding failed at {done / sr:.1f} s: {_reason(e)}") from e
    tolerance = info.frames * MP3_FRAME_TOLERANCE if info.format == "MP3" else 0
    if done < info.frames - tolerance or (info.format == "OGG" and not _ogg_has_end(Path(path))):
        raise AudioError(f"decoding failed at {done / sr:.1f} s: stream ends early (truncated?)")
    return np.ascontiguousarray(np.concatenate(blocks).T), sr


def decode_span(path: Path | str, start_s: float, stop_s: float) -> tuple[np.ndarray, int, float]:
    """Decode only [start_s, stop_s) of an already validated file, clipped to its length.

    Returns (float32 (channels, frames), rate, the span's actual start in s). Seeking skips
    decoding the rest, so a rendering of a few seconds of a long track stays cheap."""
    try:
        with sf.SoundFile(os.fsencode(path)) as f:
            sr = f.samplerate
            first = max(0, round(start_s * sr))
            last = max(first, min(f.frames, round(stop_s * sr)))
            f.seek(first)
            block = f.read(last - first, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"decoding failed near {start_s:.1f} s: {_reason(e)}") from e
    if not np.isfinite(block).all():
        raise AudioError("contains NaN or infinite samples")
    return np.ascontiguousarray(block.T), sr, first / sr


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average the channels of (C, T) audio to (T,); 1-D input is returned as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    if len(x) == 2:  # the common case, without mean()'s temporary: same result, 3x faster
        return (x[0] + x[1]) * np.float32(0.5)
    return x.mean(axis=0)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited resampling of (T,) or (C, T) float audio along its last axis."""
    x = np.asarray(x, dtype=np.float32)
    if sr_from == sr_to:
        return x
    return AF.resample(torch.from_numpy(np.ascontiguousarray(x)), sr_from, sr_to).numpy()


def loudness_lufs(x: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) of (T,) or (C, T) audio, in LUFS.

    Channels are weighted equally, which is exact for mono and stereo. Silence gives -70.
    """
    # Not torchaudio.functional.loudness: its biquads clamp the K-weighted signal to ±1,
    # reading loud masters up to 2 dB low, and they run at only ~40x real time on CPU.
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    n = x.shape[-1]
    # 400 ms gating blocks overlap by 75%: four 100 ms steps each (a shorter clip is one block).
    step = min(round(0.1 * sr), n // 4)
    if step == 0:
        return SILENCE_LUFS
    # Filter in the frequency domain; the padding absorbs the IIR tail instead of wrapping it.
    n_fft = _fast_fft_length(n + sr // 2)
    spectrum = np.fft.rfft(x, n=n_fft, axis=-1)
    spectrum *= _k_weighting(n_fft, sr)
    y = np.fft.irfft(spectrum, n=n_fft, axis=-1)[:, :n]
    m = n // step
    sub = np.square(y[:, : m * step], dtype=np.float64).reshape(len(y), m, step).sum(-1)
    z = (sub[:, :-3] + sub[:, 1:-2] + sub[:, 2:-1] + sub[:, 3:]).sum(axis=0) / (4 * step)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(z)
    gated = z[block_lufs > SILENCE_LUFS]
    if len(gated) == 0:
        return SILENCE_LUFS
    relative_gate = -0.691 + 10 * np.log10(gated.mean()) - 10.0
    gated = z[(block_lufs > SILENCE_LUFS) & (block_lufs > relative_gate)]
    return max(SILENCE_LUFS, float(-0.691 + 10 * np.log10(gated.mean())))


def _fast_fft_length(n: int) -> int:
    """A length >= n (at most 13% more) with small prime factors, which pocketfft likes."""
    odd = (1, 3, 5, 9, 15, 25, 27, 45, 75, 81, 125)
    return min(m << max(0, (-(-n // m) - 1).bit_length()) for m in odd)


@functools.lru_cache(maxsize=8)
def _k_weighting(n_fft: int, sr: int) -> np.ndarray:
    """Frequency response of the BS.1770 K-weighting (shelf then high-pass) at rfft bins."""
    # libebur128's analogue prototypes: at 48 kHz they give the standard's coefficients
    # to 1e-15, and they stay right at other rates.
    k, q, vh = math.tan(math.pi * 1681.974450955533 / sr), 0.7071752369554196, 1.5848647011
    vb = vh**0.4996667741545416
    shelf_b = [vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]
    shelf_a = [1 + k / q + k * k, 2 * (k * k - 1), 1 - k / q + k * k]
    k, q = math.tan(math.pi * 38.13547087602444 / sr), 0.5003270373238773
    d = 1 + k / q + k * k  # the standard keeps b = (1, -2, 1) and normalises only a
    hp_b, hp_a = [d, -2 * d, d], [d, 2 * (k * k - 1), 1 - k / q + k * k]
    z = np.exp(-2j * np.pi * np.fft.rfftfreq(n_fft, 1 / sr) / sr)  # z^-1 at each bin
    h = np.ones_like(z)
    for b, a in ((shelf_b, shelf_a), (hp_b, hp_a)):
        h *= (b[0] + b[1] * z + b[2] * z**2) / (a[0] + a[1] * z + a[2] * z**2)
    return h.astype(np.complex64)


def normalise_loudness(
    x: np.ndarray,
    sr: int,
    target_lufs: float = -18.0,
    peak_dbfs: float = -1.0,
    lufs: float | None = None,
) -> tuple[np.ndarray, float]:
    """Scale audio towards `target_lufs`, never letting the sample peak exceed `peak_dbfs`.

    Returns the scaled float32 signal and the gain applied, in dB. Silence is left as is.
    Pass `lufs` when the caller has measured it already.
    """
    x = np.asarray(x, dtype=np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    lufs = loudness_lufs(x, sr) if lufs is None else lufs
    if peak == 0.0 or lufs <= SILENCE_LUFS:
        return x.copy(), 0.0
    gain_db = min(target_lufs - lufs, peak_dbfs - 20 * math.log10(peak))
    return (x * np.float32(10 ** (gain_db / 20))).astype(np.float32), float(gain_db)


def sounding_s(mono: np.ndarray, sr: int, silence_dbfs: float = -45.0) -> float:
    """Seconds between the first and the end of the last 100 ms frame louder than
    `silence_dbfs` (the span plan_snippets cuts from); 0.0 for silence."""
    hop = round(sr * FRAME_S)
    n_frames = len(mono) // hop
    frames = np.asarray(mono[: n_frames * hop], dtype=np.float64).reshape(n_frames, hop)
    loud = np.flatnonzero(
        10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20)) >= silence_dbfs
    )
    return 0.0 if len(loud) == 0 else float((loud[-1] + 1 - loud[0]) * FRAME_S)


def plan_snippets(
    mono: np.ndarray,
    sr: int,
    length_s: float = DEFAULT_SNIPPET_S,
    min_length_s: float = MIN_SNIPPET_S,
    silence_dbfs: float = -45.0,
    max_silent_fraction: float = 0.5,
) -> list[SnippetPlan]:
    """Choose consecutive, non-overlapping snippet windows inside the sounding part of a track.

    Windows start where leading near-silence ends and must fit before trailing silence;
    a window with more than `max_silent_fraction` of silent 100 ms frames is skipped. A
    sounding part shorter than `length_s` but at least `min_length_s` gives one snippet of
    its own length; a shorter one gives [] (the caller reports "too short").
    """
    if not MIN_SNIPPET_S <= length_s <= MAX_SNIPPET_S:
        raise ValueError(f"snippet length must be {MIN_SNIPPET_S}-{MAX_SNIPPET_S} s: {length_s}")
    if min_length_s > length_s:
        raise ValueError(f"min_length_s {min_length_s} exceeds length_s {length_s}")
    hop = round(sr * FRAME_S)
    n_frames = len(mono) // hop
    frames = np.asarray(mono[: n_frames * hop], dtype=np.float64).reshape(n_frames, hop)
    loud = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-20)) >= silence_dbfs
    if not loud.any():
        return []
    first = int(np.argmax(loud))
    end = n_frames - int(np.argmax(loud[::-1]))  # one past the last loud frame
    win = round(length_s / FRAME_S)
    if end - first < win:  # the whole sounding part makes one shorter snippet, if long enough
        if (end - first) * FRAME_S < min_length_s - 1e-9:
            return []
        win = end - first
    return [
        SnippetPlan(round(a * FRAME_S, 3), round(win * FRAME_S, 3))
        for a in range(first, end - win + 1, win)
        if 1.0 - loud[a : a + win].mean() <= max_silent_fraction
    ]


def encode_browser(x: np.ndarray, sr: int, path: Path | str) -> None:
    """Write (C, T) or (T,) audio atomically as Ogg Vorbis (at most 48 kHz); >2 channels fold
    to stereo."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    if len(x) > 2:
        # Keep the front pair; the rest joins both sides at -3 dB, scaled back if it clips.
        rest = x[2:].mean(axis=0) * np.float32(math.sqrt(0.5))
        x = np.stack([x[0] + rest, x[1] + rest])
        x /= max(1.0, float(np.max(np.abs(x))))
    # Vorbis plays at any common rate; resampling only rates above 48 kHz saves a pass.
    rate = sr if sr <= BROWSER_RATE else BROWSER_RATE
    y = np.clip(resample(x, sr, rate), -1.0, 1.0).T
    _write_atomic(path, y, rate, "OGG", BROWSER_SUBTYPE, BROWSER_QUALITY)


def encode_analysis(mono16k: np.ndarray, path: Path | str) -> None:
    """Write the 16 kHz mono analysis copy as 16-bit FLAC (lossless, about half the size)."""
    mono16k = np.asarray(mono16k, dtype=np.float32)
    if mono16k.ndim != 1:
        raise ValueError(f"analysis audio must be mono (T,), got shape {mono16k.shape}")
    # Clip first: libsndfile wraps out-of-range floats around when converting to integers.
    _write_atomic(path, np.clip(mono16k, -1.0, 1.0), ANALYSIS_RATE, "FLAC", "PCM_16", None)


def load_analysis(path: Path | str) -> np.ndarray:
    """Read an analysis copy back as float32 (T,) at ANALYSIS_RATE."""
    x, sr = decode(path)
    if sr != ANALYSIS_RATE:
        raise AudioError(f"analysis copy is {sr} Hz, expected {ANALYSIS_RATE} Hz")
    return to_mono(x)


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(
    path: Path | str, data: np.ndarray, sr: int, fmt: str, subtype: str, quality: float | None
) -> None:
    # A reader (or a crash) never sees half a file: write beside the target, then rename.
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, data, sr, format=fmt, subtype=subtype, compression_level=quality)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ogg_has_end(path: Path) -> bool:
    """True when the last Ogg page carries the end-of-stream flag (missing if truncated)."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - (1 << 16)))  # an Ogg page is at most ~64 KiB
        tail = f.read()
    at = tail.rfind(b"OggS")
    return at >= 0 and len(tail) > at + 5 and tail[at + 4] == 0 and bool(tail[at + 5] & 0x04)


def _reason(e: Exception) -> str:
    """libsndfile's own explanation, without soundfile's "Error opening '...'" prefix."""
    text = str(e).split(": ", 1)[-1] if str(e).startswith("Error ") else str(e)
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]
