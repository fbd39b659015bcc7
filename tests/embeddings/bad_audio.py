"""Hostile and malformed audio files, generated at test time (nothing binary is committed).

Each `Case` writes one file into a folder and says what must happen to it: imported, or
rejected with a reason containing `reason`. Files are small: the long and huge cases lie in
their headers or compress to almost nothing, so the whole set is written in a few seconds.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

IMPORTED = "imported"
FAILED = "failed"


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # the file's name on disk and in the upload
    write: Callable[[Path], None]  # writes the file's bytes to the path it is given
    outcome: str  # IMPORTED or FAILED
    reason: str = ""  # a substring of the rejection reason
    upload_name: str | None = None  # what the browser claims, when not `name`
    upload_reason: str | None = None  # the upload form's own reason, when it differs


def music(seconds: float, sr: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """(T, C) float32 stand-in for music: a tone per channel under a little noise. The seed
    makes each case's bytes (and so its checksum) its own."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sr)) / sr
    tones = [0.3 * np.sin(2 * np.pi * (220 + 110 * c + seed) * t) for c in range(channels)]
    noise = rng.normal(0, 0.02, (len(t), channels))
    return (np.stack(tones, axis=1) + noise).astype(np.float32)


def _sf(seconds: float, sr: int, fmt: str, subtype: str, channels: int = 2, seed: int = 0):
    def write(path: Path) -> None:
        data = music(seconds, sr, channels, seed)
        sf.write(path, data, sr, format=fmt, subtype=subtype)

    return write


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _cut(make: Callable[[Path], None], keep: Callable[[int], int]) -> Callable[[Path], None]:
    """A whole file from `make`, then cut to `keep(size)` bytes."""

    def write(path: Path) -> None:
        make(path)
        data = path.read_bytes()
        path.write_bytes(data[: keep(len(data))])

    return write


def _samples(data: np.ndarray, sr: int, subtype: str) -> Callable[[Path], None]:
    return lambda path: sf.write(path, data, sr, format="WAV", subtype=subtype)


def _wav_sizes(seed: int, data_factor: float | None, riff: int | None) -> Callable[[Path], None]:
    """A 16-bit WAV whose data chunk claims `data_factor` times its real size (None: true)
    and whose RIFF chunk claims `riff` bytes (None: true)."""

    def write(path: Path) -> None:
        sf.write(path, music(24.0, 16_000, 1, seed), 16_000, format="WAV", subtype="PCM_16")
        raw = bytearray(path.read_bytes())
        at = raw.find(b"data") + 4
        if data_factor is not None:
            true = struct.unpack_from("<I", raw, at)[0]
            struct.pack_into("<I", raw, at, min(0xFFFFFFFF, int(true * data_factor)))
        if riff is not None:
            struct.pack_into("<I", raw, 4, riff)
        path.write_bytes(bytes(raw))

    return write


def _flac_claims(total_frames: int, seed: int) -> Callable[[Path], None]:
    """A 12 s FLAC whose STREAMINFO claims `total_frames` frames."""

    def write(path: Path) -> None:
        sf.write(path, music(12.0, 16_000, 1, seed), 16_000, format="FLAC", subtype="PCM_16")
        raw = bytearray(path.read_bytes())
        # STREAMINFO starts at byte 8; its 36-bit sample count begins 4 bits into byte 21.
        head = raw[21] & 0xF0
        raw[21] = head | ((total_frames >> 32) & 0x0F)
        struct.pack_into(">I", raw, 22, total_frames & 0xFFFFFFFF)
        path.write_bytes(bytes(raw))

    return write


def _silence_flac(seconds: float, sr: int = 8_000) -> Callable[[Path], None]:
    """Hours of digital silence: FLAC stores each block as one constant, so 3 h is ~100 kB."""

    def write(path: Path) -> None:
        block = np.zeros(1 << 20, dtype=np.int16)
        with sf.SoundFile(path, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
            left = round(seconds * sr)
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)

    return write


def _with_nan(value: float, seed: int) -> Callable[[Path], None]:
    data = music(11.0, 16_000, 1, seed)
    data[16_000 * 5 : 16_000 * 5 + 10] = value
    return _samples(data, 16_000, "FLOAT")


def _text(path: Path) -> None:
    path.write_text("ID3 this is a shopping list, not a song\n" * 40)


def _random(path: Path) -> None:
    path.write_bytes(np.random.default_rng(7).bytes(64_000))


def _mp3(seconds: float, seed: int) -> Callable[[Path], None]:
    return _sf(seconds, 22_050, "MP3", "MPEG_LAYER_III", 2, seed)


def _ogg(seed: int) -> Callable[[Path], None]:
    return _sf(11.0, 16_000, "OGG", "VORBIS", 1, seed)


def cases() -> list[Case]:
    """Every case, each with distinct audio (a seed of its own), so none is a duplicate."""
    vorbis = _sf(20.0, 22_050, "OGG", "VORBIS", 2, 1)
    flac = _sf(20.0, 22_050, "FLAC", "PCM_16", 2, 2)
    long_name = "a" * 200 + ".ogg"  # 204 bytes: on disk it fits; the upload says more
    return [
        Case(
            "empty",
            "empty.ogg",
            _bytes(b""),
            FAILED,
            "empty file",
            upload_reason="The submitted file is empty.",
        ),
        Case(
            "vorbis cut at 10%", "cut10.ogg", _cut(vorbis, lambda n: n // 10), FAILED, "truncated"
        ),
        Case(
            "vorbis cut in its header",
            "cuthead.ogg",
            _cut(vorbis, lambda n: 300),
            FAILED,
            "not an audio file",
        ),
        Case(
            "mp3 cut in half", "cut.mp3", _cut(_mp3(20.0, 3), lambda n: n // 2), FAILED, "truncated"
        ),
        Case(
            "flac cut in half", "cut.flac", _cut(flac, lambda n: n // 2), FAILED, "decoding failed"
        ),
        Case("text renamed .mp3", "notes.mp3", _text, FAILED, "not an audio file"),
        Case("random bytes .ogg", "noise.ogg", _random, FAILED, "not an audio file"),
        Case(
            "text with an unsupported suffix",
            "notes.txt",
            _text,
            FAILED,
            "unsupported file type .txt",
        ),
        Case(
            "valid flac named .mp3",
            "really_flac.mp3",
            _sf(11.0, 16_000, "FLAC", "PCM_16", 1, 4),
            IMPORTED,
        ),
        Case("valid mp3 named .ogg", "really_mp3.ogg", _mp3(11.0, 5), IMPORTED),
        Case(
            "zero frames",
            "zero.wav",
            _samples(np.zeros((0, 2), np.float32), 44_100, "PCM_16"),
            FAILED,
            "no audio frames",
        ),
        Case(
            "one second",
            "short.flac",
            _sf(1.0, 22_050, "FLAC", "PCM_16", 2, 6),
            FAILED,
            "too short",
        ),
        Case("two minutes of silence", "quiet.flac", _silence_flac(120.0), FAILED, "silent"),
        Case(
            "three hours of silence",
            "silence3h.flac",
            _silence_flac(3 * 3600.0),
            FAILED,
            "too long",
        ),
        Case(
            "flac header claiming three hours",
            "liar3h.flac",
            _flac_claims(3 * 3600 * 16_000, 8),
            FAILED,
            "too long",
        ),
        Case(
            "wav data chunk claiming 4x its size", "longer.wav", _wav_sizes(9, 4.0, None), IMPORTED
        ),
        Case(
            "wav data chunk claiming half its size",
            "shorter.wav",
            _wav_sizes(10, 0.5, None),
            IMPORTED,
        ),
        Case("wav declaring 4 GB", "huge.wav", _wav_sizes(11, None, 0xFFFFFFFF), IMPORTED),
        Case(
            "wav declaring 4 GB of data", "hugedata.wav", _wav_sizes(12, 1e6, 0xFFFFFFFF), IMPORTED
        ),
        Case("384 kHz", "rate384k.wav", _sf(10.5, 384_000, "WAV", "PCM_16", 1, 13), IMPORTED),
        Case(
            "768 kHz",
            "rate768k.wav",
            _sf(0.5, 768_000, "WAV", "PCM_16", 1, 14),
            FAILED,
            "sample rate",
        ),
        Case("six channels", "surround.wav", _sf(11.0, 16_000, "WAV", "PCM_16", 6, 15), IMPORTED),
        Case(
            "twelve channels",
            "many.wav",
            _sf(1.0, 8_000, "WAV", "PCM_16", 12, 16),
            FAILED,
            "channels",
        ),
        Case("NaN samples", "nan.wav", _with_nan(float("nan"), 17), FAILED, "NaN"),
        Case("infinite samples", "inf.wav", _with_nan(float("inf"), 18), FAILED, "infinite"),
        Case(
            "float far beyond full scale",
            "clipping.wav",
            _samples(music(11.0, 16_000, 2, 19) * 40, 16_000, "FLOAT"),
            IMPORTED,
        ),
        Case(
            "denormal floats only",
            "denormal.wav",
            _samples(music(11.0, 16_000, 2, 20) * 1e-39, 16_000, "FLOAT"),
            FAILED,
            "silent",
        ),
        Case("8-bit unsigned", "u8.wav", _sf(11.0, 11_025, "WAV", "PCM_U8", 1, 21), IMPORTED),
        Case("mu-law", "ulaw.wav", _sf(11.0, 8_000, "WAV", "ULAW", 1, 22), IMPORTED),
        Case("opus", "voice.opus", _sf(11.0, 48_000, "OGG", "OPUS", 1, 23), IMPORTED),
        Case(
            "path traversal in the name",
            "traversal.ogg",
            _ogg(24),
            IMPORTED,
            upload_name="../../etc/x.ogg",
        ),
        Case("dots in the name", "..a..ogg", _ogg(25), IMPORTED),
        Case("a very long name", long_name, _ogg(26), IMPORTED, upload_name="é" * 300 + ".ogg"),
    ]


def disk_only_cases(folder: Path) -> list[tuple[str, Path, str]]:
    """Files only a folder on disk can hold, written into `folder`: (case, path, reason).

    A name that is not UTF-8, a symlink loop, a dangling symlink and a folder named like
    audio. A named pipe is left out here: see `named_pipe`."""
    made: list[tuple[str, Path, str]] = []
    raw = Path(os.fsdecode(os.fsencode(str(folder)) + b"/caf\xe9-latin1.ogg"))
    _ogg(27)(folder / "latin1.ogg")  # soundfile itself cannot open such a name
    (folder / "latin1.ogg").rename(raw)
    made.append(("name that is not UTF-8", raw, IMPORTED))
    loop = folder / "loop.ogg"
    loop.symlink_to(loop.name)
    made.append(("symlink loop", loop, "cannot read"))
    gone = folder / "gone.ogg"
    gone.symlink_to("nowhere.ogg")
    made.append(("dangling symlink", gone, "cannot read"))
    (folder / "folder.ogg").mkdir()
    _ogg(28)(folder / "folder.ogg" / "inside.ogg")  # a folder is searched, not imported
    made.append(("folder named .ogg", folder / "folder.ogg" / "inside.ogg", IMPORTED))
    return made


def named_pipe(folder: Path) -> Path:
    """A FIFO named like audio: reading it would block for ever."""
    path = folder / "pipe.ogg"
    os.mkfifo(path)
    return path
