"""How fast and how small is oddnet? Analysis on one CPU core, training on two, real music.

Over the recordings of ../shared/corpus (MANIFEST.csv order; all of them unless --minutes):
- decode_rtf_1core: seconds of audio per CPU second of `embeddings.audio.decode` alone, the
  floor under any analysis;
- oddnet_rtf_1core: end to end, one song after another: decode, downmix, resample to 16 kHz,
  log-mel, one forward pass over the whole song (DESIGN.md asks for at least 200);
- oddnet_ms_per_audio_s.<stage> says where that time goes, and oddnet_after_decode_share is
  the time after decoding over the decoding time (the aim is below 0.25);
- oddnet_weights_mb (float32 parameters; at most 1) and the exported files' sizes;
- train_s_per_1000_judgments_2cores: `training.train.train` with the default TrainConfig on
  the corpus cut into 15 s snippets and 1000 simulated judgments (random triplets of three
  tracks, the odd one by mean spectrum; two rows each, as `triplet_data_build` makes them)
  plus 250 validation judgments, on the two threads the workers have;
- onnx_max_abs_diff_trained: the exported ONNX of that trained model against PyTorch on
  real songs.
Analysis times are CPU seconds of this single-threaded process (time.process_time), which a
busy shared machine inflates less than wall-clock time; training time is wall-clock.
Prints one JSON object per line: {"name", "value", "unit"}.

Rerun from the repo root: .venv/bin/python bench/speed.py [--minutes 20]
"""

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from embeddings.audio import decode, resample, to_mono
from training.export import export_all, onnx_check
from training.nets import SAMPLE_RATE, OddNet, log_mel, param_bytes
from training.train import TrainConfig, TripletData, train

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SNIPPET_SECONDS = 15  # s, the snippet length the service trains on
JUDGMENTS = 1000  # simulated training judgments
VAL_JUDGMENTS = 250  # simulated validation judgments, a 80/20 split's worth
RERUN = ".venv/bin/python bench/speed.py"
STAGES = ("decode", "downmix", "resample", "log_mel", "model")


def emit(name: str, value: float, unit: str) -> None:
    # Four significant digits: the ONNX difference is ~1e-7, a rate is hundreds.
    print(json.dumps({"name": name, "value": float(f"{value:.4g}"), "unit": unit}), flush=True)


def recordings(corpus: Path, minutes: float | None) -> list[Path]:
    """Corpus files in MANIFEST.csv order, enough for `minutes` of audio (None: all)."""
    with open(corpus / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen, seconds = [], 0.0
    for row in rows:
        if minutes is not None and seconds >= 60 * minutes:
            break
        chosen.append(corpus / row["path"])
        seconds += float(row["duration_s"])
    return chosen


@torch.no_grad()
def analyse(files: list[Path], model: OddNet) -> tuple[dict[str, float], float, list, list]:
    """CPU seconds per stage over `files`, the audio seconds, and 15 s snippet log-mels with
    their track numbers (cut after the timing, for the training figure)."""
    cpu = dict.fromkeys(STAGES, 0.0)
    audio_s, snippets, tracks = 0.0, [], []
    size = SNIPPET_SECONDS * SAMPLE_RATE
    for track, path in enumerate(files):
        t0 = time.process_time()
        audio, rate = decode(path)
        t1 = time.process_time()
        mono = to_mono(audio)
        t2 = time.process_time()
        wave = resample(mono, rate, SAMPLE_RATE)
        t3 = time.process_time()
        mel = log_mel(torch.from_numpy(wave))
        t4 = time.process_time()
        model(mel[None])
        t5 = time.process_time()
        for stage, seconds in zip(STAGES, np.diff([t0, t1, t2, t3, t4, t5]), strict=True):
            cpu[stage] += seconds
        audio_s += audio.shape[-1] / rate
        cuts = [wave[s : s + size] for s in range(0, len(wave) - size + 1, size)]
        if cuts:
            snippets.append(log_mel(torch.from_numpy(np.stack(cuts))).numpy())
            tracks += [track] * len(cuts)
    return cpu, audio_s, snippets, tracks


def simulated_judgments(
    features: np.ndarray, tracks: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n triplets of snippets from three different tracks, the odd one last: the one whose
    mean spectrum is farthest from the other two (a taste the model can learn, so the
    trained model is not a constant one)."""
    profile = features.mean(axis=2)
    by_track = [np.flatnonzero(tracks == t) for t in np.unique(tracks)]
    out = []
    for _ in range(n):
        triplet = [rng.choice(by_track[t]) for t in rng.choice(len(by_track), 3, replace=False)]
        gaps = np.linalg.norm(profile[triplet][:, None] - profile[triplet][None], axis=-1)
        odd = int(np.argmax(gaps.sum(axis=1)))
        out.append([*np.delete(triplet, odd), triplet[odd]])
    return np.array(out, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="audio to analyse")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    started = time.monotonic()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = OddNet().eval()
    with torch.no_grad():  # first calls build kernels and caches; a service is warm
        for rate in (32_000, 44_100, 48_000):
            wave = resample(np.zeros(rate, dtype=np.float32), rate, SAMPLE_RATE)
            model(log_mel(torch.from_numpy(wave))[None])

    files = recordings(args.corpus, args.minutes)
    cpu, audio_s, snippets, tracks = analyse(files, model)
    emit("audio_analysed", audio_s / 60, "min")
    emit("decode_rtf_1core", audio_s / cpu["decode"], "x realtime")
    emit("oddnet_rtf_1core", audio_s / sum(cpu.values()), "x realtime")
    for stage in STAGES:
        emit(f"oddnet_ms_per_audio_s.{stage}", 1000 * cpu[stage] / audio_s, "ms CPU / s audio")
    after = sum(cpu[s] for s in STAGES[1:])
    emit("oddnet_after_decode_share", after / cpu["decode"], "fraction of decode time")

    emit("oddnet_weights_mb", param_bytes(model) / 1e6, "MB")
    with tempfile.TemporaryDirectory() as folder:
        for kind, path in export_all(model, folder, "oddnet", {"bench": "speed"}).items():
            emit(f"oddnet_{kind}_file_mb", path.stat().st_size / 1e6, "MB")

    features = np.concatenate(snippets)
    rng = np.random.default_rng(0)
    triplets = simulated_judgments(features, np.array(tracks), JUDGMENTS + VAL_JUDGMENTS, rng)
    train_t, val_t = triplets[:JUDGMENTS], triplets[JUDGMENTS:]
    rows = np.concatenate([train_t, train_t[:, [1, 0, 2]]])  # (i, j, odd) and (j, i, odd)
    data = TripletData(
        features=features,
        triplets=rows,
        weights=np.ones(len(rows), dtype=np.float32),
        val_triplets=val_t,
        val_answers=[[2]] * len(val_t),
    )
    emit("train_snippets", len(features), "count")
    wall = time.monotonic()
    result = train(TrainConfig(), data)  # sets the 2 worker threads itself
    emit("train_s_per_1000_judgments_2cores", (time.monotonic() - wall) * 1000 / JUDGMENTS, "s")
    emit("train_val_agreement", result.metrics["val_agreement"], "fraction (chance 1/3)")

    torch.set_num_threads(1)
    # 5 s clips of three tracks, a batch of four 15 s snippets, 60 s of one track.
    track = next(s for s in snippets if len(s) >= 4)
    clips = [*(s[:1, :, :251] for s in snippets[:3]), track[:4], np.concatenate(track[:4], -1)]
    with tempfile.TemporaryDirectory() as folder:
        path = export_all(result.model, folder, "trained", {}, waveform=False)["onnx"]
        emit("onnx_max_abs_diff_trained", onnx_check(path, result.model, clips), "abs")
    emit("bench_seconds", time.monotonic() - started, "s")
    print(f"# rerun: {RERUN}" + (f" --minutes {args.minutes:g}" if args.minutes else ""))


if __name__ == "__main__":
    main()
