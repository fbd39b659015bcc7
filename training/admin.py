from django.contrib import admin

from training.models import Evaluation, ModelVersion, TrainingRun


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "model_name", "status", "created_at", "finished_at"]
    list_filter = ["status"]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["space", "size_bytes", "promoted", "created_at"]


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin):
    list_display = ["id", "space", "split", "created_at"]
