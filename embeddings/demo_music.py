"""Generated demo music, so `make demo` and the tests work without any real recordings.

Four families (chord pads, plucked arpeggios, drum grooves, bass lines), each varied in
key, tempo and timbre. Every track loops a short pattern, so two snippets of one track
sound alike while tracks differ audibly in timbre, tempo and texture.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 44_100  # Hz
PEAK = 0.8  # linear full scale; leaves headroom for the encoders
FADE_S = 0.02  # s, avoids clicks at the ends
MANIFEST_COLUMNS = [
    "path", "source", "license", "duration_s", "sample_rate", "channels", "format",
    "genre_label", "notes",
]  # fmt: skip
FAMILIES = ["pad", "arpeggio", "groove", "bassline"]
TEMPI_BPM = {
    "pad": [64, 72, 80], "arpeggio": [92, 120, 150],
    "groove": [84, 100, 128], "bassline": [96, 112, 140],
}  # fmt: skip
FAMILY_TIMBRES = {
    "pad": ["organ", "saw", "sine"], "arpeggio": ["sine", "square", "saw"],
    "groove": ["sine", "organ", "square"], "bassline": ["saw", "square", "sine"],
}  # fmt: skip
ROOTS = {"A": 57, "C": 60, "D": 62, "E": 64, "F": 53, "G": 55, "B♭": 58}  # MIDI note numbers
PROGRESSIONS = {  # scale degrees (semitones above the root) of each chord's root
    "major": ([0, 7, 9, 5], [0, 4, 7]),
    "minor": ([0, 8, 3, 10], [0, 3, 7]),
}
TIMBRES = {  # harmonic amplitudes
    "sine": np.array([1.0, 0.15, 0.05]),
    "organ": np.array([1.0, 0.6, 0.0, 0.4, 0.0, 0.25, 0.0, 0.15]),
    "saw": 1.0 / np.arange(1, 25),
    "square": np.array([1.0 / k if k % 2 else 0.0 for k in range(1, 20)]),
}


@dataclass(frozen=True)
class TrackSpec:
    family: str
    key: str
    mode: str
    tempo_bpm: int
    timbre: str

    @property
    def label(self) -> str:
        return f"{self.timbre} {self.family} in {self.key} {self.mode}, {self.tempo_bpm} BPM"


def generate(
    out_dir: Path, n_tracks: int = 12, duration_s: float = 40.0, seed: int = 0
) -> list[Path]:
    """Write `n_tracks` generated stereo FLAC tracks and a MANIFEST.csv into `out_dir`.

    The manifest has the columns of the shared corpus manifest. Same seed, same audio.
    Returns the track paths in manifest order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, rows = [], []
    for i in range(n_tracks):
        rng = np.random.default_rng([seed, i])
        spec = _spec(i, rng)
        stereo = _render(spec, duration_s, rng)
        name = f"{i + 1:02d}-{spec.family}-{spec.key.replace('♭', 'b').lower()}-{spec.mode}.flac"
        sf.write(out_dir / name, stereo.T, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        paths.append(out_dir / name)
        rows.append({
            "path": name, "source": "generated:oddball", "license": "CC0-1.0",
            "duration_s": f"{stereo.shape[1] / SAMPLE_RATE:.2f}", "sample_rate": SAMPLE_RATE,
            "channels": 2, "format": "flac", "genre_label": f"generated {spec.family}",
            "notes": f"seed {seed}; {spec.label}",
        })  # fmt: skip
    with open(out_dir / "MANIFEST.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return paths


def _spec(i: int, rng: np.random.Generator) -> TrackSpec:
    # The index picks family and tempo, so any 12 consecutive tracks cover every combination.
    family = FAMILIES[i % len(FAMILIES)]
    tempo = TEMPI_BPM[family][(i // len(FAMILIES)) % 3] + int(rng.integers(-3, 4))
    keys = list(ROOTS)
    return TrackSpec(
        family=family,
        key=keys[(i * 3 + int(rng.integers(0, 2))) % len(keys)],
        mode="minor" if (i // 2) % 2 else "major",
        tempo_bpm=tempo,
        timbre=FAMILY_TIMBRES[family][(i // len(FAMILIES)) % 3],
    )


def _render(spec: TrackSpec, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    n = round(duration_s * SAMPLE_RATE)
    beat = 60.0 / spec.tempo_bpm  # s
    bar = _render_bar_loop(spec, beat, rng)  # four bars; looping keeps the texture stationary
    reps = -(-n // bar.shape[1])
    out = np.tile(bar, (1, reps))[:, :n]
    fade = min(int(FADE_S * SAMPLE_RATE), n // 2)
    ramp = np.linspace(0.0, 1.0, fade)
    out[:, :fade] *= ramp
    out[:, n - fade :] *= ramp[::-1]
    return (out * (PEAK / max(np.max(np.abs(out)), 1e-9))).astype(np.float32)


def _render_bar_loop(spec: TrackSpec, beat: float, rng: np.random.Generator) -> np.ndarray:
    """Four bars of 4/4 for one track, (2, samples), before normalisation."""
    length = round(16 * beat * SAMPLE_RATE)
    out = np.zeros((2, length + SAMPLE_RATE * 2))  # room for tails, folded back below
    steps, chord_tones = PROGRESSIONS[spec.mode]
    root = ROOTS[spec.key]
    timbre = spec.timbre
    note = functools.cache(_note)  # patterns repeat their notes; the cache dies with the call
    if spec.family == "pad":
        for b, degree in enumerate(steps):
            for j, interval in enumerate([*chord_tones, 12]):
                pitch = root + degree + interval
                tone = note(pitch, 4 * beat, timbre, attack_s=beat, decay_s=None, detune=True)
                _place(out, tone, b * 4 * beat, 0.25, pan=-0.6 + 0.4 * j)
    elif spec.family == "arpeggio":
        pattern = [0, 1, 2, 3, 2, 1, 0, 2]
        for b, degree in enumerate(steps):
            for s in range(16):  # sixteenth notes
                interval = [*chord_tones, 12][pattern[s % 8]]
                tone = note(root + degree + interval + 12, 0.8, timbre, 0.003, decay_s=0.25)
                _place(out, tone, (b * 4 + s / 4) * beat, 0.3, pan=0.5 * np.sin(s))
        for b, degree in enumerate(steps):
            _place(
                out, note(root + degree - 12, 4 * beat, "sine", 0.05, 2.0), b * 4 * beat, 0.3, 0.0
            )
    elif spec.family == "groove":
        kick, snare, hat = _drums(rng)
        kicks = [0, 2.5] if spec.tempo_bpm < 100 else [0, 1, 2, 3]
        for b in range(4):
            for k in kicks:
                _place(out, kick, (b * 4 + k) * beat, 0.9, 0.0)
            for s in (1, 3):
                _place(out, snare, (b * 4 + s) * beat, 0.5, 0.1)
            for h in range(8):
                swing = 0.08 * beat if h % 2 else 0.0
                _place(out, hat, (b * 4 + h / 2) * beat + swing, 0.25 if h % 2 else 0.4, -0.4)
            stab = note(root + steps[b] + 12, beat, timbre, 0.005, 0.15)
            _place(out, stab, (b * 4 + 1.5) * beat, 0.2, 0.4)
    else:  # bassline
        riff = [0, 0, 12, 0, 7, 0, 10, 12]
        _, _, hat = _drums(rng)
        for b, degree in enumerate(steps):
            for e in range(8):  # eighth notes
                pitch = root + degree + riff[e] - 24
                tone = note(pitch, 0.45 * beat, timbre, 0.004, decay_s=0.3 * beat)
                _place(out, tone, (b * 4 + e / 2) * beat, 0.6, 0.0)
                _place(out, hat, (b * 4 + e / 2 + 0.25) * beat, 0.15, 0.3)
    loop = out[:, :length].copy()
    loop[:, : out.shape[1] - length] += out[:, length:]  # tails ring into the next repeat
    return loop


def _note(
    pitch: float,
    dur_s: float,
    timbre: str,
    attack_s: float,
    decay_s: float | None,
    detune: bool = False,
) -> np.ndarray:
    """One note (mono) of a MIDI pitch: additive harmonics under an attack/decay envelope."""
    t = np.arange(int(dur_s * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 440.0 * 2 ** ((pitch - 69) / 12)
    wave = np.zeros_like(t)
    cents = (-4.0, 4.0) if detune else (0.0,)  # two slightly detuned voices make a pad shimmer
    for c in cents:
        # Harmonic k is the k-th power of one phasor: a multiply per sample, not a sin().
        step = np.exp(2j * np.pi * f0 * 2 ** (c / 1200) * t)
        phasor = np.ones_like(step)
        fade = np.ones_like(t)
        for k, amp in enumerate(TIMBRES[timbre], start=1):
            if k * f0 >= SAMPLE_RATE / 2:
                break
            phasor *= step
            if amp:
                wave += amp * fade * phasor.imag / len(cents)
            if decay_s:  # higher harmonics fade faster, as in a plucked string
                fade *= np.exp(-t / (4 * decay_s))
    env = np.minimum(1.0, t / max(attack_s, 1e-4))
    env *= np.exp(-t / decay_s) if decay_s else np.minimum(1.0, (dur_s - t) / (0.3 * dur_s))
    return wave * env


def _drums(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    sweep = 45 + 80 * np.exp(-t / 0.04)  # Hz; the falling pitch makes a kick thump
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) * np.exp(-t / 0.12)
    noise = rng.standard_normal(len(t))
    snare = (0.6 * noise + np.sin(2 * np.pi * 185 * t)) * np.exp(-t / 0.07)
    hat = np.diff(noise, prepend=0.0)[: int(0.08 * SAMPLE_RATE)]  # differencing = high-pass
    hat *= np.exp(-np.arange(len(hat)) / (0.015 * SAMPLE_RATE)) * 0.5
    return kick, snare, hat


def _place(out: np.ndarray, mono: np.ndarray, at_s: float, gain: float, pan: float) -> None:
    """Mix a mono sound into stereo `out` at `at_s`, panned -1 (left) to 1 (right)."""
    start = round(at_s * SAMPLE_RATE)
    stop = min(start + len(mono), out.shape[1])
    angle = (pan + 1) * np.pi / 4  # constant-power pan
    out[0, start:stop] += gain * np.cos(angle) * mono[: stop - start]
    out[1, start:stop] += gain * np.sin(angle) * mono[: stop - start]
