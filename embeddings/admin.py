from django.contrib import admin

from embeddings.models import Clip, ClipEmbedding, Embedding, Rendering, Snippet, Track


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


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ["id", "track", "position", "start_s", "duration_s", "edge_s"]
    raw_id_fields = ["track"]


@admin.register(ClipEmbedding)
class ClipEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "clip", "part", "space", "dim"]
    list_filter = ["space", "part"]
    raw_id_fields = ["clip"]


@admin.register(Rendering)
class RenderingAdmin(admin.ModelAdmin):
    list_display = ["id", "clip_x", "clip_y", "style", "seam_s", "aligned", "mix_gain_db"]
    list_filter = ["style", "aligned", "version"]
    raw_id_fields = ["clip_x", "clip_y"]
