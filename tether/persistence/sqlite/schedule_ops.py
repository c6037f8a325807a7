"""SQL operations on the schedules table, one function each, taking the connection.

Write functions run on the writer's connection inside the transaction it owns (submitted as a
job to the group-commit writer) and never commit; read functions run on a reader connection.
``advance_schedule`` is a compare-and-set in its WHERE clause, so the table decides which of two
advances of the same fire wins, whatever either engine believed.

Example::

    await put_schedule(writer_conn, row)
    await writer_conn.commit()
    won = await advance_schedule(writer_conn, "daily", 1_000, 2_000, at_ms=1_000, last_error=None)
    rows = await list_schedules(reader_conn)
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from tether.persistence.contract import ScheduleRow

#: The table's columns in ScheduleRow field order.
SCHEDULE_COLS = (
    "schedule_id, cron, timezone, workflow_id, workflow_version, input, missed, paused,"
    " next_fire_ms, created_at_ms, updated_at_ms, last_error"
)


def _row(r: Any) -> ScheduleRow:
    # SQLite hands back 0/1 for the flag and may hand back a memoryview-like blob: normalise,
    # so rows from both backends compare equal.
    return ScheduleRow(
        schedule_id=r[0], cron=r[1], timezone=r[2], workflow_id=r[3], workflow_version=r[4],
        input=bytes(r[5]), missed=r[6], paused=bool(r[7]), next_fire_ms=int(r[8]),
        created_at_ms=int(r[9]), updated_at_ms=int(r[10]), last_error=r[11],
    )  # fmt: skip


# ---------------------------------------------------------------------------------- writes

_UPSERT = f"""
    INSERT INTO schedules ({SCHEDULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (schedule_id) DO UPDATE SET
        cron = excluded.cron, timezone = excluded.timezone,
        workflow_id = excluded.workflow_id, workflow_version = excluded.workflow_version,
        input = excluded.input, missed = excluded.missed, paused = excluded.paused,
        next_fire_ms = excluded.next_fire_ms, created_at_ms = excluded.created_at_ms,
        updated_at_ms = excluded.updated_at_ms, last_error = excluded.last_error
"""


async def put_schedule(conn: aiosqlite.Connection, row: ScheduleRow) -> None:
    """Create or replace (every column) the schedule ``row.schedule_id``."""
    await conn.execute(
        _UPSERT,
        (row.schedule_id, row.cron, row.timezone, row.workflow_id, row.workflow_version,
         row.input, row.missed, int(row.paused), row.next_fire_ms, row.created_at_ms,
         row.updated_at_ms, row.last_error),
    )  # fmt: skip


async def delete_schedule(conn: aiosqlite.Connection, schedule_id: str) -> bool:
    rows = await conn.execute_fetchall(
        "DELETE FROM schedules WHERE schedule_id = ? RETURNING 1", (schedule_id,)
    )
    return bool(list(rows))


async def set_schedule_paused(
    conn: aiosqlite.Connection,
    schedule_id: str,
    paused: bool,
    at_ms: int,
    next_fire_ms: int | None,
) -> ScheduleRow | None:
    rows = list(
        await conn.execute_fetchall(
            "UPDATE schedules SET paused = ?1, next_fire_ms = coalesce(?2, next_fire_ms),"
            " updated_at_ms = max(updated_at_ms, ?3)"
            f" WHERE schedule_id = ?4 RETURNING {SCHEDULE_COLS}",
            (int(paused), next_fire_ms, at_ms, schedule_id),
        )
    )
    return _row(rows[0]) if rows else None


async def advance_schedule(
    conn: aiosqlite.Connection,
    schedule_id: str,
    expected_next_fire_ms: int,
    new_next_fire_ms: int,
    at_ms: int,
    last_error: str | None,
) -> bool:
    """The compare-and-set: True only if the row still had ``expected_next_fire_ms``."""
    rows = await conn.execute_fetchall(
        "UPDATE schedules SET next_fire_ms = ?1, last_error = ?2,"
        " updated_at_ms = max(updated_at_ms, ?3)"
        " WHERE schedule_id = ?4 AND next_fire_ms = ?5 RETURNING 1",
        (new_next_fire_ms, last_error, at_ms, schedule_id, expected_next_fire_ms),
    )
    return bool(list(rows))


async def set_schedule_error(
    conn: aiosqlite.Connection, schedule_id: str, error: str | None, at_ms: int
) -> bool:
    rows = await conn.execute_fetchall(
        "UPDATE schedules SET last_error = ?1, updated_at_ms = max(updated_at_ms, ?2)"
        " WHERE schedule_id = ?3 RETURNING 1",
        (error, at_ms, schedule_id),
    )
    return bool(list(rows))


# ----------------------------------------------------------------------------------- reads


async def get_schedule(conn: aiosqlite.Connection, schedule_id: str) -> ScheduleRow | None:
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE schedule_id = ?", (schedule_id,)
        )
    )
    return _row(rows[0]) if rows else None


async def list_schedules(conn: aiosqlite.Connection) -> list[ScheduleRow]:
    rows = await conn.execute_fetchall(
        f"SELECT {SCHEDULE_COLS} FROM schedules ORDER BY schedule_id"
    )
    return [_row(r) for r in rows]
