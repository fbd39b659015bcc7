"""Pages (`urlpatterns`) and API routes under /api/v1/ (`api_urlpatterns`)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
api_urlpatterns: list = []
