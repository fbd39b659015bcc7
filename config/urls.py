from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation import release_urls, research_urls
from annotation.urls import api_urlpatterns
from annotation.urls import urlpatterns as annotation_urls
from config import bench_views
from config.health import healthz, readyz
from embeddings.urls import api_urlpatterns as embeddings_api
from embeddings.urls import urlpatterns as embeddings_urls
from embeddings.views import media
from training import research_urls as training_research_urls
from training import similar_urls
from training.urls import urlpatterns as training_urls


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404s under /api/ are JSON in the API's error shape; pages get Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "No such API endpoint.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


handler404 = not_found


urlpatterns = [
    # The API first: the listening endpoints are the busiest, and resolving them after
    # every page pattern cost about a tenth of their CPU (bench/load.py).
    path("api/v1/", include(api_urlpatterns)),
    path("api/v1/", include(embeddings_api)),
    path("api/v1/", include(release_urls.api_urlpatterns)),
    path("api/v1/", include(research_urls.api_urlpatterns)),
    path("api/v1/", include(similar_urls.api_urlpatterns)),
    path("api/v1/", include(training_research_urls.api_urlpatterns)),
    path("", include(annotation_urls)),
    path("", include(training_urls)),
    path("", include(embeddings_urls)),
    path("", include(release_urls.urlpatterns)),
    path("", include(research_urls.urlpatterns)),
    path("", include(similar_urls.urlpatterns)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
]

if settings.ODDBALL_SERVE_MEDIA:
    # The embedded default serves media itself; deployments let nginx do it.
    urlpatterns.append(path("media/<path:path>", media, name="media"))

if settings.ODDBALL_BENCH_VIEWS:
    urlpatterns.append(path("bench/bare/", bench_views.bare, name="bench-bare"))
