from django.urls import path

from annotation import api, views

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
