"""A database outage answers 503 with Retry-After, not a 500 page.

While PostgreSQL restarts (or a connection it dropped is still in a worker's pool), every
query raises OperationalError or InterfaceError. That is no bug in the request and nothing
was half-written (the transaction rolled back), so the client is told to come back: JSON
`{"detail", "code": "unavailable"}` for the API (the listening page keeps the answer in its
outbox and sends it again), a short page for people. Django closes the broken connection at
the end of the request (it checks connections on which errors occurred), so the next
request opens a fresh one.

Add to MIDDLEWARE (its place does not matter: only `process_exception` does anything).
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5  # s; a fast PostgreSQL restart takes a few seconds
# SQLSTATE classes of a server going away or refusing for now: connection exception,
# transaction rollback (deadlock, serialization), insufficient resources, operator
# intervention (shutdown, "the database system is starting up").
TRANSIENT_CLASSES = {"08", "40", "53", "57"}


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached right now (worth a retry), not
    that the query itself is wrong."""
    if isinstance(exc, InterfaceError):
        return True  # the connection was already closed
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in TRANSIENT_CLASSES
    if type(cause).__module__.startswith("sqlite3"):
        message = str(cause).lower()
        return "locked" in message or "busy" in message
    return True  # no answer from a server at all: the connection failed


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After, as JSON for API clients and as a short page for people."""
    # Not translated: a new msgid would put the catalogues out of step (make messages).
    detail = "The database is unavailable for a moment. Please try again shortly."
    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            {"detail": detail, "code": "unavailable", "wait_s": RETRY_AFTER_S}, status=503
        )
    else:
        page = f"<!doctype html><title>503</title><h1>503</h1><p>{escape(detail)}</p>"
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


class DatabaseUnavailableMiddleware:
    """Turns a view's database outage error into `unavailable_response`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not database_unavailable(exc):
            return None
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        return unavailable_response(request)
