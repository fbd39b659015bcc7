"""How a listener is recognised: a token in the `Authorization: Listener <token>` header
(API clients) or in the `oddball_listener` cookie (the listening pages)."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from annotation.models import Listener

COOKIE = "oddball_listener"
COOKIE_AGE_S = 365 * 24 * 3600


def listener_from_cookie(request: HttpRequest) -> Listener | None:
    token = request.COOKIES.get(COOKIE)
    return Listener.objects.filter(token=token).first() if token else None


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
        listener = Listener.objects.filter(token=header.split(" ", 1)[1].strip()).first()
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
