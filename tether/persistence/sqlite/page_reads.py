"""The work items' keyset pages and counts of :mod:`tether.persistence.pages` in SQLite: one
range scan of the ``(created_at_ms, id)`` order per page, whatever page it is (executions'
pages and counts read the run views: :mod:`tether.persistence.sqlite.view_ops`).

Example::

    rows = await page_work_items(conn, WorkItemQuery(status="dead"), None, 100)
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from tether.persistence.contract import WorkItemRow
from tether.persistence.page_sql import SQLITE, keyset
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    PagePosition,
    WorkItemQuery,
)
from tether.persistence.sqlite.lease_ops import ITEM_COLS


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
