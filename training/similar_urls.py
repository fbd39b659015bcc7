"""Pages (`urlpatterns`) and API routes under /api/v1/ (`api_urlpatterns`)."""

from django.urls import path

from training import similar_api, similar_views

urlpatterns = [
    path("similar/", similar_views.similar_page, name="similar"),
]
api_urlpatterns = [
    path("similar/", similar_api.SimilarApi.as_view(), name="api-similar"),
]
