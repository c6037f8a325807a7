"""The keyset pages and counts of :mod:`tether.persistence.pages` on Postgres: one range scan
of the ``(created_at_ms, id)`` order per page (ids sort by code point: ``COLLATE "C"``).

Example::

    rows = await page_executions(conn, ExecutionQuery(status="paused"), None, 100, False)
"""

from __future__ import annotations

from typing import Any

from tether.persistence.contract import ExecutionRow, WorkItemRow
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
    like_pattern,
)
from tether.persistence.postgres.connection import Conn
from tether.persistence.postgres.execution_reads import _EXEC_COLS, _execution
from tether.persistence.postgres.lease_ops import ITEM_COLS


def _execution_where(query: ExecutionQuery, *, with_status: bool) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if with_status and query.status is not None:
        where.append("e.status = %s")
        params.append(query.status)
    if query.workflow_id is not None:
        where.append("e.workflow_id = %s")
        params.append(query.workflow_id)
    if query.id_contains is not None:
        # ILIKE under COLLATE "C" folds ASCII letters only, as SQLite's LIKE does.
        where.append("e.execution_id ILIKE %s ESCAPE '\\'")
        params.append(like_pattern(query.id_contains))
    if query.created_from_ms is not None:
        where.append("e.created_at_ms >= %s")
        params.append(query.created_from_ms)
    if query.created_before_ms is not None:
        where.append("e.created_at_ms < %s")
        params.append(query.created_before_ms)
    return where, params


def _keyset(
    id_column: str, after: PagePosition | None, oldest_first: bool, table: str
) -> tuple[list[str], list[Any], str]:
    direction = "ASC" if oldest_first else "DESC"
    order = f" ORDER BY {table}created_at_ms {direction}, {table}{id_column} {direction}"
    if after is None:
        return [], [], order
    compare = ">" if oldest_first else "<"
    where = f"({table}created_at_ms, {table}{id_column}) {compare} (%s, %s)"
    return [where], [after.created_at_ms, after.id], order


async def page_executions(
    conn: Conn,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = _execution_where(query, with_status=True)
    more, more_params, order = _keyset("execution_id", after, oldest_first, "e.")
    clause = " AND ".join(where + more)
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS} FROM tether_executions AS e"
        f" {'WHERE ' + clause if clause else ''}{order} LIMIT %s",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in await cur.fetchall()]


async def count_executions(conn: Conn, query: ExecutionQuery) -> dict[str, int]:
    where, params = _execution_where(query, with_status=False)
    clause = " AND ".join(where)
    cur = await conn.execute(
        f"SELECT e.status, COUNT(*) FROM tether_executions AS e"
        f" {'WHERE ' + clause if clause else ''} GROUP BY e.status",
        params,
    )
    return {str(status): int(n) for status, n in await cur.fetchall()}


async def page_work_items(
    conn: Conn, query: WorkItemQuery, after: PagePosition | None, limit: int
) -> list[WorkItemRow]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", query.status), ("queue", query.queue), ("execution_id", query.execution_id)
    ):  # fmt: skip
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    more, more_params, order = _keyset("work_item_id", after, False, "")
    clause = " AND ".join(where + more)
    cur = await conn.execute(
        f"SELECT {ITEM_COLS} FROM tether_work_items {'WHERE ' + clause if clause else ''}"
        f"{order} LIMIT %s",
        (*params, *more_params, limit),
    )
    return [WorkItemRow(*r) for r in await cur.fetchall()]


async def count_work_items(conn: Conn) -> dict[tuple[str, str], int]:
    cur = await conn.execute(
        "SELECT queue, status, COUNT(*) FROM tether_work_items"
        " WHERE status = ANY(%s::text[]) GROUP BY queue, status",
        (list(QUEUE_DEPTH_STATUSES),),
    )
    return {(str(queue), str(status)): int(n) for queue, status, n in await cur.fetchall()}
