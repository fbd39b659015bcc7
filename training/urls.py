from django.urls import path

from training import views

urlpatterns = [path("dashboard/", views.dashboard, name="dashboard")]
