"""How fast does BEATs turn real music into frame features on one CPU core?

Cuts 10 s clips (16 kHz mono) from the middle of different tracks in ../shared/corpus, one clip
per track, until about 90 s of audio, and times `snippet_vectors` (Kaldi fbank, 16×16
patches, the 12-layer encoder, the mean over tokens) one clip at a time with
torch.set_num_threads(1), after one warm-up clip. The model is the full-size official
architecture (iter3 / iter3+ AS2M: 12 layers, 768 wide, 3072 FFN, 12 heads, AudioSet head):
the checkpoint at ODDBALL_BEATS_CHECKPOINT if set, otherwise random weights, which take the
same time (the output says which).
Prints one JSON object per line: {"name", "value", "unit"}.

Rerun from the repo root: .venv/bin/python bench/beats_speed.py [--seconds 90]
"""

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from embeddings.audio import decode, resample, to_mono
from embeddings.extractors import beats

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CLIP_SECONDS = 10.0  # s
RATE = beats.SAMPLE_RATE  # Hz
RERUN = ".venv/bin/python bench/beats_speed.py"
# The cfg stored in the official BEATs_iter3_AS2M / iter3_plus_AS2M checkpoints.
ITER3_AS2M_CFG = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 0.6,
    "layer_norm_first": False,
    "deep_norm": True,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "finetuned_model": True,
    "predictor_dropout": 0.0,
    "predictor_class": 527,
}


def emit(name: str, value: float, unit: str) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 4), "unit": unit}), flush=True)


def load_clips(corpus: Path, total_seconds: float) -> list[np.ndarray]:
    """10 s 16 kHz mono clips from the middle of successive corpus tracks."""
    with open(corpus / "MANIFEST.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if float(r["duration_s"]) >= CLIP_SECONDS]
    size, clips = round(CLIP_SECONDS * RATE), []
    for row in rows:
        if len(clips) * CLIP_SECONDS >= total_seconds:
            break
        audio, sr = decode(corpus / row["path"])
        mono = resample(to_mono(audio), sr, RATE)
        start = max(0, (len(mono) - size) // 2)
        clips.append(mono[start : start + size])
    return clips


def load_model() -> tuple[beats.Beats, str]:
    path = os.environ.get("ODDBALL_BEATS_CHECKPOINT")
    if path:
        return beats.load_checkpoint(path), f"checkpoint {path}"
    cfg = beats.BeatsConfig.from_dict(ITER3_AS2M_CFG)
    return beats.Beats(cfg).eval(), "random weights (ODDBALL_BEATS_CHECKPOINT not set)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="audio to time, in s")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    print(f"# rerun: {RERUN} --seconds {args.seconds:g}", flush=True)
    if not (args.corpus / "MANIFEST.csv").is_file():
        print(f"# skipped: no corpus at {args.corpus} (../shared/corpus)", flush=True)
        return
    torch.set_num_threads(1)
    clips = load_clips(args.corpus, args.seconds)
    model, weights = load_model()
    print(f"# model: {weights}; {len(clips)} clips of {CLIP_SECONDS:g} s, one at a time")
    beats.snippet_vectors(model, clips[:1])  # warm-up: first-call allocations
    started = time.perf_counter()
    for clip in clips:
        beats.snippet_vectors(model, [clip])
    elapsed = time.perf_counter() - started
    audio_seconds = sum(len(c) for c in clips) / RATE
    emit("beats_rtf_1core", audio_seconds / elapsed, "x realtime")
    emit("beats_params_m", sum(p.numel() for p in model.parameters()) / 1e6, "M parameters")


if __name__ == "__main__":
    main()
