from django.contrib import admin

from annotation.models import Assignment, Judgment, Listener, Triplet


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
