"""Training runs, the model versions they register, and evaluations of those versions."""

from django.db import models


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    model_name = models.CharField(max_length=40, default="oddnet")
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.JSONField(default=dict, help_text="Latest step, epoch, loss.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)


class ModelVersion(models.Model):
    name = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.PROTECT)
    checkpoint = models.CharField(max_length=300, help_text="Path under the media root.")
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    trained_track_ids = models.JSONField(default=list)
    n_params = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    promoted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_name_version")
        ]

    def __str__(self) -> str:
        return self.space

    @property
    def space(self) -> str:
        """The embedding space this version's vectors are stored under."""
        return f"{self.name}@{self.version}"


class Evaluation(models.Model):
    """Agreement of one embedding space with people on held-out triplets."""

    space = models.CharField(max_length=60)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations"
    )
    split = models.CharField(max_length=5, default="test")
    results = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
