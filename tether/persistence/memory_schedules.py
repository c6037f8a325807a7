"""Cron schedules in a ``MemoryStore``: create, replace, pause, advance (a compare-and-set)
and read them.

They stand apart from the journal (:mod:`tether.persistence.memory`) because a schedule is a
row of its own that no turn touches: the engine's cron actor reads and moves it, and each
fire it starts is an ordinary execution.

Example::

    store = MemoryStore()
    await store.open()
    await store.put_schedule(row)
    assert await store.advance_schedule(row.schedule_id, row.next_fire_ms, following_ms, now_ms)
"""

from __future__ import annotations

import msgspec
from anyio.lowlevel import checkpoint

from tether.persistence.checks import check_schedule
from tether.persistence.contract import ScheduleRow
from tether.persistence.memory_tables import MemoryTables


class MemorySchedules(MemoryTables):
    """The schedule methods of the Store contract, on ``MemoryTables``."""

    async def put_schedule(self, row: ScheduleRow) -> None:
        check_schedule(row)
        self._check_writable()
        await checkpoint()
        self._check_writable()
        self._schedules[row.schedule_id] = row

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        self._check_open()
        return self._schedules.get(schedule_id)

    async def list_schedules(self) -> list[ScheduleRow]:
        self._check_open()
        return [self._schedules[k] for k in sorted(self._schedules)]

    async def delete_schedule(self, schedule_id: str) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        return self._schedules.pop(schedule_id, None) is not None

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None = None
    ) -> ScheduleRow | None:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None:
            return None
        new = msgspec.structs.replace(
            row,
            paused=paused,
            next_fire_ms=row.next_fire_ms if next_fire_ms is None else next_fire_ms,
            updated_at_ms=max(row.updated_at_ms, at_ms),
        )
        self._schedules[schedule_id] = new
        return new

    async def advance_schedule(
        self,
        schedule_id: str,
        expected_next_fire_ms: int,
        new_next_fire_ms: int,
        at_ms: int,
        last_error: str | None = None,
    ) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None or row.next_fire_ms != expected_next_fire_ms:
            return False
        self._schedules[schedule_id] = msgspec.structs.replace(
            row,
            next_fire_ms=new_next_fire_ms,
            last_error=last_error,
            updated_at_ms=max(row.updated_at_ms, at_ms),
        )
        return True

    async def set_schedule_error(self, schedule_id: str, error: str | None, at_ms: int) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None:
            return False
        self._schedules[schedule_id] = msgspec.structs.replace(
            row, last_error=error, updated_at_ms=max(row.updated_at_ms, at_ms)
        )
        return True
