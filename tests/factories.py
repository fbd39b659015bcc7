"""Small builders for test data. Rows built here have no audio files; tests that need real
audio import generated files through the real importer instead."""

import itertools
import secrets

from django.utils import timezone

from annotation.models import Listener, Triplet
from embeddings.models import Snippet, Track

_ids = itertools.count(1)


def track_make(split: str = "train", snippets: int = 2, **fields: object) -> Track:
    n = next(_ids)
    track = Track.objects.create(
        title=f"Track {n}",
        file_name=f"track{n}.ogg",
        checksum=secrets.token_hex(32),
        duration_s=60.0,
        sample_rate=44_100,
        channels=2,
        format="ogg/vorbis",
        license="CC0-1.0",
        attribution=f"Artist {n}",
        split=split,
        **fields,
    )
    Snippet.objects.bulk_create(
        Snippet(
            track=track,
            position=i,
            start_s=15.0 * i,
            duration_s=15.0,
            audio=f"snippets/{n}/{i}.ogg",
            analysis=f"snippets/{n}/{i}.flac",
            loudness_lufs=-20.0,
            gain_db=2.0,
        )
        for i in range(snippets)
    )
    return track


def triplet_make(split: str = "train") -> Triplet:
    tracks = [track_make(split, snippets=1) for _ in range(3)]
    a, b, c = (t.snippets.get() for t in tracks)
    return Triplet.objects.create(snippet_a=a, snippet_b=b, snippet_c=c, split=split)


def listener_make() -> Listener:
    return Listener.objects.create(
        token=secrets.token_urlsafe(32),
        pseudonym="L" + secrets.token_hex(6),
        consented_at=timezone.now(),
    )
