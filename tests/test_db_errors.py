"""A database outage answers 503 with Retry-After (config/db_errors.py), not a 500 page.

The outage is real: the test's own PostgreSQL connection is terminated from another
connection, as a server restart would, and the next request hits the dead connection.
"""

import psycopg
import pytest
from django.db import ProgrammingError, connection
from django.test import Client

from config.db_errors import RETRY_AFTER_S, DatabaseUnavailableMiddleware, database_unavailable

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dropped_connection():
    """Terminate this process's database connection from the server side; reconnect after."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL) to drop a server connection")
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"],
        password=db["PASSWORD"] or None, autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    yield
    connection.close()  # the next query opens a fresh connection


def test_an_api_request_during_a_database_outage_gets_a_json_503_with_retry_after(
    client: Client, dropped_connection
):
    response = client.post(
        "/api/v1/judgments/",
        {"assignment": 1, "answer": "A", "response_ms": 5000, "listen_ms": [5000] * 3},
        content_type="application/json",
        HTTP_AUTHORIZATION="Listener some-token",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    assert response.json()["code"] == "unavailable"
    assert "database" in response.json()["detail"]


def test_a_page_during_a_database_outage_gets_a_short_503_page_without_a_traceback(
    client: Client, dropped_connection
):
    client.cookies["sessionid"] = "a-session-the-database-must-look-up"
    response = client.get("/curate/")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == str(RETRY_AFTER_S)
    assert b"Traceback" not in response.content
    assert b"try again" in response.content


def test_the_service_answers_again_once_the_database_is_back(client: Client, dropped_connection):
    assert client.post("/api/v1/listeners/", {"consent": True}).status_code == 503
    connection.close()  # what Django does at the end of a request that met a dead connection
    assert client.post("/api/v1/listeners/", {"consent": True}).status_code == 201


def test_a_wrong_query_is_not_mistaken_for_an_outage_and_stays_a_server_error(rf):
    with pytest.raises(ProgrammingError) as wrong, connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not database_unavailable(wrong.value)
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(rf.get("/api/v1/listeners/me/"), wrong.value) is None
