from django.urls import path

from training import views

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/retrain/", views.retrain, name="dashboard-retrain"),
    path(
        "dashboard/train-transitions/",
        views.train_transitions,
        name="dashboard-train-transitions",
    ),
    path("dashboard/promote/<int:version_id>/", views.promote, name="dashboard-promote"),
    path("models/", views.models_page, name="models"),
    path("models/<str:space>/<str:kind>/", views.model_file, name="model-file"),
]
