"""Pages (`urlpatterns`) and API routes under /api/v1/ (`api_urlpatterns`)."""

from django.urls import path

from annotation import research_api, research_views

urlpatterns = [
    path("research/", research_views.research_home, name="research"),
    path("research/apply/", research_views.research_apply, name="research-apply"),
    path("research/tokens/", research_views.token_create, name="research-token-create"),
    path(
        "research/tokens/<int:token_id>/revoke/",
        research_views.token_revoke,
        name="research-token-revoke",
    ),
    path("curate/researchers/", research_views.curate_researchers, name="curate-researchers"),
    path(
        "curate/researchers/<int:profile_id>/decide/",
        research_views.curate_researcher_decide,
        name="curate-researcher-decide",
    ),
]

api_urlpatterns = [
    path("tracks/", research_api.TrackListApi.as_view(), name="api-research-tracks"),
    path(
        "tracks/<int:track_id>/", research_api.TrackDetailApi.as_view(), name="api-research-track"
    ),
    path(
        "snippets/<int:snippet_id>/",
        research_api.SnippetDetailApi.as_view(),
        name="api-research-snippet",
    ),
    path(
        "snippets/<int:snippet_id>/embeddings/",
        research_api.SnippetEmbeddingApi.as_view(),
        name="api-research-snippet-embedding",
    ),
]
