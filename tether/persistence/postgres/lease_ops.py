"""SQL on the work-item table (I5), one function each, taking the connection.

Writes run on the writer's connection inside the transaction it owns and never commit; reads
run on a reader connection. The statements make exactly the changes the pure functions in
``tether.persistence.leases`` specify, and repeat the fence checks in their WHERE clauses, so
the row counts they return tell the writer if its own checks were wrong.

Example::

    rows = await grant(writer_conn, "default", "worker-1", 1_000, 30_000, limit=8, exclude=())
    await writer_conn.commit()
    dead = await list_work_items(reader_conn, "dead", None, None, 100, 0)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from tether.persistence.contract import Settle, WorkItemRow
from tether.persistence.leases import ItemState, grant_order, list_order
from tether.persistence.postgres.connection import Conn

_Row = tuple[Any, ...]

#: The table's columns in WorkItemRow field order, so ``WorkItemRow(*row)`` builds a row.
ITEM_COLS = (
    "work_item_id, execution_id, node_id, queue, attempt, dispatch, payload, status,"
    " not_before_ms, lease_owner, lease_expires_ms, fence, parks, last_error,"
    " created_at_ms, updated_at_ms"
)

# ---------------------------------------------------------------------------------- writes


def insert_params(row: WorkItemRow) -> _Row:
    """The INSERT parameters of a work item, in ITEM_COLS order."""
    return (row.work_item_id, row.execution_id, row.node_id, row.queue, row.attempt,
            row.dispatch, row.payload, row.status, row.not_before_ms, row.lease_owner,
            row.lease_expires_ms, row.fence, row.parks, row.last_error, row.created_at_ms,
            row.updated_at_ms)  # fmt: skip


def settle_params(settle: Settle) -> dict[str, Any]:
    return {"status": settle.status, "not_before": settle.not_before_ms,
            "error": settle.error, "at": settle.at_ms, "id": settle.work_item_id,
            "fence": settle.fence}  # fmt: skip


# An id that exists already is left alone: recovery re-derives the items of a turn (I3).
_INSERT = (
    f"INSERT INTO tether_work_items ({ITEM_COLS}) VALUES ({', '.join(['%s'] * 16)})"
    " ON CONFLICT (work_item_id) DO NOTHING"
)

_SETTLE = """
    UPDATE tether_work_items SET
        status = %(status)s,
        lease_owner = NULL,
        lease_expires_ms = NULL,
        not_before_ms = CASE WHEN %(status)s = 'parked' THEN %(not_before)s
                             ELSE not_before_ms END,
        parks = parks + CASE WHEN %(status)s = 'parked' THEN 1 ELSE 0 END,
        last_error = coalesce(%(error)s, last_error),
        updated_at_ms = greatest(updated_at_ms, %(at)s)
    WHERE work_item_id = %(id)s
      AND CASE WHEN %(fence)s::bigint IS NULL THEN status IN ('pending', 'leased', 'parked')
               ELSE status = 'leased' AND fence = %(fence)s END
"""

# SKIP LOCKED: a grant never waits for a row another transaction is settling. The casts:
# psycopg sends a small int as smallint, and smallint + smallint overflows at 32767.
_GRANT = f"""
    UPDATE tether_work_items SET
        status = 'leased', lease_owner = %(owner)s,
        lease_expires_ms = %(now)s::bigint + %(ttl)s::bigint,
        fence = fence + 1, updated_at_ms = greatest(updated_at_ms, %(now)s)
    WHERE work_item_id IN (
        SELECT work_item_id FROM tether_work_items
        WHERE queue = %(queue)s AND status IN ('pending', 'parked')
          AND not_before_ms <= %(now)s AND work_item_id <> ALL(%(exclude)s::text[])
        ORDER BY not_before_ms, created_at_ms, work_item_id LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED)
    RETURNING {ITEM_COLS}
"""

# Engines sharing the schema: an engine grants only items of the executions it owns, so a
# worker's report reaches the engine that acts for the execution (its actor settles it).
_GRANT_OWNED = _GRANT.replace(
    "SELECT work_item_id FROM tether_work_items\n        WHERE queue",
    "SELECT work_item_id FROM tether_work_items AS w\n        WHERE EXISTS (SELECT 1 FROM"
    " tether_owners AS o WHERE o.execution_id = w.execution_id AND o.engine_id = %(engine)s)"
    " AND queue",
).replace("FOR UPDATE SKIP LOCKED", "FOR UPDATE OF w SKIP LOCKED")
assert _GRANT_OWNED != _GRANT


async def item_states(conn: Conn, work_item_ids: Collection[str]) -> dict[str, ItemState]:
    """Status and fence of the ids that exist (absent ids are missing from the result)."""
    cur = await conn.execute(
        "SELECT work_item_id, status, fence FROM tether_work_items"
        " WHERE work_item_id = ANY(%s::text[])",
        (list(work_item_ids),),
    )
    return {str(w): ItemState(str(s), int(f)) for w, s, f in await cur.fetchall()}


async def insert_work_items(conn: Conn, rows: Sequence[_Row]) -> int:
    """Insert items (``insert_params`` rows); existing ids are left as they are. Returns how
    many were inserted."""
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(_INSERT, rows)
        return cur.rowcount


async def apply_settles(conn: Conn, rows: Sequence[dict[str, Any]]) -> int:
    """Apply settles (``settle_params`` rows) in order; return how many rows changed (fewer
    than ``len(rows)``: a fence check failed in SQL, and the caller rolls back)."""
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(_SETTLE, rows)
        return cur.rowcount


async def apply_heartbeats(conn: Conn, rows: Sequence[_Row]) -> int:
    """Extend leases: ``(expires_ms, now_ms, work_item_id, fence)`` rows. Returns how many
    rows changed."""
    if not rows:
        return 0
    async with conn.cursor() as cur:
        await cur.executemany(
            "UPDATE tether_work_items SET lease_expires_ms = %s,"
            " updated_at_ms = greatest(updated_at_ms, %s)"
            " WHERE work_item_id = %s AND status = 'leased' AND fence = %s",
            rows,
        )
        return cur.rowcount


async def grant(
    conn: Conn,
    queue: str,
    owner: str,
    now_ms: int,
    ttl_ms: int,
    limit: int,
    exclude: Collection[str],
    engine: str | None = None,
) -> list[WorkItemRow]:
    """Lease up to ``limit`` grantable rows of ``queue``, none of ``exclude`` (with
    ``engine``: of the executions that engine owns only); the granted rows, oldest first."""
    cur = await conn.execute(
        _GRANT if engine is None else _GRANT_OWNED,
        {"owner": owner, "now": now_ms, "ttl": ttl_ms, "queue": queue, "limit": limit,
         "exclude": list(exclude), "engine": engine},
    )  # fmt: skip
    granted = [WorkItemRow(*r) for r in await cur.fetchall()]
    granted.sort(key=grant_order)
    return granted


async def release_leases(conn: Conn, owner: str, now_ms: int) -> list[WorkItemRow]:
    """Leased rows of ``owner`` back to pending, fence kept (``leases.released``)."""
    cur = await conn.execute(
        "UPDATE tether_work_items SET status = 'pending', lease_owner = NULL,"
        " lease_expires_ms = NULL, updated_at_ms = greatest(updated_at_ms, %s)"
        f" WHERE status = 'leased' AND lease_owner = %s RETURNING {ITEM_COLS}",
        (now_ms, owner),
    )
    return sorted((WorkItemRow(*r) for r in await cur.fetchall()), key=list_order)


# ----------------------------------------------------------------------------------- reads


async def get_work_item(conn: Conn, work_item_id: str) -> WorkItemRow | None:
    cur = await conn.execute(
        f"SELECT {ITEM_COLS} FROM tether_work_items WHERE work_item_id = %s", (work_item_id,)
    )
    row = await cur.fetchone()
    return WorkItemRow(*row) if row is not None else None


async def expired_leases(conn: Conn, now_ms: int, limit: int) -> list[WorkItemRow]:
    """Leased rows whose lease ran out by ``now_ms``, earliest expiry first."""
    cur = await conn.execute(
        f"SELECT {ITEM_COLS} FROM tether_work_items"
        " WHERE status = 'leased' AND lease_expires_ms <= %s"
        " ORDER BY lease_expires_ms, work_item_id LIMIT %s",
        (now_ms, limit if limit >= 0 else None),
    )
    return [WorkItemRow(*r) for r in await cur.fetchall()]


async def open_work_items(conn: Conn, queue: str | None) -> list[WorkItemRow]:
    """Pending, parked and leased rows, oldest first (the order recovery looks at them)."""
    clause, params = ("AND queue = %s", (queue,)) if queue is not None else ("", ())
    cur = await conn.execute(
        f"SELECT {ITEM_COLS} FROM tether_work_items"
        f" WHERE status IN ('pending', 'leased', 'parked') {clause}"
        " ORDER BY created_at_ms, work_item_id",
        params,
    )
    return [WorkItemRow(*r) for r in await cur.fetchall()]


async def list_work_items(
    conn: Conn,
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
            where.append(f"{column} = %s")
            params.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cur = await conn.execute(
        f"SELECT {ITEM_COLS} FROM tether_work_items {clause}"
        " ORDER BY created_at_ms DESC, work_item_id DESC LIMIT %s OFFSET %s",
        (*params, limit if limit >= 0 else None, max(offset, 0)),
    )
    return [WorkItemRow(*r) for r in await cur.fetchall()]
