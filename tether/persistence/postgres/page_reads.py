"""The keyset pages and counts of :mod:`tether.persistence.pages` on Postgres: one range scan
of the ``(created_at_ms, id)`` order per page (ids sort by code point: ``COLLATE "C"``).

Example::

    rows = await page_executions(conn, ExecutionQuery(status="paused"), None, 100, False)
"""

from __future__ import annotations

from typing import Any

from tether.persistence.contract import ExecutionRow, WorkItemRow
from tether.persistence.page_sql import POSTGRES, Dialect, execution_where, keyset
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
)
from tether.persistence.postgres.connection import Conn
from tether.persistence.postgres.execution_reads import _EXEC_COLS, _execution
from tether.persistence.postgres.lease_ops import ITEM_COLS

#: The work-items table is read without an alias.
_WORK_ITEMS = Dialect("%s", "", "ILIKE")


async def page_executions(
    conn: Conn,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = execution_where(query, POSTGRES, with_status=True)
    more, more_params, order = keyset("execution_id", after, oldest_first, POSTGRES)
    clause = " AND ".join(where + more)
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS} FROM tether_executions AS e"
        f" {'WHERE ' + clause if clause else ''}{order} LIMIT %s",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in await cur.fetchall()]


async def count_executions(conn: Conn, query: ExecutionQuery) -> dict[str, int]:
    where, params = execution_where(query, POSTGRES, with_status=False)
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
    more, more_params, order = keyset("work_item_id", after, False, _WORK_ITEMS)
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
