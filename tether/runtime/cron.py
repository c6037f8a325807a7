"""CronActor: starts one execution per fire of each durable cron schedule.

Schedules live in the store (``schedules`` table); this actor keeps them in memory, sleeps on
the injected clock until the earliest next fire, and for each due schedule starts the fire's
execution under the id ``sched_<schedule id>_<fire ms>`` and then moves the schedule on with a
compare-and-set (``advance_schedule``). The runtime's ``start`` is idempotent by execution id,
so a crash between the start and the advance, a restart, or a second engine on the same file
starts that fire again under the same id, which is a no-op: one execution per fire (I3).

Fires missed while no engine ran (more than ``late_after_ms`` late) follow the schedule's
policy: ``skip`` starts none of them, ``run_once`` starts the latest one once; either way the
schedule then moves on to the first fire in the future. A fire whose start is refused for good
(the workflow is no longer registered, its input no longer fits: any
:class:`~tether.errors.TetherError`) is recorded in the schedule's ``last_error``, logged,
and passed over; the schedule stays, fires again at its next time, and clears the error once a
fire starts. Any other failure (storage trouble, shutdown) retries the same fire after
``retry_after_ms``, never in a tight loop.

Changes go through this actor (ask-style messages, each answered with the stored row), so it
re-arms at once. See :mod:`tether.runtime.schedules` for fire times across DST changes.

Example (what the runtime does)::

    cron = await system.spawn(lambda: CronActor(store, clock, start_fire, tg), name="tether.cron")
    row = await cron.ask(CreateSchedule("daily-report", "0 9 * * *", "report", "1",
                                        timezone="Europe/Paris"))
    await cron.ask(PauseSchedule("daily-report"))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, NamedTuple

import anyio
import anyio.abc
import msgspec

from tether.actors import Actor, MailboxFull
from tether.clock import Clock
from tether.errors import ScheduleNotFound, TetherError
from tether.persistence.contract import ScheduleRow, StorageError, Store
from tether.runtime.schedules import (
    DEFAULT_LATE_AFTER_MS,
    CronSpec,
    Due,
    check_missed,
    check_schedule_id,
    check_workflow_ref,
    decode_input,
    encode_input,
    execution_id_for,
    format_fire,
    parse_cron,
    plan_fire,
)

log = logging.getLogger(__name__)

#: Starts one execution: ``(execution_id, workflow_id, workflow_version, input)``. Starting an
#: id that exists already must be a no-op (the runtime's ``start(..., execution_id=...)``).
StartFn = Callable[[str, str, str, dict[str, Any]], Awaitable[object]]

DEFAULT_RETRY_AFTER_MS: Final = 30_000


# --- messages (ask them; each answer is the stored row, or a bool / list) ------------------


class CreateSchedule(msgspec.Struct, frozen=True):
    """Create a schedule, or redefine the one with this id.

    The same definition again (an app declaring its schedules at every boot) changes nothing,
    so the next fire, a pause and missed fires are kept. A different definition replaces it
    and fires from now on; a pause is kept. Raises InvalidInput naming the bad field.
    """

    schedule_id: str
    cron: str
    workflow_id: str
    workflow_version: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    timezone: str = "UTC"
    missed: str = "skip"


class PauseSchedule(msgspec.Struct, frozen=True):
    """No fires until resumed. Raises ScheduleNotFound."""

    schedule_id: str


class ResumeSchedule(msgspec.Struct, frozen=True):
    """Fire again from the next fire after now: fires that came due while it was paused are
    not started, whatever the missed policy. Raises ScheduleNotFound."""

    schedule_id: str


class DeleteSchedule(msgspec.Struct, frozen=True):
    """Remove the schedule (its past executions stay); answers False if there was none."""

    schedule_id: str


class ListSchedules(msgspec.Struct, frozen=True):
    """Every schedule as stored, by id; ``last_error`` says why a fire did not start."""


class _Tick(msgspec.Struct, frozen=True, gc=False):
    #: Which sleeper sent it: only the current one's tick means no sleeper is armed any more.
    sleeper: int


class _Retry(NamedTuple):
    at_ms: int
    #: The fire to start then; None: plan the schedule again.
    fire_ms: int | None


class CronActor(Actor):
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        start: StartFn,
        task_group: anyio.abc.TaskGroup,
        *,
        late_after_ms: int = DEFAULT_LATE_AFTER_MS,
        retry_after_ms: int = DEFAULT_RETRY_AFTER_MS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._start = start
        self._tg = task_group
        self._late_after_ms = late_after_ms
        self._retry_after_ms = retry_after_ms
        self._rows: dict[str, ScheduleRow] = {}
        #: Parsed expressions; a row without one (it no longer parses) is reported, not run.
        self._specs: dict[str, CronSpec] = {}
        #: Fires whose start failed for a passing reason, and when to try them again.
        self._retry: dict[str, _Retry] = {}
        self._sleeper: anyio.CancelScope | None = None
        self._wake_ms: int | None = None
        self._sleepers = 0  # numbers the sleepers

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        for row in await self._store.list_schedules():
            await self._remember(row)
        self._arm()

    async def on_stop(self) -> None:
        if self._sleeper is not None:
            self._sleeper.cancel()

    async def on_failure(self, error: BaseException) -> None:
        # A restart builds a new instance, which arms its own sleeper.
        if self._sleeper is not None:
            self._sleeper.cancel()

    async def on_receive(self, message: object) -> object:
        match message:
            case _Tick():
                if message.sleeper == self._sleepers:  # else a replaced sleeper's late tick
                    self._sleeper, self._wake_ms = None, None
                if self.context.self_ref.is_alive:  # stopping: start nothing more
                    await self._fire_due()
                answer: object = None
            case CreateSchedule():
                answer = await self._create(message)
            case PauseSchedule():
                answer = await self._pause(message.schedule_id)
            case ResumeSchedule():
                answer = await self._resume(message.schedule_id)
            case DeleteSchedule():
                answer = await self._delete(message.schedule_id)
            case ListSchedules():
                answer = await self._store.list_schedules()
            case _:
                raise TypeError(f"CronActor got an unknown message {type(message).__name__}")
        self._arm()
        return answer

    # -- changes --------------------------------------------------------------------------

    async def _create(self, msg: CreateSchedule) -> ScheduleRow:
        check_schedule_id(msg.schedule_id)
        check_workflow_ref(msg.workflow_id, msg.workflow_version)
        missed = check_missed(msg.missed)
        spec = parse_cron(msg.cron, msg.timezone)
        data = encode_input(msg.input)
        now = self._now()
        old = await self._store.get_schedule(msg.schedule_id)
        definition = (spec.cron, msg.timezone, msg.workflow_id, msg.workflow_version, data, missed)
        if old is not None and definition == _definition(old):
            await self._remember(old)
            return old
        row = ScheduleRow(
            schedule_id=msg.schedule_id, cron=spec.cron, timezone=msg.timezone,
            workflow_id=msg.workflow_id, workflow_version=msg.workflow_version, input=data,
            missed=missed, paused=old is not None and old.paused,
            next_fire_ms=spec.next_after(now),
            created_at_ms=now if old is None else old.created_at_ms,
            updated_at_ms=now if old is None else max(now, old.updated_at_ms),
        )  # fmt: skip
        await self._store.put_schedule(row)
        self._retry.pop(row.schedule_id, None)
        self._rows[row.schedule_id], self._specs[row.schedule_id] = row, spec
        return row

    async def _pause(self, schedule_id: str) -> ScheduleRow:
        row = await self._store.set_schedule_paused(schedule_id, True, self._now())
        if row is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        self._retry.pop(schedule_id, None)
        self._rows[schedule_id] = row
        return row

    async def _resume(self, schedule_id: str) -> ScheduleRow:
        row = await self._store.get_schedule(schedule_id)
        if row is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        if not row.paused:
            await self._remember(row)
            return row
        now = self._now()
        spec = self._specs.get(schedule_id) or parse_cron(row.cron, row.timezone)
        resumed = await self._store.set_schedule_paused(
            schedule_id, False, now, next_fire_ms=spec.next_after(now)
        )
        if resumed is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        self._rows[schedule_id], self._specs[schedule_id] = resumed, spec
        return resumed

    async def _delete(self, schedule_id: str) -> bool:
        deleted = await self._store.delete_schedule(schedule_id)
        self._forget(schedule_id)
        return deleted

    async def _remember(self, row: ScheduleRow) -> None:
        """Cache a stored row; one whose expression or zone no longer parses (a zone gone
        from this machine's tzdata) is reported in its ``last_error`` instead of run."""
        self._rows[row.schedule_id] = row
        known = self._specs.get(row.schedule_id)
        if known is not None and (known.cron, known.zone.key) == (row.cron, row.timezone):
            return
        try:
            self._specs[row.schedule_id] = parse_cron(row.cron, row.timezone)
        except TetherError as exc:
            self._specs.pop(row.schedule_id, None)
            error = f"cannot compute its fire times: {exc}"
            log.error("schedule %s %s", row.schedule_id, error)
            await self._set_error(row, error)

    def _forget(self, schedule_id: str) -> None:
        self._rows.pop(schedule_id, None)
        self._specs.pop(schedule_id, None)
        self._retry.pop(schedule_id, None)

    # -- fires ----------------------------------------------------------------------------

    def _due_at(self, row: ScheduleRow) -> int | None:
        if row.paused or row.schedule_id not in self._specs:
            return None
        retry = self._retry.get(row.schedule_id)
        return row.next_fire_ms if retry is None else max(row.next_fire_ms, retry.at_ms)

    async def _fire_due(self) -> None:
        now = self._now()
        due = sorted(
            (at, row.schedule_id)
            for row in self._rows.values()
            if (at := self._due_at(row)) is not None and at <= now
        )
        for _, schedule_id in due:
            row = self._rows.get(schedule_id)
            if row is None:
                continue
            try:
                await self._fire(row, self._specs[schedule_id], now)
            except Exception as exc:  # one broken schedule must not stop the others (I10)
                log.exception("schedule %s: handling its fire failed", schedule_id)
                await self._retry_later(row, _Retry(now + self._retry_after_ms, None), exc)

    async def _fire(self, row: ScheduleRow, spec: CronSpec, now: int) -> None:
        sid = row.schedule_id
        retry = self._retry.pop(sid, None)
        if retry is not None and retry.fire_ms is not None:
            # The fire that was due when its start first failed is still the one to start,
            # however late the retry: the engine was running, the fire was not missed.
            due = Due(retry.fire_ms, spec.next_after(now), None)
        else:
            due = plan_fire(row, spec, now, self._late_after_ms)
        if due.missed_from_ms is not None:
            log.warning(
                "schedule %s: fires from %s were missed (more than %d ms late: the engine "
                "was not running); missed=%s: %s", sid, format_fire(due.missed_from_ms, spec.zone),
                self._late_after_ms, row.missed,
                "nothing started" if due.fire_ms is None else
                f"starting the latest, {format_fire(due.fire_ms, spec.zone)}",
            )  # fmt: skip
        error: str | None = None
        if due.fire_ms is not None:
            eid = execution_id_for(sid, due.fire_ms)
            try:
                await self._start(eid, row.workflow_id, row.workflow_version, decode_input(row))
            except TetherError as exc:
                error = f"the fire at {format_fire(due.fire_ms, spec.zone)} was not started: {exc}"
                log.error("schedule %s: %s", sid, error)
            except Exception as exc:
                await self._retry_later(row, _Retry(now + self._retry_after_ms, due.fire_ms), exc)
                return
        try:
            won = await self._store.advance_schedule(
                sid, row.next_fire_ms, due.next_fire_ms, now, error
            )
        except StorageError as exc:
            # The fire is started (or refused); trying it again under its id changes nothing.
            await self._retry_later(row, _Retry(now + self._retry_after_ms, due.fire_ms), exc)
            return
        if won:
            self._rows[sid] = msgspec.structs.replace(
                row, next_fire_ms=due.next_fire_ms, last_error=error,
                updated_at_ms=max(row.updated_at_ms, now),
            )  # fmt: skip
            return
        # Someone moved it first (another engine, or it was deleted): take the stored row.
        fresh = await self._store.get_schedule(sid)
        if fresh is None:
            self._forget(sid)
        else:
            await self._remember(fresh)

    async def _retry_later(self, row: ScheduleRow, retry: _Retry, exc: Exception) -> None:
        self._retry[row.schedule_id] = retry
        if retry.fire_ms is None:
            error = f"its due fire could not be handled yet, trying again: {exc!r}"
        else:
            eid = execution_id_for(row.schedule_id, retry.fire_ms)
            error = f"execution {eid} could not be started yet, trying again: {exc!r}"
        log.warning("schedule %s: %s", row.schedule_id, error)
        await self._set_error(row, error)

    async def _set_error(self, row: ScheduleRow, error: str) -> None:
        now = self._now()
        try:
            if await self._store.set_schedule_error(row.schedule_id, error, now):
                self._rows[row.schedule_id] = msgspec.structs.replace(
                    row, last_error=error, updated_at_ms=max(row.updated_at_ms, now)
                )
        except StorageError as exc:
            log.error("schedule %s: cannot record its error (%s): %s", row.schedule_id, error, exc)

    # -- time -----------------------------------------------------------------------------

    def _now(self) -> int:
        # Rounded, not truncated: a sleep that ends exactly at a fire must find it due, even
        # when the float seconds land a hair below it.
        return round(self._clock.now() * 1000)

    def _arm(self) -> None:
        times = [at for row in self._rows.values() if (at := self._due_at(row)) is not None]
        if not times:
            return
        wake = min(times)
        if self._wake_ms is not None and self._wake_ms <= wake:
            return  # an earlier wake-up is armed; a tick with nothing due is harmless
        if self._sleeper is not None:
            self._sleeper.cancel()
        scope = anyio.CancelScope()
        self._sleepers += 1
        self._sleeper, self._wake_ms = scope, wake
        self._tg.start_soon(self._sleep_until, wake, scope, _Tick(self._sleepers))

    async def _sleep_until(self, wake_ms: int, scope: anyio.CancelScope, tick: _Tick) -> None:
        with scope:
            # An absolute time: however late this task runs, it wakes at the fire, not after.
            await self._clock.sleep(max(0.0, wake_ms / 1000 - self._clock.now()))
            ref = self.context.self_ref
            if ref.is_alive:
                try:
                    ref.tell_nowait(tick)
                except MailboxFull:
                    await ref.tell(tick)


def _definition(row: ScheduleRow) -> tuple[str, str, str, str, bytes, str]:
    return (row.cron, row.timezone, row.workflow_id, row.workflow_version, row.input, row.missed)
