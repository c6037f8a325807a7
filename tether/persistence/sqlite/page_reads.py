"""The keyset pages and counts of :mod:`tether.persistence.pages` in SQLite: one range scan
of the ``(created_at_ms, id)`` order per page, whatever page it is.

Example::

    rows = await page_executions(conn, ExecutionQuery(status="paused"), None, 100, False)
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from tether.persistence.contract import ExecutionRow, WorkItemRow
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
    like_pattern,
)
from tether.persistence.sqlite.lease_ops import ITEM_COLS
from tether.persistence.sqlite.ops import _EXEC_COLS, _execution


def _execution_where(query: ExecutionQuery, *, with_status: bool) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if with_status and query.status is not None:
        where.append("status = ?")
        params.append(query.status)
    if query.workflow_id is not None:
        where.append("workflow_id = ?")
        params.append(query.workflow_id)
    if query.id_contains is not None:
        # SQLite's LIKE ignores the case of ASCII letters only, as the contract says.
        where.append("execution_id LIKE ? ESCAPE '\\'")
        params.append(like_pattern(query.id_contains))
    if query.created_from_ms is not None:
        where.append("created_at_ms >= ?")
        params.append(query.created_from_ms)
    if query.created_before_ms is not None:
        where.append("created_at_ms < ?")
        params.append(query.created_before_ms)
    return where, params


def _keyset(
    id_column: str, after: PagePosition | None, oldest_first: bool
) -> tuple[list[str], list[Any], str]:
    direction = "ASC" if oldest_first else "DESC"
    order = f" ORDER BY created_at_ms {direction}, {id_column} {direction}"
    if after is None:
        return [], [], order
    compare = ">" if oldest_first else "<"
    where = f"(created_at_ms, {id_column}) {compare} (?, ?)"
    return [where], [after.created_at_ms, after.id], order


async def page_executions(
    conn: aiosqlite.Connection,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = _execution_where(query, with_status=True)
    more, more_params, order = _keyset("execution_id", after, oldest_first)
    clause = " AND ".join(where + more)
    rows = await conn.execute_fetchall(
        f"SELECT {_EXEC_COLS} FROM executions {'WHERE ' + clause if clause else ''}{order} LIMIT ?",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in rows]


async def count_executions(conn: aiosqlite.Connection, query: ExecutionQuery) -> dict[str, int]:
    where, params = _execution_where(query, with_status=False)
    clause = " AND ".join(where)
    rows = await conn.execute_fetchall(
        f"SELECT status, COUNT(*) FROM executions {'WHERE ' + clause if clause else ''}"
        " GROUP BY status",
        params,
    )
    return {str(status): int(n) for status, n in rows}


async def page_work_items(
    conn: aiosqlite.Connection, query: WorkItemQuery, after: PagePosition | None, limit: int
) -> list[WorkItemRow]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", query.status), ("queue", query.queue), ("execution_id", query.execution_id)
    ):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    more, more_params, order = _keyset("work_item_id", after, False)
    clause = " AND ".join(where + more)
    rows = await conn.execute_fetchall(
        f"SELECT {ITEM_COLS} FROM work_items {'WHERE ' + clause if clause else ''}{order} LIMIT ?",
        (*params, *more_params, limit),
    )
    return [WorkItemRow(*r) for r in rows]


async def count_work_items(conn: aiosqlite.Connection) -> dict[tuple[str, str], int]:
    marks = ", ".join("?" for _ in QUEUE_DEPTH_STATUSES)
    rows = await conn.execute_fetchall(
        f"SELECT queue, status, COUNT(*) FROM work_items WHERE status IN ({marks})"
        " GROUP BY queue, status",
        QUEUE_DEPTH_STATUSES,
    )
    return {(str(queue), str(status)): int(n) for queue, status, n in rows}
