"""The run views in SQLite (see :mod:`tether.persistence.views`): the projection step, run as
a job of the one writer (I6), and the pages and counts read from the views.

Example::

    applied = await writer.submit(functools.partial(project, limit=1000))
    rows = await page_executions(reader, ExecutionQuery(status="paused"), None, 100, False)
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from typing import Any

import aiosqlite

from tether.persistence.contract import ExecutionRow
from tether.persistence.page_sql import VIEW_COLUMNS, Dialect, execution_where, keyset
from tether.persistence.pages import ExecutionQuery, PagePosition
from tether.persistence.sqlite.connection_thread import in_connection_thread
from tether.persistence.sqlite.execution_reads import _execution
from tether.persistence.views import count_moves, edge_query, split_window

_VIEW = Dialect("?", "v.", "LIKE")

_UPSERT_VIEW = """
    INSERT INTO run_views (execution_id, workflow_id, workflow_version, status, created_at_ms,
                           updated_at_ms, error)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (execution_id) DO UPDATE SET
        workflow_id = excluded.workflow_id, workflow_version = excluded.workflow_version,
        status = excluded.status, created_at_ms = excluded.created_at_ms,
        updated_at_ms = excluded.updated_at_ms, error = excluded.error
"""
_MOVE_COUNT = """
    INSERT INTO run_counts (hour_ms, workflow_id, status, n) VALUES (?, ?, ?, ?)
    ON CONFLICT (hour_ms, workflow_id, status) DO UPDATE SET n = n + excluded.n
"""

_DROP_EMPTY_COUNT = (
    "DELETE FROM run_counts WHERE hour_ms = ? AND workflow_id = ? AND status = ? AND n = 0"
)


async def project(conn: aiosqlite.Connection, limit: int) -> int:
    """Apply up to ``limit`` feed rows past the persisted position; return how many.

    Runs inside the writer's job transaction (the job commits it): the view, the counters and
    the position move together or not at all. Each named execution's view row becomes its
    index row as it is now (a later feed row naming it again finds the same row: nothing
    moves twice). One hop to the connection's thread: the statements hold no cursor across
    an await, so a writer stopped mid-job (a crash test's kill) leaves nothing open that
    would keep the file locked."""
    return await in_connection_thread(conn, functools.partial(project_now, limit=limit))


def project_now(raw: sqlite3.Connection, limit: int) -> int:
    """``project`` on the connection's own thread."""
    [(position,)] = raw.execute("SELECT pos FROM view_position").fetchall()
    feed = raw.execute(
        "SELECT pos, execution_id FROM view_feed WHERE pos > ? ORDER BY pos LIMIT ?",
        (position, limit),
    ).fetchall()
    if not feed:
        return 0
    ids = json.dumps(list(dict.fromkeys(eid for _, eid in feed)))
    old, new = _named(raw, "run_views", ids), _named(raw, "executions", ids)
    moves = count_moves(_keys(old.values()), _keys(new.values()))
    last = feed[-1][0]
    for sql, rows in (
        (_UPSERT_VIEW, [tuple(r) for r in new.values()]),
        # No index row any more: nothing to show.
        ("DELETE FROM run_views WHERE execution_id = ?", [(eid,) for eid in old if eid not in new]),
        (_MOVE_COUNT, [(*key, n) for key, n in moves.items()]),
        # A counter down to nothing goes: the table stays small.
        (_DROP_EMPTY_COUNT, [key for key, n in moves.items() if n < 0]),
        ("UPDATE view_position SET pos = ?", [(last,)]),
        # Keep the last row read: SQLite gives a new row max(pos) + 1, never a used position.
        ("DELETE FROM view_feed WHERE pos < ?", [(last,)]),
    ):
        if rows:
            raw.executemany(sql, rows)
    return len(feed)


def _named(raw: sqlite3.Connection, table: str, ids: str) -> dict[str, Any]:
    """The rows of ``table`` for the executions in ``ids`` (a JSON list), by id."""
    rows = raw.execute(
        f"SELECT {VIEW_COLUMNS} FROM {table}"
        " WHERE execution_id IN (SELECT value FROM json_each(?))",
        (ids,),
    ).fetchall()
    return {r[0]: r for r in rows}


def _keys(rows: Iterable[Any]) -> list[tuple[int, str, str]]:
    """``(created_at_ms, workflow_id, status)`` of view rows in ``VIEW_COLUMNS`` order."""
    return [(r[4], r[1], r[3]) for r in rows]


async def views_behind(conn: aiosqlite.Connection) -> int:
    """Feed rows past the projector's position: status changes not in the views yet."""
    [(n,)] = await conn.execute_fetchall(
        "SELECT COUNT(*) FROM view_feed WHERE pos > (SELECT pos FROM view_position)"
    )
    return int(n)


# The view's columns, and the index row's last_seq and passive mark as they are now.
_PAGE_COLS = (
    "v.execution_id, v.workflow_id, v.workflow_version, v.status, v.created_at_ms,"
    " v.updated_at_ms, e.last_seq, v.error, e.passive_seq IS e.last_seq,"
    " CASE WHEN e.passive_seq IS e.last_seq THEN e.wake_at_ms END"
)


async def page_executions(
    conn: aiosqlite.Connection,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = execution_where(query, _VIEW, with_status=True)
    more, more_params, order = keyset("execution_id", after, oldest_first, _VIEW)
    clause = " AND ".join(where + more)
    rows = await conn.execute_fetchall(
        f"SELECT {_PAGE_COLS} FROM run_views AS v JOIN executions AS e USING (execution_id)"
        f" {'WHERE ' + clause if clause else ''}{order} LIMIT ?",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in rows]


async def count_executions(conn: aiosqlite.Connection, query: ExecutionQuery) -> dict[str, int]:
    """Per status: whole hours from the counters, the window's ragged ends (and any search
    by id) from the view's rows."""
    if query.id_contains is not None:  # no counter knows ids: the rows it is
        where, params = execution_where(query, _VIEW, with_status=False)
        return await _grouped(conn, "run_views AS v", where, params, "COUNT(*)")
    window = split_window(query.created_from_ms, query.created_before_ms)
    totals: Counter[str] = Counter()
    if window.has_full:
        where, params = _workflow(query)
        for column, op, value in (("hour_ms", ">=", window.full_from),
                                  ("hour_ms", "<", window.full_before)):  # fmt: skip
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        totals.update(await _grouped(conn, "run_counts AS v", where, params, "SUM(n)"))
    for lo, hi in window.edges:
        edge = edge_query(query, lo, hi)
        where, params = execution_where(edge, _VIEW, with_status=False)
        totals.update(await _grouped(conn, "run_views AS v", where, params, "COUNT(*)"))
    return {status: n for status, n in totals.items() if n}


def _workflow(query: ExecutionQuery) -> tuple[list[str], list[Any]]:
    if query.workflow_id is None:
        return [], []
    return ["v.workflow_id = ?"], [query.workflow_id]


async def _grouped(
    conn: aiosqlite.Connection, table: str, where: list[str], params: list[Any], agg: str
) -> dict[str, int]:
    clause = " AND ".join(where)
    rows = await conn.execute_fetchall(
        f"SELECT v.status, {agg} FROM {table} {'WHERE ' + clause if clause else ''}"
        " GROUP BY v.status",
        params,
    )
    return {str(status): int(n) for status, n in rows if n}
