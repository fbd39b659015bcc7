"""Small builders for test data. Rows built here have no audio files; tests that need real
audio import generated files through the real importer instead."""

import itertools
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from annotation.models import (
    Assignment,
    Listener,
    TransitionAssignment,
    TransitionTask,
    Triplet,
)
from annotation.roles import role_group
from embeddings.models import Clip, Rendering, Snippet, Track
from training.models import ModelVersion

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


def listener_make(**fields: object) -> Listener:
    return Listener.objects.create(
        token=secrets.token_urlsafe(32),
        pseudonym="L" + secrets.token_hex(6),
        consented_at=timezone.now(),
        **fields,
    )


def user_make(role: str = "", **fields: object) -> AbstractUser:
    """A user with an account; `role` is a group made by the roles migration ("curator",
    "researcher"), or "admin" for a superuser."""
    from django.contrib.auth import get_user_model

    n = next(_ids)
    admin = role == "admin"
    fields = {"username": f"user{n}", "is_staff": admin, "is_superuser": admin, **fields}
    user = get_user_model().objects.create_user(password="pw-long-enough", **fields)
    if role and not admin:
        user.groups.add(role_group(role))
    return user


def assignment_make(listener: Listener, triplet: Triplet | None = None) -> Assignment:
    """An open assignment of a (new) triplet to `listener`, shown in canonical order."""
    return Assignment.objects.create(
        triplet=triplet or triplet_make(),
        listener=listener,
        order="abc",
        expires_at=timezone.now() + timedelta(minutes=15),
    )


def clip_make(track: Track | None = None, position: int = 0) -> Clip:
    return Clip.objects.create(
        track=track or track_make(snippets=0),
        position=position,
        start_s=20.0 * position,
        duration_s=25.0,
        edge_s=4.0,
    )


def rendering_make(x: Clip, y: Clip, style: str = "crossfade") -> Rendering:
    """A 16 s rendering of x into y, seam at 8 s (no audio file behind it)."""
    return Rendering.objects.create(
        clip_x=x,
        clip_y=y,
        style=style,
        version=1,
        x_seam_s=25.0,
        y_seam_s=0.0,
        seam_s=8.0,
        duration_s=16.0,
        config={},
        gain_x_db=0.0,
        gain_y_db=0.0,
        lufs_x=-18.0,
        lufs_y=-18.0,
        tempo_x={},
        tempo_y={},
        sample_rate=44_100,
        audio=f"renderings/{x.id}-{y.id}-{style}.ogg",
        sha256="0" * 64,
    )


def transition_task_make(style: str = "crossfade") -> TransitionTask:
    """A rendered random-control transition task between clips of two tracks."""
    x, y = clip_make(), clip_make()
    return TransitionTask.objects.create(
        clip_x=x,
        clip_y=y,
        style=style,
        kind=TransitionTask.Kind.RANDOM,
        shares={"model": 0.5, "random": 0.3, "true": 0.2},
        split="train",
        rendering=rendering_make(x, y, style),
    )


def transition_assignment_make(
    listener: Listener, task: TransitionTask | None = None
) -> TransitionAssignment:
    """An open assignment of a (new) rendered transition task to `listener`."""
    return TransitionAssignment.objects.create(
        task=task or transition_task_make(),
        listener=listener,
        expires_at=timezone.now() + timedelta(minutes=15),
    )


def model_version_make(name: str = "oddnet", artifacts: dict | None = None) -> ModelVersion:
    """A registered model version; `artifacts` maps kinds to media paths (files not made)."""
    version = (ModelVersion.objects.filter(name=name).count()) + 1
    return ModelVersion.objects.create(
        name=name,
        version=version,
        checkpoint=f"models/{name}-{version}.pt",
        n_params=10,
        size_bytes=40,
        artifacts=artifacts or {},
    )
