"""Fill the load benchmark's database with tracks, snippets and triplets (no audio files:
the benchmark measures the API, and no client fetches the audio).

Run by bench/load.py with DATABASE_URL pointing at its own fresh database; not a benchmark
itself, so it prints nothing when bench/run.sh runs every bench/*.py directly.
Rerun: DATABASE_URL=postgres://postgres@127.0.0.1:5432/oddball_load SECRET_KEY=x \
    .venv/bin/python bench/load_seed.py --seed-now --tracks 60 --triplets 6000
"""

import argparse
import os
import random
import sys
from pathlib import Path

SPLITS = ("train", "val", "test")
SNIPPETS_PER_TRACK = 5


def seed(tracks: int, triplets: int, rng: random.Random) -> tuple[int, int]:
    """Create `tracks` approved tracks of SNIPPETS_PER_TRACK snippets each and `triplets`
    random triplets of three different tracks within one split. Returns the counts."""
    from annotation.models import Triplet
    from embeddings.models import Snippet, Track

    made = Track.objects.bulk_create(
        Track(
            title=f"Bench track {i}",
            file_name=f"bench-{i}.ogg",
            checksum=f"{i:064x}",
            duration_s=60.0,
            sample_rate=44_100,
            channels=2,
            format="ogg",
            split=SPLITS[i % 3],
        )
        for i in range(tracks)
    )
    Snippet.objects.bulk_create(
        Snippet(
            track=track,
            position=p,
            start_s=p * 12.0,
            duration_s=12.0,
            audio=f"snippets/bench-{track.id}-{p}.ogg",
            analysis=f"analysis/bench-{track.id}-{p}.flac",
            loudness_lufs=-14.0,
            gain_db=0.0,
        )
        for track in made
        for p in range(SNIPPETS_PER_TRACK)
    )
    by_split: dict[str, dict[int, list[int]]] = {s: {} for s in SPLITS}
    for snippet_id, track_id, split in Snippet.objects.values_list(
        "id", "track_id", "track__split"
    ):
        by_split[split].setdefault(track_id, []).append(snippet_id)
    rows = []
    for i in range(triplets):
        split_tracks = by_split[SPLITS[i % 3]]
        chosen = rng.sample(sorted(split_tracks), 3)
        a, b, c = (rng.choice(split_tracks[t]) for t in chosen)
        rows.append(Triplet(snippet_a_id=a, snippet_b_id=b, snippet_c_id=c, split=SPLITS[i % 3]))
    Triplet.objects.bulk_create(rows, batch_size=1000)
    return Snippet.objects.count(), Triplet.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed-now", action="store_true", help="without it, do nothing")
    parser.add_argument("--tracks", type=int, default=60)
    parser.add_argument("--triplets", type=int, default=6000)
    args = parser.parse_args()
    if not args.seed_now:  # bench/run.sh runs every bench/*.py; this one is a helper
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    snippets, triplets = seed(args.tracks, args.triplets, random.Random(0))
    print(f"seeded {snippets} snippets, {triplets} triplets", file=sys.stderr)


if __name__ == "__main__":
    main()
