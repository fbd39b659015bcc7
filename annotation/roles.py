"""Who may do what: the roles, their permissions, and the checks pages and the API use.

- **Listener**: anyone, anonymous (a listener cookie after consent) or with an account.
  Needs no permission; the listening pages and API only need a listener.
- **Curator**: the `curator` group. Moderates listeners, judgments, tracks and reports
  (/curate/), starts retraining and promotes a version (/dashboard/), takes models away.
- **Researcher**: the `researcher` group. Takes dataset releases and models away, and uses
  the research API with a token.
- **Admin**: a superuser; holds every permission, and alone may use /admin/.

The groups and their permissions are made by annotation/migrations/0005_roles.py; the
permissions hang off AuditEntry's Meta. Checks ask for a permission, never for a group
name or `is_staff`, so a permission granted to one user directly works too. The staff flag
alone grants nothing here: it only opens Django admin's login, where a staff user without
permissions sees nothing either.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

CURATOR = "curator"
RESEARCHER = "researcher"

# "app_label.codename", as `user.has_perm` wants them; declared on AuditEntry's Meta.
CURATE = "annotation.curate"
DOWNLOAD_MODELS = "annotation.download_models"
DOWNLOAD_DATASETS = "annotation.download_datasets"
USE_RESEARCH_API = "annotation.use_research_api"

GROUP_PERMISSIONS = {
    CURATOR: ("curate", "download_models"),
    RESEARCHER: ("download_datasets", "download_models", "use_research_api"),
}

View = Callable[..., HttpResponse]


def role_group(name: str) -> Group:
    """The group of role `name` with its permissions, made if missing (the roles migration
    makes them; a test database flushed between tests has lost them)."""
    group, _created = Group.objects.get_or_create(name=name)
    codenames = GROUP_PERMISSIONS[name]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="annotation", codename__in=codenames)
    )
    return group


def _has(user: object, perm: str) -> bool:
    # DRF leaves request.user None for unauthenticated calls (UNAUTHENTICATED_USER).
    return bool(user is not None and user.is_authenticated and user.has_perm(perm))


def is_curator(user: object) -> bool:
    """A curator or an admin (superusers hold every permission)."""
    return _has(user, CURATE)


def is_researcher(user: object) -> bool:
    """A researcher or an admin."""
    return _has(user, DOWNLOAD_DATASETS)


def can_download_models(user: object) -> bool:
    """Curators, researchers and admins."""
    return _has(user, DOWNLOAD_MODELS)


def role_required(test: Callable[[object], bool]) -> Callable[[View], View]:
    """A view decorator: anonymous visitors go to the login page (and come back), signed-in
    users who fail `test` get a 403."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not test(request.user):
                raise PermissionDenied("Your account does not have this role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


curator_required = role_required(is_curator)
models_access_required = role_required(can_download_models)


class IsCurator(BasePermission):
    """DRF: curators and admins; 401 without credentials, 403 with the wrong ones."""

    message = "Only curators may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_curator(request.user)


class IsResearcher(BasePermission):
    """DRF: researchers and admins; 401 without credentials, 403 with the wrong ones."""

    message = "Only researchers may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_researcher(request.user)
