from django.urls import path

from annotation import api, curate_views, views

urlpatterns = [
    path("", views.welcome, name="welcome"),
    path("consent/", views.consent, name="consent"),
    path("listen/", views.listen, name="listen"),
    path("listen/transitions/", views.listen_transitions, name="listen-transitions"),
    path("listen/instructions/", views.instructions, name="instructions"),
    path("listen/history/", views.history, name="history"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.login_view, name="login"),
    path("accounts/logout/", views.logout_view, name="logout"),
    # Curators (annotation/curate_views.py).
    path("curate/", curate_views.overview, name="curate"),
    path("curate/act/", curate_views.act, name="curate-act"),
    path("curate/listeners/", curate_views.listeners, name="curate-listeners"),
    path(
        "curate/listeners/<int:listener_id>/",
        curate_views.listener_detail,
        name="curate-listener",
    ),
    path("curate/judgments/", curate_views.judgments, name="curate-judgments"),
    path("curate/reports/", curate_views.reports, name="curate-reports"),
    path("curate/tracks/", curate_views.tracks, name="curate-tracks"),
    path("curate/tracks/<int:track_id>/", curate_views.track_detail, name="curate-track"),
    path("curate/audit/", curate_views.audit, name="curate-audit"),
    path("curate/upload/", curate_views.upload, name="curate-upload"),
]

api_urlpatterns = [
    path("listeners/", api.ListenerCreateApi.as_view(), name="api-listener-create"),
    path("listeners/me/", api.MeApi.as_view(), name="api-listener-me"),
    path("assignments/next/", api.AssignmentNextApi.as_view(), name="api-assignment-next"),
    path(
        "assignments/<int:assignment_id>/skip/",
        api.AssignmentSkipApi.as_view(),
        name="api-assignment-skip",
    ),
    path("judgments/", api.JudgmentCreateApi.as_view(), name="api-judgment-create"),
    path("reports/", api.ReportCreateApi.as_view(), name="api-report-create"),
    path("transitions/next/", api.TransitionNextApi.as_view(), name="api-transition-next"),
    path(
        "transitions/<int:assignment_id>/skip/",
        api.TransitionSkipApi.as_view(),
        name="api-transition-skip",
    ),
    path("transitions/ratings/", api.RatingCreateApi.as_view(), name="api-rating-create"),
]
