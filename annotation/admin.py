from django.contrib import admin

from annotation.models import (
    Assignment,
    Judgment,
    Listener,
    TransitionAssignment,
    TransitionRating,
    TransitionTask,
    Triplet,
)


@admin.register(Listener)
class ListenerAdmin(admin.ModelAdmin):
    list_display = ["pseudonym", "user", "consented_at"]
    exclude = ["token"]
    search_fields = ["pseudonym"]


@admin.register(Triplet)
class TripletAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "split", "votes", "served", "active"]
    list_filter = ["kind", "split", "active"]
    raw_id_fields = ["snippet_a", "snippet_b", "snippet_c"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "triplet", "listener", "order", "expires_at", "answered_at"]
    raw_id_fields = ["triplet", "listener"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "triplet", "listener", "odd_slot", "response_ms", "status", "weight"]
    list_filter = ["status"]
    raw_id_fields = ["assignment", "triplet", "listener"]


@admin.register(TransitionTask)
class TransitionTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "style", "split", "proposed_by", "votes", "served", "active"]
    list_filter = ["kind", "style", "split", "active"]
    raw_id_fields = ["clip_x", "clip_y", "rendering"]


@admin.register(TransitionAssignment)
class TransitionAssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "listener", "expires_at", "answered_at", "skipped_at"]
    raw_id_fields = ["task", "listener"]


@admin.register(TransitionRating)
class TransitionRatingAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "listener", "rating", "broke_at_s", "status", "weight"]
    list_filter = ["status", "rating"]
    raw_id_fields = ["assignment", "task", "listener"]
