from django.contrib import admin

from embeddings.models import Embedding, Snippet, Track


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "split", "status", "duration_s", "license"]
    list_filter = ["split", "status"]
    search_fields = ["title", "file_name", "checksum"]


@admin.register(Snippet)
class SnippetAdmin(admin.ModelAdmin):
    list_display = ["id", "track", "position", "start_s", "duration_s", "hidden"]
    list_filter = ["hidden"]
    raw_id_fields = ["track"]


@admin.register(Embedding)
class EmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "snippet", "space", "dim"]
    list_filter = ["space"]
    raw_id_fields = ["snippet"]
