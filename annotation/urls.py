from django.urls import path

from annotation import api, views

urlpatterns = [
    path("", views.welcome, name="welcome"),
    path("consent/", views.consent, name="consent"),
    path("listen/", views.listen, name="listen"),
    path("listen/answer/", views.answer, name="answer"),
]

api_urlpatterns = [
    path("listeners/", api.ListenerCreateApi.as_view(), name="api-listener-create"),
    path("assignments/next/", api.AssignmentNextApi.as_view(), name="api-assignment-next"),
    path("judgments/", api.JudgmentCreateApi.as_view(), name="api-judgment-create"),
]
