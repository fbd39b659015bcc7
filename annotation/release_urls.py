"""Pages (`urlpatterns`) and API routes under /api/v1/ (`api_urlpatterns`) of dataset
releases."""

from django.urls import path

from annotation import release_api, release_views

urlpatterns: list = [
    path("datasets/", release_views.datasets, name="datasets"),
    path("datasets/<int:number>/", release_views.dataset, name="dataset"),
    path(
        "datasets/<int:number>/files/<path:name>",
        release_views.dataset_file,
        name="dataset-file",
    ),
    path("curate/releases/", release_views.curate_releases, name="curate-releases"),
]
api_urlpatterns: list = [
    path("releases/", release_api.ReleaseListApi.as_view(), name="api-releases"),
    path("releases/<int:number>/", release_api.ReleaseDetailApi.as_view(), name="api-release"),
    path(
        "releases/<int:number>/files/<path:name>",
        release_api.ReleaseFileApi.as_view(),
        name="api-release-file",
    ),
    path(
        "releases/<int:number>/judgments/",
        release_api.ReleaseVotesApi.as_view(),
        name="api-release-judgments",
    ),
]
