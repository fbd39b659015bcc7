"""Listeners, the triplets and transitions they are asked about, assignments and answers."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from embeddings.models import Clip, Rendering, Snippet, Split

SLOTS = "abc"  # a triplet's canonical slots; listeners see them in a per-assignment order
SITE_SOURCE = "oddball"  # the `source` of everything collected here, not imported


class Listener(models.Model):
    """A pseudonymous listener. `token` is the secret in the cookie or API header;
    `pseudonym` is the public name used in exports."""

    token = models.CharField(max_length=64, unique=True)
    pseudonym = models.CharField(max_length=16, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    consented_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Review(models.TextChoices):
        # Staff-facing, like the dashboard and /curate/: English only.
        OK = "ok", "No concerns"
        FLAGGED = "flagged", "Flagged: held out until a curator decides"
        EXCLUDED = "excluded", "Excluded by a curator"
        TRUSTED = "trusted", "Restored by a curator"

    # Quality control (annotation/quality.py): the reliability estimate, the signals behind
    # it, and the review state. Flagged and excluded listeners' answers stay in the database
    # but drop out of training and exports; restoring brings them back.
    reliability = models.FloatField(default=1.0, help_text="Estimated reliability, 0-1.")
    signals = models.JSONField(default=dict, blank=True, help_text="Latest quality signals.")
    review = models.CharField(max_length=10, choices=Review.choices, default=Review.OK)
    flag_reasons = models.JSONField(default=list, blank=True)
    quality_at = models.DateTimeField(null=True, blank=True)
    slowed_until = models.DateTimeField(
        null=True, blank=True, help_text="Served nothing new before this (answering too fast)."
    )
    # Listeners of imported judgment sets (import_judgments): the dataset's name and the
    # person's id in it. Listeners of this site have source "oddball" and no source_id.
    source = models.CharField(max_length=40, default=SITE_SOURCE)
    source_id = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_id"],
                condition=~models.Q(source_id=""),
                name="listener_once_per_source_person",
            )
        ]

    def __str__(self) -> str:
        return self.pseudonym


class Triplet(models.Model):
    class Kind(models.TextChoices):
        RANDOM = "random"
        GOLD = "gold"

    snippet_a = models.ForeignKey(Snippet, on_delete=models.PROTECT, related_name="+")
    snippet_b = models.ForeignKey(Snippet, on_delete=models.PROTECT, related_name="+")
    snippet_c = models.ForeignKey(Snippet, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RANDOM)
    split = models.CharField(max_length=5, choices=Split.choices)
    gold_odd = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Slot (0-2) of the other track's snippet, gold only."
    )
    active = models.BooleanField(default=True)
    source = models.CharField(
        max_length=40, default=SITE_SOURCE, help_text="oddball, or the imported dataset's name."
    )
    # Denormalised counters that order serving; the judgments stay the system of record.
    votes = models.PositiveIntegerField(default=0)
    served = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["active", "votes", "served"], name="triplet_serving")]

    def snippet_ids(self) -> tuple[int, int, int]:
        return (self.snippet_a_id, self.snippet_b_id, self.snippet_c_id)


class Assignment(models.Model):
    """A triplet served to one listener, valid until `expires_at`.

    `order` lists the slots in the order shown: "cab" shows slot c as A, a as B, b as C.
    """

    triplet = models.ForeignKey(Triplet, on_delete=models.PROTECT, related_name="assignments")
    listener = models.ForeignKey(Listener, on_delete=models.PROTECT, related_name="assignments")

    class SkipReason(models.TextChoices):
        LOAD_FAILED = "load-failed"
        OTHER = "other"

    order = models.CharField(max_length=3)
    practice = models.BooleanField(default=False, help_text="Part of the practice round.")
    repeat_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="repeat",
        help_text="The earlier assignment of this triplet that this one repeats.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    skipped_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=20, choices=SkipReason.choices, blank=True)

    class Meta:
        indexes = [models.Index(fields=["listener", "answered_at"], name="assignment_open")]
        constraints = [
            # A triplet is asked once per listener, plus at most one repeat of it.
            models.UniqueConstraint(
                fields=["triplet", "listener"],
                condition=models.Q(repeat_of__isnull=True),
                name="assignment_once_per_listener",
            )
        ]


class Judgment(models.Model):
    class Status(models.TextChoices):
        ACCEPTED = "accepted"
        FLAGGED = "flagged"  # held out of training and exports until a curator decides
        REJECTED = "rejected"

    # One judgment per assignment, enforced by the database: a double submit cannot add one.
    # Imported judgments (import_judgments) were never served here, so they have none.
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.PROTECT)
    triplet = models.ForeignKey(Triplet, on_delete=models.PROTECT, related_name="judgments")
    listener = models.ForeignKey(Listener, on_delete=models.PROTECT, related_name="judgments")
    odd_slot = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Slot (0-2) chosen as the odd one; null = can't tell."
    )

    class Viewport(models.TextChoices):
        PHONE = "phone"
        DESKTOP = "desktop"

    response_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="From first play to answer (null when imported)."
    )
    listen_ms = models.JSONField(
        null=True, blank=True, help_text="Listening time per slot [a, b, c], ms."
    )
    # What the listening page records besides the answer; null or blank for API clients
    # that do not send it. Nothing else about the person is kept.
    plays = models.JSONField(null=True, blank=True, help_text="Plays per slot [a, b, c].")
    seeks = models.JSONField(null=True, blank=True, help_text="Seeks per slot [a, b, c].")
    viewport = models.CharField(max_length=10, choices=Viewport.choices, blank=True)
    language = models.CharField(max_length=16, blank=True, help_text="Interface language.")
    practice = models.BooleanField(
        default=False, help_text="A practice-round answer: kept, never a vote or an export row."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACCEPTED)
    flag_reason = models.CharField(max_length=200, blank=True)
    weight = models.FloatField(default=1.0, help_text="Weight used in training.")
    source = models.CharField(
        max_length=40, default=SITE_SOURCE, help_text="oddball, or the imported dataset's name."
    )
    source_id = models.CharField(
        max_length=100, blank=True, help_text="The row's id in its source dataset."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["triplet", "status"], name="judgment_triplet")]
        constraints = [
            # Importing the same file twice adds nothing the second time.
            models.UniqueConstraint(
                fields=["source", "source_id"],
                condition=~models.Q(source_id=""),
                name="judgment_once_per_source_row",
            )
        ]


class SnippetReport(models.Model):
    """A listener's report that a snippet is broken, silent, offensive or otherwise wrong.
    One per listener, snippet and reason; curators resolve them."""

    class Reason(models.TextChoices):
        SILENT = "silent", _("It is silent")
        BROKEN = "broken", _("It is broken or distorted")
        OFFENSIVE = "offensive", _("It is offensive")
        OTHER = "other", _("Something else")

    snippet = models.ForeignKey(Snippet, on_delete=models.PROTECT, related_name="reports")
    listener = models.ForeignKey(Listener, on_delete=models.PROTECT, related_name="reports")
    reason = models.CharField(max_length=10, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["snippet", "listener", "reason"], name="report_once_per_reason"
            )
        ]


class TransitionTask(models.Model):
    """A transition to rate: clip X flowing into clip Y in one style.

    `kind` says why the pair was chosen: proposed by a model (its top candidates), a random
    control, or the track's true continuation (a check that should sound seamless). The
    shares in force when it was made are kept in `shares`. Served once its rendering exists.
    """

    class Kind(models.TextChoices):
        MODEL = "model"
        RANDOM = "random"
        TRUE = "true"

    clip_x = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    clip_y = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    style = models.CharField(max_length=10, choices=Rendering.Style.choices)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    proposed_by = models.CharField(
        max_length=60, blank=True, help_text="Space that proposed the pair (kind model)."
    )
    score = models.FloatField(null=True, blank=True, help_text="The proposer's score.")
    shares = models.JSONField(help_text="Share of each kind when the task was made.")
    split = models.CharField(max_length=5, choices=Split.choices)
    rendering = models.ForeignKey(
        Rendering, null=True, blank=True, on_delete=models.PROTECT, related_name="tasks"
    )
    active = models.BooleanField(default=True)
    votes = models.PositiveIntegerField(default=0)
    served = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["active", "votes", "served"], name="transition_task_serving")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["clip_x", "clip_y", "style"], name="transition_task_once"
            )
        ]


class TransitionAssignment(models.Model):
    """A transition task served to one listener, valid until `expires_at`."""

    task = models.ForeignKey(TransitionTask, on_delete=models.PROTECT, related_name="assignments")
    listener = models.ForeignKey(
        Listener, on_delete=models.PROTECT, related_name="transition_assignments"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    skipped_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=20, choices=Assignment.SkipReason.choices, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["listener", "answered_at"], name="transition_assignment_open")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "listener"], name="transition_assignment_once_per_listener"
            )
        ]


class TransitionRating(models.Model):
    """How seamless a listener found one transition: 1 (jarring) to 5 (as if one piece)."""

    Status = Judgment.Status
    Viewport = Judgment.Viewport

    # One rating per assignment, enforced by the database: a double submit cannot add one.
    assignment = models.OneToOneField(TransitionAssignment, on_delete=models.PROTECT)
    task = models.ForeignKey(TransitionTask, on_delete=models.PROTECT, related_name="ratings")
    listener = models.ForeignKey(
        Listener, on_delete=models.PROTECT, related_name="transition_ratings"
    )
    rating = models.PositiveSmallIntegerField(help_text="1 jarring … 5 seamless.")
    broke_at_s = models.FloatField(
        null=True, blank=True, help_text="Where the listener tapped 'it broke here', s."
    )
    response_ms = models.PositiveIntegerField(help_text="From first play to answer.")
    listen_ms = models.PositiveIntegerField(help_text="Time the rendering was heard, ms.")
    plays = models.PositiveIntegerField(null=True, blank=True)
    seeks = models.PositiveIntegerField(null=True, blank=True)
    viewport = models.CharField(max_length=10, choices=Judgment.Viewport.choices, blank=True)
    language = models.CharField(max_length=16, blank=True)
    status = models.CharField(
        max_length=10, choices=Judgment.Status.choices, default=Judgment.Status.ACCEPTED
    )
    weight = models.FloatField(default=1.0, help_text="Weight used in training.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["task", "status"], name="transition_rating_task")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rating__gte=1, rating__lte=5), name="transition_rating_1_to_5"
            )
        ]


class AuditEntry(models.Model):
    """One curator (or automatic) action: who, when, what, on which object, and why.
    Entries are only ever added; nothing in Oddball is deleted, only excluded."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Empty for automatic actions (quality control).",
    )
    action = models.CharField(max_length=40)
    target_type = models.CharField(max_length=20, help_text="listener, judgment, track, ...")
    target_id = models.PositiveBigIntegerField()
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target")]
        # The roles' permissions (annotation/roles.py) need a model to hang off; the audit
        # log is where what they allow is recorded.
        permissions = [
            ("curate", "Can moderate listeners, judgments and tracks, retrain and promote"),
            ("download_models", "Can download trained models"),
            ("download_datasets", "Can download dataset releases"),
            ("use_research_api", "Can use the research API with a token"),
        ]


class DatasetRelease(models.Model):
    """A numbered, immutable snapshot of the accepted judgments and ratings, cut by a curator
    with the filters in `filters`. Its files live under `folder` (relative to MEDIA_ROOT) and
    are listed in `files` with their sizes and SHA-256. `salt` keys the listener pseudonyms
    of this release only; it is never exported."""

    class Status(models.TextChoices):
        BUILDING = "building", "Being cut"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    number = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True, help_text="The curator's notes, shown in the datasheet.")
    filters = models.JSONField(default=dict, blank=True)
    salt = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    error = models.TextField(blank=True)
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True, help_text="[{name, bytes, sha256}]")
    folder = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"release {self.number}"


class ResearcherProfile(models.Model):
    """A researcher's application: who they are and why they want the data. A curator
    approves it (which adds the user to the researcher group) or rejects it."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting a curator"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="researcher"
    )
    affiliation = models.CharField(max_length=200)
    purpose = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class ApiToken(models.Model):
    """A researcher's API token. Only its SHA-256 is stored; `prefix` (the first characters)
    lets its owner tell tokens apart. Revoked tokens stay, with the time they were revoked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"
