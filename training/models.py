"""Training runs, the model versions they register, and evaluations of those versions."""

from django.db import models

# The transition model's versions are not promoted: "what plays next" reads the newest
# transnet space with a clip index, and the promoted (served) version stays an embedding.
TRANSITION_MODEL = "transnet"


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    model_name = models.CharField(max_length=40, default="oddnet")
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.JSONField(default=dict, help_text="Phase, step, epoch, loss.")
    error = models.TextField(blank=True)
    reason = models.CharField(max_length=200, blank=True, help_text="Why the run was started.")
    # Every run shares one lane: the partial unique index lets one be queued or running.
    lane = models.CharField(max_length=10, default="train", editable=False)
    judgments_at_start = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["lane"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_training_at_a_time",
            )
        ]


class ModelVersion(models.Model):
    name = models.CharField(max_length=40)
    version = models.PositiveIntegerField()
    # A run registers its pretrained model and the fine-tuned one.
    run = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="versions"
    )
    checkpoint = models.CharField(max_length=300, help_text="Path under the media root.")
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    trained_track_ids = models.JSONField(default=list)
    n_params = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    promoted = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    artifacts = models.JSONField(
        default=dict, help_text="Exported files by kind (onnx, safetensors, json), media paths."
    )
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
