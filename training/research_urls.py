"""Pages (`urlpatterns`) and API routes under /api/v1/ (`api_urlpatterns`)."""

from django.urls import path

from training import research_api

urlpatterns: list = []
api_urlpatterns = [
    path("models/", research_api.ModelListApi.as_view(), name="api-research-models"),
    path("models/<str:space>/", research_api.ModelDetailApi.as_view(), name="api-research-model"),
    path(
        "models/<str:space>/files/<str:kind>/",
        research_api.ModelFileApi.as_view(),
        name="api-research-model-file",
    ),
]
