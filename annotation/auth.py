"""How a listener is recognised: a token in the `Authorization: Listener <token>` header
(API clients) or in the `oddball_listener` cookie (the listening pages)."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from annotation.models import Listener

COOKIE = "oddball_listener"


def listener_from_cookie(request: HttpRequest) -> Listener | None:
    token = request.COOKIES.get(COOKIE)
    return Listener.objects.filter(token=token).first() if token else None


class ListenerTokenAuthentication(BaseAuthentication):
    """DRF authentication that puts the Listener in `request.auth`.

    Header only, never the cookie: a cookie would make the API open to cross-site posts.
    """

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
