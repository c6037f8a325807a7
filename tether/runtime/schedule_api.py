"""``rt.schedules``: list, pause, resume and delete the cron schedules of a runtime.

Schedules are created with ``await rt.schedule(...)`` (it registers and persists the workflow
first); each fire starts one execution with the id ``sched_<schedule id>_<fire ms>``.

Example::

    await rt.schedule("daily-report", cron="0 9 * * *", workflow=wf, timezone="Europe/Paris")
    for row in await rt.schedules.list():
        print(row.schedule_id, row.next_fire_ms, row.paused, row.last_error)
    await rt.schedules.pause("daily-report")
"""

from __future__ import annotations

from typing import Any

from tether.actors import ActorRef
from tether.ir.types import Workflow
from tether.persistence.contract import ScheduleRow
from tether.runtime.cron import (
    CreateSchedule,
    DeleteSchedule,
    ListSchedules,
    PauseSchedule,
    ResumeSchedule,
)


class Schedules:
    """The cron schedules of one runtime (its CronActor answers each call)."""

    def __init__(self, cron: ActorRef) -> None:
        self._cron = cron

    async def create(
        self,
        schedule_id: str,
        cron: str,
        workflow: Workflow,
        input: dict[str, Any],
        timezone: str = "UTC",
        missed: str = "skip",
    ) -> ScheduleRow:
        """What ``rt.schedule`` does once the workflow is registered and the input checked."""
        create = CreateSchedule(
            schedule_id, cron, workflow.workflow_id, workflow.version, input, timezone, missed
        )
        return await self._row(create)

    async def list(self) -> list[ScheduleRow]:
        """Every schedule, by id; ``last_error`` says why a fire started nothing."""
        rows = await self._cron.ask(ListSchedules(), timeout=None)
        assert isinstance(rows, list)
        return rows

    async def pause(self, schedule_id: str) -> ScheduleRow:
        """No fires until resumed. Raises ScheduleNotFound."""
        return await self._row(PauseSchedule(schedule_id))

    async def resume(self, schedule_id: str) -> ScheduleRow:
        """Fire again from the next fire after now (fires missed while paused never run)."""
        return await self._row(ResumeSchedule(schedule_id))

    async def delete(self, schedule_id: str) -> bool:
        """Remove the schedule (its executions stay); False when there was none."""
        return bool(await self._cron.ask(DeleteSchedule(schedule_id), timeout=None))

    async def _row(self, message: CreateSchedule | PauseSchedule | ResumeSchedule) -> ScheduleRow:
        row = await self._cron.ask(message, timeout=None)
        assert isinstance(row, ScheduleRow)
        return row
