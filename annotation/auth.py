"""How a listener is recognised: a token in the `Authorization: Listener <token>` header
(API clients) or in the `oddball_listener` cookie (the listening pages)."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from annotation.models import Listener
from annotation.selectors import hot_cursor, model_from_row, sql_columns

COOKIE = "oddball_listener"
COOKIE_AGE_S = 365 * 24 * 3600


BY_TOKEN_SQL = (
    f"SELECT {sql_columns(Listener, 'l')} FROM {Listener._meta.db_table} l WHERE l.token = %s"
)


def listener_by_token(token: str) -> Listener | None:
    """The listener with this token, in one indexed lookup. It runs on every listening
    request, so it is plain SQL: the ORM spent more CPU building the query than running it."""
    with hot_cursor() as cursor:
        cursor.execute(BY_TOKEN_SQL, [token])
        row = cursor.fetchone()
    return None if row is None else model_from_row(Listener, row)


def listener_from_cookie(request: HttpRequest) -> Listener | None:
    token = request.COOKIES.get(COOKIE)
    return listener_by_token(token) if token else None


def listener_cookie_set(response: object, request: HttpRequest, listener: Listener) -> None:
    response.set_cookie(
        COOKIE,
        listener.token,
        max_age=COOKIE_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )


class ListenerTokenAuthentication(BaseAuthentication):
    """DRF authentication that puts the Listener in `request.auth`, from the header."""

    keyword = "Listener"

    def authenticate(self, request: Request) -> tuple[object, Listener] | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith(self.keyword + " "):
            return None
        listener = listener_by_token(header.split(" ", 1)[1].strip())
        if listener is None:
            raise AuthenticationFailed("Unknown listener token.")
        return AnonymousUser(), listener

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ListenerCookieAuthentication(SessionAuthentication):
    """The listening page's own calls: the listener cookie, with Django's CSRF check, so
    another site cannot post answers in a listener's name. The token stays in an
    HttpOnly cookie, out of reach of page scripts."""

    def authenticate(self, request: Request) -> tuple[object, Listener] | None:
        listener = listener_from_cookie(request._request)
        if listener is None:
            return None
        self.enforce_csrf(request)
        return AnonymousUser(), listener


class ResearchTokenAuthentication(BaseAuthentication):
    """A researcher's API token in `Authorization: Bearer odb_<secret>`: a different keyword
    and a recognisable prefix, so it cannot be taken for a listener token (`Listener ...`).

    The token's user becomes `request.user` while the user is active and may still use the
    research API; a revoked token stops working at once. `last_used_at` is written at most
    once a TOKEN_TOUCH_S, not on every request."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[object, object] | None:
        # Imported here: annotation.research needs annotation.roles, which imports DRF's
        # views, which import this module through the DEFAULT_AUTHENTICATION_CLASSES.
        from annotation.research import api_token_authenticate

        header = request.headers.get("Authorization", "")
        if not header.startswith(self.keyword + " "):
            return None
        token = api_token_authenticate(header.split(" ", 1)[1].strip())
        if token is None:
            raise AuthenticationFailed(
                "Unknown, revoked or no longer valid research token.", code="invalid_token"
            )
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
