"""SQL operations on the work-item table (I5), one function each, taking the connection.

Write functions run on the writer's connection inside the transaction it owns and never
commit; read functions run on a reader connection. Each costs a constant number of awaits,
never one per row. The statements make exactly the changes the pure functions in
``tether.persistence.leases`` specify, and repeat the fence checks in their WHERE clauses so
the table stays right even if the writer's in-memory copy were wrong (the row counts they
return let the writer notice).

Example::

    rows = await grant(writer_conn, "default", "worker-1", now_ms=1_000, ttl_ms=30_000, limit=8)
    await writer_conn.commit()
    dead = await list_work_items(reader_conn, "dead", None, None, 100, 0)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import aiosqlite

from tether.persistence.contract import Settle, WorkItemRow
from tether.persistence.leases import ItemState, grant_order, list_order
from tether.persistence.sqlite.blobs import blob

_Row = tuple[Any, ...]

#: The table's columns in WorkItemRow field order, so ``WorkItemRow(*row)`` builds a row.
ITEM_COLS = (
    "work_item_id, execution_id, node_id, queue, attempt, dispatch, payload, status,"
    " not_before_ms, lease_owner, lease_expires_ms, fence, parks, last_error,"
    " created_at_ms, updated_at_ms"
)

# ---------------------------------------------------------------------------------- writes


def insert_params(row: WorkItemRow) -> _Row:
    """The INSERT parameters of a new work item (built by the appender, off the writer)."""
    return (row.work_item_id, row.execution_id, row.node_id, row.queue, row.attempt,
            row.dispatch, blob(row.payload), row.not_before_ms, row.fence, row.parks,
            row.last_error, row.created_at_ms, row.updated_at_ms, row.status, row.lease_owner,
            row.lease_expires_ms)  # fmt: skip


def settle_params(settle: Settle) -> _Row:
    return (settle.status, settle.not_before_ms, settle.error, settle.at_ms,
            settle.work_item_id, settle.fence)  # fmt: skip


# An id that exists already is left alone: recovery re-derives the items of a turn (I3).
_INSERT = f"""
    INSERT INTO work_items ({ITEM_COLS})
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?14, ?8, ?15, ?16, ?9, ?10, ?11, ?12, ?13)
    ON CONFLICT (work_item_id) DO NOTHING
"""

_SETTLE = """
    UPDATE work_items SET
        status = ?1,
        lease_owner = NULL,
        lease_expires_ms = NULL,
        not_before_ms = CASE WHEN ?1 = 'parked' THEN ?2 ELSE not_before_ms END,
        parks = parks + (?1 = 'parked'),
        last_error = coalesce(?3, last_error),
        updated_at_ms = max(updated_at_ms, ?4)
    WHERE work_item_id = ?5
      AND CASE WHEN ?6 IS NULL
               THEN status = 'pending' OR status = 'leased' OR status = 'parked'
               ELSE status = 'leased' AND fence = ?6 END
"""

_HEARTBEAT = """
    UPDATE work_items SET lease_expires_ms = ?1, updated_at_ms = max(updated_at_ms, ?2)
    WHERE work_item_id = ?3 AND status = 'leased' AND fence = ?4
"""


def _grant_sql(skip: str = "") -> str:
    # The subquery walks the partial index work_items_grantable in grant order and stops at
    # the limit; RETURNING hands back the granted rows in the same await (in no order).
    return f"""
    UPDATE work_items SET
        status = 'leased', lease_owner = ?1, lease_expires_ms = ?2 + ?3, fence = fence + 1,
        updated_at_ms = max(updated_at_ms, ?2)
    WHERE work_item_id IN (
        SELECT work_item_id FROM work_items
        WHERE queue = ?4 AND status IN ('pending', 'parked') AND not_before_ms <= ?2{skip}
        ORDER BY not_before_ms, created_at_ms, work_item_id LIMIT ?5)
    RETURNING {ITEM_COLS}
"""


_GRANT = _grant_sql()
#: The same grant skipping the ids in the JSON list ?6 (items the worker declined).
_GRANT_EXCLUDING = _grant_sql(" AND work_item_id NOT IN (SELECT value FROM json_each(?6))")


async def item_states(
    conn: aiosqlite.Connection, work_item_ids: Collection[str]
) -> dict[str, ItemState]:
    """Status and fence of the ids that exist (absent ids are missing from the result).

    The ids go in as one JSON parameter: any number of them costs one await.
    """
    rows = await conn.execute_fetchall(
        "SELECT w.work_item_id, w.status, w.fence FROM json_each(?) AS j"
        " JOIN work_items AS w ON w.work_item_id = j.value",
        (json.dumps(list(work_item_ids)),),
    )
    return {str(wid): ItemState(str(status), int(fence)) for wid, status, fence in rows}


async def insert_work_items(conn: aiosqlite.Connection, rows: Sequence[_Row]) -> int:
    """Insert new items (``insert_params`` rows); existing ids are left as they are. Returns
    how many were inserted."""
    cursor = await conn.executemany(_INSERT, rows)
    return cursor.rowcount


async def grant(
    conn: aiosqlite.Connection,
    queue: str,
    owner: str,
    now_ms: int,
    ttl_ms: int,
    limit: int,
    exclude: Collection[str] = (),
) -> list[WorkItemRow]:
    """Lease up to ``limit`` grantable rows of ``queue``, none of ``exclude``; the granted
    rows, oldest first."""
    sql, params = _grant_statement(queue, owner, now_ms, ttl_ms, limit, exclude)
    return _granted(await conn.execute_fetchall(sql, params))


def _grant_statement(
    queue: str, owner: str, now_ms: int, ttl_ms: int, limit: int, exclude: Collection[str]
) -> tuple[str, tuple[Any, ...]]:
    if exclude:  # rare (a worker declined items): the common grant keeps its plain statement
        return _GRANT_EXCLUDING, (owner, now_ms, ttl_ms, queue, limit, json.dumps(list(exclude)))
    return _GRANT, (owner, now_ms, ttl_ms, queue, limit)


def _granted(rows: Iterable[Any]) -> list[WorkItemRow]:
    granted = [WorkItemRow(*r) for r in rows]
    granted.sort(key=grant_order)
    return granted


# --- the same writes on the connection's own thread (the writer's batch: one hop for all) ---


def insert_work_items_raw(raw: sqlite3.Connection, rows: Sequence[_Row]) -> int:
    """``insert_work_items`` on the connection's thread (``in_connection_thread``)."""
    return raw.executemany(_INSERT, rows).rowcount


def apply_settles_raw(raw: sqlite3.Connection, rows: Sequence[_Row]) -> int:
    """Settle items (rows from ``settle_params``); how many rows changed (fewer: a fence
    check failed in SQL). On the connection's thread."""
    return raw.executemany(_SETTLE, rows).rowcount


def apply_heartbeats_raw(raw: sqlite3.Connection, rows: Sequence[_Row]) -> int:
    """Extend leases; rows are ``(expires_ms, now_ms, work_item_id, fence)``; how many rows
    changed. On the connection's thread."""
    return raw.executemany(_HEARTBEAT, rows).rowcount


def grant_raw(
    raw: sqlite3.Connection,
    queue: str,
    owner: str,
    now_ms: int,
    ttl_ms: int,
    limit: int,
    exclude: Collection[str] = (),
) -> list[WorkItemRow]:
    """``grant`` on the connection's thread."""
    sql, params = _grant_statement(queue, owner, now_ms, ttl_ms, limit, exclude)
    return _granted(raw.execute(sql, params).fetchall())


async def release_leases(conn: aiosqlite.Connection, owner: str, now_ms: int) -> list[WorkItemRow]:
    """Leased rows of ``owner`` back to pending, fence kept (``leases.released``)."""
    rows = await conn.execute_fetchall(
        "UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL,"
        " updated_at_ms = max(updated_at_ms, ?1)"
        f" WHERE status = 'leased' AND lease_owner = ?2 RETURNING {ITEM_COLS}",
        (now_ms, owner),
    )
    return sorted((WorkItemRow(*r) for r in rows), key=list_order)


# ----------------------------------------------------------------------------------- reads


async def get_work_item(conn: aiosqlite.Connection, work_item_id: str) -> WorkItemRow | None:
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {ITEM_COLS} FROM work_items WHERE work_item_id = ?", (work_item_id,)
        )
    )
    return WorkItemRow(*rows[0]) if rows else None


async def expired_leases(conn: aiosqlite.Connection, now_ms: int, limit: int) -> list[WorkItemRow]:
    """Leased rows whose lease ran out by ``now_ms``, earliest expiry first."""
    rows = await conn.execute_fetchall(
        f"SELECT {ITEM_COLS} FROM work_items"
        " WHERE status = 'leased' AND lease_expires_ms <= ?"
        " ORDER BY lease_expires_ms, work_item_id LIMIT ?",
        (now_ms, limit),
    )
    return [WorkItemRow(*r) for r in rows]


async def open_work_items(conn: aiosqlite.Connection, queue: str | None) -> list[WorkItemRow]:
    """Pending, parked and leased rows, oldest first (the order recovery looks at them)."""
    clause, params = ("AND queue = ?", (queue,)) if queue is not None else ("", ())
    rows = await conn.execute_fetchall(
        f"SELECT {ITEM_COLS} FROM work_items"
        f" WHERE status IN ('pending', 'leased', 'parked') {clause}"
        " ORDER BY created_at_ms, work_item_id",
        params,
    )
    return [WorkItemRow(*r) for r in rows]


async def list_work_items(
    conn: aiosqlite.Connection,
    status: str | None,
    execution_id: str | None,
    queue: str | None,
    limit: int,
    offset: int,
) -> list[WorkItemRow]:
    """Newest first; ties broken by id so paging is stable."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("status", status), ("execution_id", execution_id), ("queue", queue)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await conn.execute_fetchall(
        f"SELECT {ITEM_COLS} FROM work_items {clause}"
        " ORDER BY created_at_ms DESC, work_item_id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [WorkItemRow(*r) for r in rows]
