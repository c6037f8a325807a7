"""SQL on the schedules table, one function each, taking the connection.

Writes run on the writer's connection inside the transaction it owns (jobs of the writer) and
never commit; reads run on a reader connection. ``advance_schedule`` is a compare-and-set in
its WHERE clause, so the table decides which of two advances of the same fire wins.

Example::

    await put_schedule(writer_conn, row)
    await writer_conn.commit()
    won = await advance_schedule(writer_conn, "daily", 1_000, 2_000, at_ms=1_000, last_error=None)
"""

from __future__ import annotations

from typing import Any

from tether.persistence.contract import ScheduleRow
from tether.persistence.postgres.connection import Conn

#: The table's columns in ScheduleRow field order.
SCHEDULE_COLS = (
    "schedule_id, cron, timezone, workflow_id, workflow_version, input, missed, paused,"
    " next_fire_ms, created_at_ms, updated_at_ms, last_error"
)


def _row(r: Any) -> ScheduleRow:
    return ScheduleRow(*r)


_UPSERT = f"""
    INSERT INTO tether_schedules ({SCHEDULE_COLS})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (schedule_id) DO UPDATE SET
        cron = excluded.cron, timezone = excluded.timezone,
        workflow_id = excluded.workflow_id, workflow_version = excluded.workflow_version,
        input = excluded.input, missed = excluded.missed, paused = excluded.paused,
        next_fire_ms = excluded.next_fire_ms, created_at_ms = excluded.created_at_ms,
        updated_at_ms = excluded.updated_at_ms, last_error = excluded.last_error
"""


async def put_schedule(conn: Conn, row: ScheduleRow) -> None:
    """Create or replace (every column) the schedule ``row.schedule_id``."""
    await conn.execute(
        _UPSERT,
        (row.schedule_id, row.cron, row.timezone, row.workflow_id, row.workflow_version,
         row.input, row.missed, row.paused, row.next_fire_ms, row.created_at_ms,
         row.updated_at_ms, row.last_error),
    )  # fmt: skip


async def delete_schedule(conn: Conn, schedule_id: str) -> bool:
    cur = await conn.execute("DELETE FROM tether_schedules WHERE schedule_id = %s", (schedule_id,))
    return cur.rowcount > 0


async def set_schedule_paused(
    conn: Conn, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None
) -> ScheduleRow | None:
    cur = await conn.execute(
        "UPDATE tether_schedules SET paused = %s,"
        " next_fire_ms = coalesce(%s::bigint, next_fire_ms),"
        " updated_at_ms = greatest(updated_at_ms, %s)"
        f" WHERE schedule_id = %s RETURNING {SCHEDULE_COLS}",
        (paused, next_fire_ms, at_ms, schedule_id),
    )
    row = await cur.fetchone()
    return _row(row) if row is not None else None


async def advance_schedule(
    conn: Conn,
    schedule_id: str,
    expected_next_fire_ms: int,
    new_next_fire_ms: int,
    at_ms: int,
    last_error: str | None,
) -> bool:
    """The compare-and-set: True only if the row still had ``expected_next_fire_ms``."""
    cur = await conn.execute(
        "UPDATE tether_schedules SET next_fire_ms = %s, last_error = %s,"
        " updated_at_ms = greatest(updated_at_ms, %s)"
        " WHERE schedule_id = %s AND next_fire_ms = %s",
        (new_next_fire_ms, last_error, at_ms, schedule_id, expected_next_fire_ms),
    )
    return cur.rowcount > 0


async def set_schedule_error(conn: Conn, schedule_id: str, error: str | None, at_ms: int) -> bool:
    cur = await conn.execute(
        "UPDATE tether_schedules SET last_error = %s, updated_at_ms = greatest(updated_at_ms, %s)"
        " WHERE schedule_id = %s",
        (error, at_ms, schedule_id),
    )
    return cur.rowcount > 0


async def get_schedule(conn: Conn, schedule_id: str) -> ScheduleRow | None:
    cur = await conn.execute(
        f"SELECT {SCHEDULE_COLS} FROM tether_schedules WHERE schedule_id = %s", (schedule_id,)
    )
    row = await cur.fetchone()
    return _row(row) if row is not None else None


async def list_schedules(conn: Conn) -> list[ScheduleRow]:
    cur = await conn.execute(f"SELECT {SCHEDULE_COLS} FROM tether_schedules ORDER BY schedule_id")
    return [_row(r) for r in await cur.fetchall()]
