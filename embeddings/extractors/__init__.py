"""Feature extractors: pure functions from 16 kHz mono audio to one fixed-length vector.

Each extractor module exposes NAME, VERSION and DIM and `extract(x16k) -> (DIM,) float32`.
A stored vector is keyed by "NAME@VERSION", so bumping VERSION invalidates old vectors.
"""
