"""The work items' keyset pages and counts of :mod:`tether.persistence.pages` on Postgres:
one range scan of the ``(created_at_ms, id)`` order per page (ids sort by code point:
``COLLATE "C"``); executions' pages and counts read the run views
(:mod:`tether.persistence.postgres.view_ops`).

Example::

    rows = await page_work_items(conn, WorkItemQuery(status="dead"), None, 100)
"""

from __future__ import annotations

from typing import Any

from tether.persistence.contract import WorkItemRow
from tether.persistence.page_sql import Dialect, keyset
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    PagePosition,
    WorkItemQuery,
)
from tether.persistence.postgres.connection import Conn
from tether.persistence.postgres.lease_ops import ITEM_COLS

#: The work-items table is read without an alias.
_WORK_ITEMS = Dialect("%s", "", "ILIKE")


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
