"""The two hot listening statements, serve and answer, as hand-written SQL.

They run hundreds of times a second (bench/load.py); through the ORM, building the queries
cost more CPU than running them, and serving took eight round trips and answering ten.
On PostgreSQL each is one statement here (data-modifying CTEs, SKIP LOCKED, ON CONFLICT),
prepared once per connection (`selectors.hot_cursor`). `services.assignment_next` and
`services.judgment_submit` decide when to use them; every other database, SQLite above
all, takes their ORM path, which behaves the same (tests/annotation/test_hot_paths.py
runs both). The open-assignment lookup is plain SQL that runs everywhere.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from annotation import selectors
from annotation.models import Assignment, Judgment, Listener, Triplet
from annotation.selectors import model_from_row, sql_columns
from embeddings.models import Snippet

if TYPE_CHECKING:
    from annotation.services import Answer

# Serving an assignment shows its three snippets: fetch them in the same query.
SNIPPET_FIELDS = ("snippet_a", "snippet_b", "snippet_c")
# Of each snippet only what the payload shows (id, audio, duration_s) is read when serving:
# fewer columns to build the query from and to load, on the busiest endpoint.
SNIPPET_UNSHOWN = (
    "track",
    "position",
    "start_s",
    "analysis",
    "loudness_lufs",
    "gain_db",
    "hidden",
    "created_at",
)


# The listener's oldest open assignment not in the excluded ones, on a triplet still
# active. Most requests find none (bench/load.py). Runs on every database.
OPEN_SQL = """SELECT a.id FROM annotation_assignment a
    JOIN annotation_triplet t ON t.id = a.triplet_id
    WHERE a.listener_id = %(listener)s AND a.practice = %(practice)s
    AND a.answered_at IS NULL AND a.skipped_at IS NULL AND a.expires_at > %(now)s
    AND t.active = %(true)s{exclude}
    ORDER BY a.created_at LIMIT 1"""


def open_params(
    listener: Listener, practice: bool, exclude: list[int], now: datetime
) -> tuple[str, dict]:
    """OPEN_SQL for this many excluded ids, and its parameters."""
    params = {
        "listener": listener.id,
        "practice": practice,
        "now": connection.ops.adapt_datetimefield_value(now),
        "true": True,
        **{f"x{i}": x for i, x in enumerate(exclude)},
    }
    held = ", ".join(f"%(x{i})s" for i in range(len(exclude)))
    return OPEN_SQL.format(exclude=f" AND a.id NOT IN ({held})" if exclude else ""), params


def open_assignment_id(
    listener: Listener, practice: bool, exclude: list[int], now: datetime
) -> int | None:
    sql, params = open_params(listener, practice, exclude, now)
    with selectors.hot_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


# What the payload shows of each snippet; the rest stays deferred.
SNIPPET_SHOWN = ("id", "duration_s", "audio")
# One statement (PostgreSQL): the open assignment if there is one; else pick the
# least-voted active triplet the listener has not seen (in the `triplet_serving` index's
# order, see _assignment_make_orm), skipping rows another request has locked; count it
# served; insert the assignment; return it with its triplet and the three snippets. In
# autocommit it is its own transaction, so the lock lasts exactly as long as before.
MAKE_SQL = """
WITH open AS MATERIALIZED ({open}
), picked AS MATERIALIZED (
    SELECT t.id FROM annotation_triplet t
    WHERE t.active AND {kind} NOT EXISTS (SELECT 1 FROM open) AND NOT EXISTS (
        SELECT 1 FROM annotation_assignment u WHERE u.listener_id = %(listener)s
        AND u.triplet_id = t.id)
    ORDER BY t.votes, t.served LIMIT 1
    FOR UPDATE SKIP LOCKED
), bumped AS (
    UPDATE annotation_triplet t SET served = t.served + 1 FROM picked WHERE t.id = picked.id
    RETURNING t.*
), made AS (
    INSERT INTO annotation_assignment (triplet_id, listener_id, "order", practice,
        repeat_of_id, created_at, expires_at, answered_at, skipped_at, skip_reason)
    SELECT id, %(listener)s, %(order)s, %(practice)s, NULL, %(now)s, %(expires)s, NULL, NULL, ''
    FROM bumped RETURNING *
)
SELECT (SELECT id FROM open), {made}, {bumped}, {sa}, {sb}, {sc}
FROM (SELECT 1) AS one
LEFT JOIN made ON true
LEFT JOIN bumped ON bumped.id = made.triplet_id
LEFT JOIN embeddings_snippet sa ON sa.id = bumped.snippet_a_id
LEFT JOIN embeddings_snippet sb ON sb.id = bumped.snippet_b_id
LEFT JOIN embeddings_snippet sc ON sc.id = bumped.snippet_c_id
"""


@lru_cache(maxsize=32)  # one per practice flag and number of excluded ids
def _make_sql(practice: bool, open_sql: str) -> str:
    return MAKE_SQL.format(
        open=open_sql,
        kind="t.kind = 'gold' AND" if practice else "",
        made=sql_columns(Assignment, "made"),
        bumped=sql_columns(Triplet, "bumped"),
        sa=sql_columns(Snippet, "sa", SNIPPET_SHOWN),
        sb=sql_columns(Snippet, "sb", SNIPPET_SHOWN),
        sc=sql_columns(Snippet, "sc", SNIPPET_SHOWN),
    )


def assignment_make(
    listener: Listener,
    practice: bool,
    exclude: list[int],
    order: str,
    now: datetime,
    expires_at: datetime,
) -> tuple[int | None, Assignment | None]:
    """(the open assignment's id, None), or (None, a new assignment as
    `_assignment_make_orm` makes it, or None when nothing is left), in one round trip."""
    open_sql, params = open_params(listener, practice, exclude, now)
    params.update(order=order, expires=expires_at)
    with selectors.hot_cursor() as cursor:
        cursor.execute(_make_sql(practice, open_sql), params)
        open_id, *row = cursor.fetchone()
    if open_id is not None or row[0] is None:
        return open_id, None
    n_a, n_t = len(Assignment._meta.concrete_fields), len(Triplet._meta.concrete_fields)
    assignment = model_from_row(Assignment, row[:n_a])
    triplet = model_from_row(Triplet, row[n_a : n_a + n_t])
    n_s = len(SNIPPET_SHOWN)
    for i, name in enumerate(SNIPPET_FIELDS):
        start = n_a + n_t + i * n_s
        setattr(triplet, name, model_from_row(Snippet, row[start : start + n_s], SNIPPET_SHOWN))
    assignment.triplet = triplet
    assignment.listener = listener
    return None, assignment


# One statement (PostgreSQL): lock the assignment if it is this listener's, not skipped and
# not expired; insert the judgment unless one exists (ON CONFLICT sees a judgment committed
# while this statement waited on the lock, where a plain read would not), by slot as
# `_judgment_make` does; mark the assignment answered and count the vote only if the insert
# happened; read the feedback. No row back means "not the usual case": the ORM path then
# finds out which. `order` says which position shows which slot: slot s is at position
# strpos(order, s) - 1, and position p shows slot strpos('abc', substr(order, p + 1, 1)) - 1.
INSERT_SQL = """
WITH a AS MATERIALIZED (
    SELECT id, triplet_id, "order", practice, repeat_of_id FROM annotation_assignment
    WHERE id = %(assignment)s AND listener_id = %(listener)s AND skipped_at IS NULL
    AND expires_at > %(cutoff)s
    FOR UPDATE
), j AS (
    INSERT INTO annotation_judgment ({columns}) SELECT {values} FROM a
    ON CONFLICT (assignment_id) DO NOTHING
    RETURNING {returning}
), answered AS (
    UPDATE annotation_assignment SET answered_at = %(now)s
    WHERE id IN (SELECT assignment_id FROM j)
), voted AS (
    UPDATE annotation_triplet SET votes = votes + 1
    WHERE id IN (SELECT j.triplet_id FROM j, a WHERE NOT a.practice AND a.repeat_of_id IS NULL)
)
SELECT {judgment}, a."order", f.* FROM j CROSS JOIN a CROSS JOIN LATERAL ({feedback}) f
"""
ODD_SLOT_SQL = "strpos('abc', substr(a.\"order\", %(position)s + 1, 1)) - 1"
BY_SLOT_SQL = (
    "CASE WHEN %(p_{name})s::jsonb IS NULL THEN NULL ELSE jsonb_build_array("
    "%(p_{name})s::jsonb -> (strpos(a.\"order\", 'a') - 1), "
    "%(p_{name})s::jsonb -> (strpos(a.\"order\", 'b') - 1), "
    "%(p_{name})s::jsonb -> (strpos(a.\"order\", 'c') - 1)) END"
)
FROM_ASSIGNMENT = {
    "assignment_id": "a.id",
    "triplet_id": "a.triplet_id",
    "practice": "a.practice",
    "odd_slot": ODD_SLOT_SQL,
    **{name: BY_SLOT_SQL.format(name=name) for name in ("listen_ms", "plays", "seeks")},
}


@cache
def _insert_sql(family: bool) -> str:
    fields = [f for f in Judgment._meta.concrete_fields if not f.primary_key]
    return INSERT_SQL.format(
        columns=", ".join(f'"{f.column}"' for f in fields),
        values=", ".join(FROM_ASSIGNMENT.get(f.column, f"%(f_{f.column})s") for f in fields),
        returning=", ".join(f'"{f.column}"' for f in Judgment._meta.concrete_fields),
        judgment=sql_columns(Judgment, "j"),
        feedback=selectors.outcome_sql(family, triplet="a.triplet_id"),
    )


def judgment_insert(
    listener: Listener, answer: Answer, position: int | None, per_position: dict, cutoff: datetime
) -> tuple[Judgment, dict] | None:
    """A first, valid answer stored in one statement: (the judgment, its outcome as
    `selectors.judgment_outcome` gives it). `position` is the displayed position picked
    (None: no odd one); an assignment expiring before `cutoff` is refused. None when the
    answer is anything else (not this listener's, skipped, expired, already answered)."""
    # What the statement does not take from the assignment, as the ORM would save it.
    judgment = Judgment(
        listener=listener,
        response_ms=int(answer.response_ms),
        viewport=answer.viewport,
        language=answer.language[:16],
    )
    params = {
        "assignment": answer.assignment_id,
        "listener": listener.id,
        "cutoff": cutoff,
        "now": timezone.now(),
        "position": position,
        **selectors.outcome_params(listener, None),
    }
    json_field = Judgment._meta.get_field("listen_ms")
    for name, values in per_position.items():
        params[f"p_{name}"] = json_field.get_db_prep_save(values, connection)
    for f in Judgment._meta.concrete_fields:
        if not f.primary_key and f.column not in FROM_ASSIGNMENT:
            params[f"f_{f.column}"] = f.get_db_prep_save(f.pre_save(judgment, True), connection)
    with selectors.hot_cursor() as cursor:
        cursor.execute(_insert_sql(listener.user_id is not None), params)
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(Judgment._meta.concrete_fields)
    judgment = model_from_row(Judgment, row[:n])
    outcome = selectors.outcome_from_row(row[n + 1 :], row[n], judgment.practice)
    outcome["answered"] += not judgment.practice  # the statement's snapshot predates it
    return judgment, outcome
