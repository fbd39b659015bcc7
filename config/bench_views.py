"""A bare view for the load benchmark (bench/load.py): the cost of the stack itself.

Enabled only with ODDBALL_BENCH_VIEWS (config/urls.py), never in a real deployment. It runs
the same middleware, gunicorn and database connection as the API, and one tiny query, so
the API's answers per second can be read as a share of what Django can serve at all.
"""

from django.db import connection
from django.http import HttpRequest, JsonResponse


def bare(request: HttpRequest) -> JsonResponse:
    """One `SELECT 1` on the default database, as JSON."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return JsonResponse({"ok": one})
