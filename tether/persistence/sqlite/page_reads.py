"""The keyset pages and counts of :mod:`tether.persistence.pages` in SQLite: one range scan
of the ``(created_at_ms, id)`` order per page, whatever page it is.

Example::

    rows = await page_executions(conn, ExecutionQuery(status="paused"), None, 100, False)
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from tether.persistence.contract import ExecutionRow, WorkItemRow
from tether.persistence.page_sql import SQLITE, execution_where, keyset
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
)
from tether.persistence.sqlite.lease_ops import ITEM_COLS
from tether.persistence.sqlite.ops import _EXEC_COLS, _execution


async def page_executions(
    conn: aiosqlite.Connection,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = execution_where(query, SQLITE, with_status=True)
    more, more_params, order = keyset("execution_id", after, oldest_first, SQLITE)
    clause = " AND ".join(where + more)
    rows = await conn.execute_fetchall(
        f"SELECT {_EXEC_COLS} FROM executions {'WHERE ' + clause if clause else ''}{order} LIMIT ?",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in rows]


async def count_executions(conn: aiosqlite.Connection, query: ExecutionQuery) -> dict[str, int]:
    where, params = execution_where(query, SQLITE, with_status=False)
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
    more, more_params, order = keyset("work_item_id", after, False, SQLITE)
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
