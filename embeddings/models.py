"""Tracks, the snippets cut from them, and embedding vectors per snippet and space."""

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
