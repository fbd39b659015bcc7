from django.urls import path

from embeddings import api, views

urlpatterns = [
    path("tracks/<int:track_id>/next/", views.track_next, name="track-next"),
]

api_urlpatterns = [
    path("tracks/<int:track_id>/next/", api.TrackNextApi.as_view(), name="api-track-next"),
    path("transitions/render/", api.TransitionRenderApi.as_view(), name="api-transition-render"),
]
