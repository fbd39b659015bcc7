"""Tracks, the snippets and clips cut from them, embedding vectors, transition renderings."""

import numpy as np
from django.db import models


class Split(models.TextChoices):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Track(models.Model):
    class Status(models.TextChoices):
        APPROVED = "approved"
        PENDING = "pending"
        REJECTED = "rejected"

    title = models.CharField(max_length=300)
    file_name = models.CharField(max_length=500, help_text="Name of the imported file.")
    checksum = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the file.")
    duration_s = models.FloatField()
    sample_rate = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    format = models.CharField(max_length=40)
    license = models.CharField(max_length=300, blank=True)
    attribution = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True)
    genre = models.CharField(max_length=200, blank=True)
    # Fixed at import so that triplets are drawn within one split (see DESIGN, "Agreement").
    split = models.CharField(max_length=5, choices=Split.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.APPROVED)
    hidden = models.BooleanField(default=False, help_text="Hidden by a curator: not served.")
    # Whole-track copies for transitions (clips and renderings); blank on tracks imported
    # before they were kept.
    original = models.FileField(max_length=300, blank=True, help_text="The imported file.")
    analysis = models.FileField(
        max_length=300, blank=True, help_text="16 kHz mono FLAC of the whole track."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title


class Snippet(models.Model):
    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="snippets")
    position = models.PositiveSmallIntegerField(help_text="Order within the track.")
    start_s = models.FloatField()
    duration_s = models.FloatField()
    audio = models.FileField(max_length=300, help_text="Browser copy (Ogg).")
    analysis = models.FileField(max_length=300, help_text="16 kHz mono FLAC for analysis.")
    loudness_lufs = models.FloatField(help_text="Integrated loudness before normalisation.")
    gain_db = models.FloatField(help_text="Gain applied to reach the target loudness.")
    hidden = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["track_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["track", "position"], name="snippet_track_position")
        ]

    def __str__(self) -> str:
        return f"{self.track.title} @ {self.start_s:.0f}s"


class Embedding(models.Model):
    """One vector for one snippet in one space ("mel-stats@1", "oddnet@3", ...)."""

    snippet = models.ForeignKey(Snippet, on_delete=models.CASCADE, related_name="embeddings")
    space = models.CharField(max_length=60, db_index=True)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32, little-endian.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snippet", "space"], name="embedding_snippet_space")
        ]

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4")


class Clip(models.Model):
    """An ordered clip of a track for transitions (25 s overlapping by 5 s by default).

    Its opening and its ending (the first and last `edge_s`) are what transition models
    read; their vectors are ClipEmbedding rows."""

    track = models.ForeignKey(Track, on_delete=models.PROTECT, related_name="clips")
    position = models.PositiveSmallIntegerField(help_text="Order within the track.")
    start_s = models.FloatField()
    duration_s = models.FloatField()
    edge_s = models.FloatField(help_text="Length of the opening and of the ending, s.")

    class Meta:
        ordering = ["track_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["track", "position"], name="clip_track_position")
        ]

    def __str__(self) -> str:
        return f"{self.track.title} clip {self.position} @ {self.start_s:.0f}s"

    @property
    def end_s(self) -> float:
        return round(self.start_s + self.duration_s, 3)


class ClipEmbedding(models.Model):
    """One vector for the opening or the ending of a clip in one space. In a transition
    model's space the ending vector is its prediction of what should follow."""

    class Part(models.TextChoices):
        OPENING = "opening"
        ENDING = "ending"

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="embeddings")
    part = models.CharField(max_length=8, choices=Part.choices)
    space = models.CharField(max_length=60, db_index=True)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32, little-endian.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "part", "space"], name="clip_embedding_part_space"
            )
        ]

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4")


class Rendering(models.Model):
    """Clip X's ending flowing into clip Y, rendered once in one style and cached as a file.

    Everything needed to hear or learn from it again is stored: the seam in both tracks,
    the gains, the fade or the mix mask, and the beat alignment."""

    class Style(models.TextChoices):
        HARD_CUT = "hard_cut"
        CROSSFADE = "crossfade"
        OVERLAY = "overlay"

    clip_x = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    clip_y = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    style = models.CharField(max_length=10, choices=Style.choices)
    seed = models.PositiveIntegerField(default=0, help_text="Seed of the overlay mask.")
    version = models.PositiveSmallIntegerField(help_text="Renderer version (RENDER_VERSION).")
    x_seam_s = models.FloatField(help_text="Seam in track X, s from its start.")
    y_seam_s = models.FloatField(help_text="Seam in track Y before any beat shift, s.")
    seam_s = models.FloatField(help_text="Seam in the rendering, s from its start.")
    duration_s = models.FloatField()
    config = models.JSONField(help_text="The RenderConfig used.")
    crossfade_s = models.FloatField(null=True, blank=True)
    mask = models.JSONField(null=True, blank=True, help_text="Y's share per mask step (overlay).")
    mask_rate_hz = models.FloatField(default=10.0)
    gain_x_db = models.FloatField()
    gain_y_db = models.FloatField()
    lufs_x = models.FloatField()
    lufs_y = models.FloatField()
    limited_x = models.BooleanField(default=False)
    limited_y = models.BooleanField(default=False)
    mix_gain_db = models.FloatField(default=0.0)
    tempo_x = models.JSONField(help_text="bpm, confidence, phase_s of X before the seam.")
    tempo_y = models.JSONField(help_text="bpm, confidence, phase_s of Y after the seam.")
    beat_shift_s = models.FloatField(default=0.0)
    aligned = models.BooleanField(default=False)
    alignment_note = models.CharField(max_length=200, blank=True)
    sample_rate = models.PositiveIntegerField()
    audio = models.FileField(max_length=300, help_text="Browser copy (Ogg).")
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip_x", "clip_y", "style", "seed", "version"], name="rendering_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.clip_x} → {self.clip_y} ({self.style})"
