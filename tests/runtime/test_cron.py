"""Durable cron schedules: fire times across DST, one execution per fire (I3), missed fires
after downtime, pause/resume/delete, clear errors (I10), all on a VirtualClock."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import msgspec
import pytest
from croniter import croniter  # type: ignore[import-untyped, unused-ignore]

from tether import InvalidInput, Runtime, ScheduleNotFound, tool
from tether.actors import ActorRef, ActorSystem
from tether.ir import compile_yaml_text
from tether.persistence import MemoryStore, ScheduleRow, Store
from tether.runtime.cron import (
    CreateSchedule,
    CronActor,
    DeleteSchedule,
    ListSchedules,
    PauseSchedule,
    ResumeSchedule,
)
from tether.runtime.schedules import (
    execution_id_for,
    parse_cron,
    plan_fire,
)
from tether.testing import VirtualClock

pytestmark = pytest.mark.anyio

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, where VirtualClock starts


@tool
async def bump(n: int) -> int:
    return n + 1


def report_wf(workflow_id: str = "report") -> str:
    return f"""
workflow: {{id: {workflow_id}, version: "1", start: make, state_schema: {{n: {{type: integer}}}}}}
nodes:
  make: {{type: tool, tool: bump, input: {{n: $n}}, output_key: n, next: end}}
"""


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the engine's tasks run until ``check()`` holds (no time passes on a VirtualClock)."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0)


def at(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def local(ms: int, zone: str) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).isoformat()


@dataclass
class Engine:
    rt: Runtime
    cron: ActorRef
    clock: VirtualClock
    started: list[str] = field(default_factory=list)

    async def schedules(self) -> dict[str, ScheduleRow]:
        rows = await self.cron.ask(ListSchedules())
        assert isinstance(rows, list)
        return {r.schedule_id: r for r in rows}

    async def next_fire(self, sid: str) -> int:
        return (await self.schedules())[sid].next_fire_ms

    async def moved_past(self, sid: str, fire_ms: int) -> None:
        """Wait until the schedule has moved on past ``fire_ms`` (its fire handled)."""

        async def moved() -> bool:
            return await self.next_fire(sid) > fire_ms

        await eventually(moved)

    def advance_to(self, ms: int) -> None:
        self.clock.advance(max(0.0, ms / 1000 - self.clock.now()))

    async def executions(self) -> list[str]:
        return sorted(r.execution_id for r in await self.rt.list_executions(limit=10_000))


@asynccontextmanager
async def engine(db_url: str, clock: VirtualClock, **cron_kw: Any) -> AsyncIterator[Engine]:
    """A real Runtime on ``db_url`` and a CronActor starting executions through it."""
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        rt.register(compile_yaml_text(report_wf(), "report.yaml"))
        started: list[str] = []

        async def start(eid: str, workflow_id: str, version: str, data: dict[str, Any]) -> None:
            started.append(eid)
            await rt.start(f"{workflow_id}@{version}", data, execution_id=eid)

        async with anyio.create_task_group() as tg:
            async with ActorSystem(clock=clock, name="cron-test") as system:
                ref = await system.spawn(
                    lambda: CronActor(rt.store, clock, start, tg, **cron_kw), name="cron"
                )
                yield Engine(rt, ref, clock, started)
            tg.cancel_scope.cancel()


def create(sid: str, cron: str, **kw: Any) -> CreateSchedule:
    kw.setdefault("input", {"n": 0})
    return CreateSchedule(sid, cron, kw.pop("workflow_id", "report"), "1", **kw)


# ------------------------------------------------------------------ firing through a runtime


async def test_a_day_of_quarter_hour_fires_one_execution_each_I3(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        row = await e.cron.ask(create("q", "*/15 * * * *"))
        assert isinstance(row, ScheduleRow) and row.next_fire_ms == T0 + 15 * MIN
        for i in range(1, 97):
            clock.advance(15 * 60)
            await until(lambda i=i: len(e.started) == i)  # type: ignore[misc]
        await e.moved_past("q", T0 + 24 * HOUR)
        fires = [T0 + k * 15 * MIN for k in range(1, 97)]
        assert e.started == [f"sched_q_{ms}" for ms in fires]
        assert await e.executions() == sorted(e.started)
        for eid in e.started[:3] + e.started[-3:]:
            assert await e.rt.handle(eid).result(timeout=10) == {"n": 1}
        row = (await e.schedules())["q"]
        assert (row.next_fire_ms, row.last_error) == (T0 + 24 * HOUR + 15 * MIN, None)


async def test_fires_follow_local_time_across_a_dst_change(db_url: str) -> None:
    clock = VirtualClock(start=at("2026-03-27T12:00:00+00:00") / 1000)
    async with engine(db_url, clock) as e:
        await e.cron.ask(create("nine", "0 9 * * *", timezone="Europe/Paris"))
        await e.cron.ask(create("night", "30 2 * * *", timezone="Europe/Paris"))
        expected = [
            ("night", "2026-03-28T02:30:00+01:00"),
            ("nine", "2026-03-28T09:00:00+01:00"),
            ("night", "2026-03-29T03:00:00+02:00"),  # 02:30 does not exist: fires at the jump
            ("nine", "2026-03-29T09:00:00+02:00"),  # 09:00 local on both sides (07:00 UTC)
            ("night", "2026-03-30T02:30:00+02:00"),
            ("nine", "2026-03-30T09:00:00+02:00"),
        ]
        for n, (sid, when) in enumerate(expected, 1):
            assert local(await e.next_fire(sid), "Europe/Paris") == when
            e.advance_to(at(when))
            await until(lambda n=n: len(e.started) == n)  # type: ignore[misc]
            assert e.started[-1] == execution_id_for(sid, at(when))
            await e.moved_past(sid, at(when))
        assert at("2026-03-29T09:00:00+02:00") - at("2026-03-28T09:00:00+01:00") == 23 * HOUR


async def test_missed_fires_after_downtime_skip_or_run_once(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        await e.cron.ask(create("s", "0 * * * *", missed="skip"))
        await e.cron.ask(create("r", "0 * * * *", missed="run_once"))
    clock.advance(5.5 * 3600)  # the engine is down from 00:00 to 05:30: five fires missed
    async with engine(db_url, clock) as e:
        await e.moved_past("s", T0 + 5 * HOUR)
        await e.moved_past("r", T0 + 5 * HOUR)
        assert e.started == [f"sched_r_{T0 + 5 * HOUR}"]  # the latest missed fire, once
        assert await e.executions() == [f"sched_r_{T0 + 5 * HOUR}"]
        rows = await e.schedules()
        assert rows["s"].next_fire_ms == rows["r"].next_fire_ms == T0 + 6 * HOUR
        e.advance_to(T0 + 6 * HOUR)  # and from then on, every fire as usual
        await until(lambda: len(e.started) == 3)
        assert sorted(e.started[1:]) == [f"sched_r_{T0 + 6 * HOUR}", f"sched_s_{T0 + 6 * HOUR}"]


async def test_a_short_downtime_is_not_a_missed_fire(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        await e.cron.ask(create("s", "0 * * * *", missed="skip"))
    clock.advance(3600 + 30)  # back 30 s after the fire: within late_after_ms, on time
    async with engine(db_url, clock) as e:
        await until(lambda: len(e.started) == 1)
        assert e.started == [f"sched_s_{T0 + HOUR}"]


async def test_a_restart_between_start_and_advance_starts_nothing_twice_I3(
    db_url: str,
) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        row = await e.cron.ask(create("q", "*/15 * * * *"))
        assert isinstance(row, ScheduleRow)
        await e.cron.stop()  # the engine "crashes" just after starting the fire, below
        e.advance_to(row.next_fire_ms)
        now = round(clock.now() * 1000)
        due = plan_fire(row, parse_cron(row.cron, row.timezone), now)
        assert due.fire_ms == row.next_fire_ms
        eid = execution_id_for("q", due.fire_ms)
        await e.rt.start("report@1", {"n": 0}, execution_id=eid)  # started, never advanced
        assert (await e.rt.store.get_schedule("q")) == row
    clock.advance(20)  # back up 20 s later: the fire is still on time, and still that fire
    async with engine(db_url, clock) as e:
        await e.moved_past("q", row.next_fire_ms)
        assert e.started == [eid]  # the same fire, under the same id: a no-op
        assert await e.executions() == [eid]
        journal = [entry.type for entry in await e.rt.journal(eid)]
        assert journal.count("execution_started") == 1


async def test_two_engines_on_one_schedule_start_each_fire_once_I3(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        started: list[str] = []

        async def start(eid: str, workflow_id: str, version: str, data: dict[str, Any]) -> None:
            started.append(eid)
            await e.rt.start(f"{workflow_id}@{version}", data, execution_id=eid)

        await e.cron.ask(create("q", "*/15 * * * *"))
        async with anyio.create_task_group() as tg:
            async with ActorSystem(clock=clock, name="second") as system:
                await system.spawn(lambda: CronActor(e.rt.store, clock, start, tg), name="cron2")
                for i in range(1, 5):
                    clock.advance(15 * 60)
                    await e.moved_past("q", T0 + i * 15 * MIN)
                # Each engine still believes the fire is due until its CAS loses: both try it.
                await until(lambda: len(e.started) == len(started) == 4)
            tg.cancel_scope.cancel()
        fires = [f"sched_q_{T0 + k * 15 * MIN}" for k in range(1, 5)]
        assert e.started == started == fires
        assert await e.executions() == fires  # each fire started once
        for eid in fires:
            assert [x.type for x in await e.rt.journal(eid)].count("execution_started") == 1


async def test_pause_resume_delete(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        await e.cron.ask(create("q", "*/15 * * * *", missed="run_once"))
        paused = await e.cron.ask(PauseSchedule("q"))
        assert isinstance(paused, ScheduleRow) and paused.paused
        clock.advance(3600 + 5 * 60)  # 01:05: four fires came due while paused
        assert (await e.schedules())["q"].paused
        assert e.started == []
        resumed = await e.cron.ask(ResumeSchedule("q"))
        assert isinstance(resumed, ScheduleRow)
        # Resumed from the future: fires due while paused are not run, even with run_once.
        assert (resumed.paused, resumed.next_fire_ms) == (False, T0 + HOUR + 15 * MIN)
        assert await e.cron.ask(ResumeSchedule("q")) == resumed  # resuming again: no change
        e.advance_to(T0 + HOUR + 15 * MIN)
        await until(lambda: len(e.started) == 1)
        assert e.started == [f"sched_q_{T0 + HOUR + 15 * MIN}"]
        await e.moved_past("q", T0 + HOUR + 15 * MIN)
        assert await e.cron.ask(DeleteSchedule("q")) is True
        assert await e.cron.ask(DeleteSchedule("q")) is False
        clock.advance(3600)
        assert await e.schedules() == {}
        assert e.started == [f"sched_q_{T0 + HOUR + 15 * MIN}"]
        for message in (PauseSchedule("nope"), ResumeSchedule("nope")):
            with pytest.raises(ScheduleNotFound, match="nope"):
                await e.cron.ask(message)


async def test_declaring_a_schedule_again_keeps_it(db_url: str) -> None:
    clock = VirtualClock()
    async with engine(db_url, clock) as e:
        first = await e.cron.ask(create("q", "0 9 * * *", input={"n": 1, "m": 2}))
        await e.cron.ask(PauseSchedule("q"))
        clock.advance(600)
        # An app declares its schedules at every boot: the same definition changes nothing
        # (next fire, pause and missed fires are kept; input key order does not matter).
        again = await e.cron.ask(create("q", " 0  9 * * * ", input={"m": 2, "n": 1}))
        assert isinstance(first, ScheduleRow) and isinstance(again, ScheduleRow)
        assert again == msgspec.structs.replace(first, paused=True)
        changed = await e.cron.ask(create("q", "0 10 * * *", input={"n": 1, "m": 2}))
        assert isinstance(changed, ScheduleRow)
        assert (changed.cron, changed.next_fire_ms) == ("0 10 * * *", T0 + 10 * HOUR)
        assert (changed.created_at_ms, changed.paused) == (first.created_at_ms, True)


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"cron": "61 * * * *"}, r"cron: '61 \* \* \* \*' is not a valid cron expression: "),
        ({"cron": "* * * * * *"}, r"cron: .* expected 5 fields .* got 6"),
        ({"cron": ""}, r"cron: '' is not a valid cron expression: expected 5 fields"),
        ({"cron": "@reboot"}, r"cron: '@reboot' is not a valid cron expression: unknown alias"),
        ({"cron": "0 0 30 2 *"}, r"cron: '0 0 30 2 \*' is not a valid cron expression"),
        ({"timezone": "Mars/Olympus"}, r"timezone: 'Mars/Olympus' is not a known time zone"),
        ({"timezone": ""}, r"timezone: expected an IANA time zone name"),
        ({"missed": "sometimes"}, r"missed: expected one of \['run_once', 'skip'\]"),
        ({"schedule_id": ""}, r"schedule_id: expected a non-empty string"),
        ({"schedule_id": "a b"}, r"schedule_id: 'a b' may not contain whitespace"),
        ({"workflow_id": ""}, r"workflow_id: expected a non-empty string"),
        ({"input": {"when": object()}}, r"input: cannot be stored with the schedule"),
    ],
)
async def test_bad_input_is_refused_naming_the_field_I10(kw: dict[str, Any], message: str) -> None:
    clock = VirtualClock()
    async with cron_on_memory(clock, ok_start) as (cron, store, _):
        fields: dict[str, Any] = {"schedule_id": "s", "cron": "0 9 * * *"} | kw
        with pytest.raises(InvalidInput, match=message):
            await cron.ask(create(fields.pop("schedule_id"), fields.pop("cron"), **fields))
        assert await store.list_schedules() == []
        assert isinstance(await cron.ask(create("fine", "0 9 * * *")), ScheduleRow)  # still up


async def test_a_schedule_whose_workflow_is_gone_is_reported_not_dropped(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    caplog.set_level(logging.ERROR, logger="tether.runtime.cron")
    async with engine(db_url, clock) as e:
        await e.cron.ask(create("g", "0 * * * *", workflow_id="ghost"))
        e.advance_to(T0 + HOUR)
        await e.moved_past("g", T0 + HOUR)
        row = (await e.schedules())["g"]
        assert e.started == [f"sched_g_{T0 + HOUR}"]  # tried once, not in a loop
        assert row.next_fire_ms == T0 + 2 * HOUR and not row.paused
        assert row.last_error is not None
        assert "2026-01-01T01:00:00+00:00 (UTC) was not started" in row.last_error
        assert "ghost" in row.last_error
        assert "ghost" in caplog.text and "schedule g" in caplog.text
        assert await e.executions() == []
        # Registered again (a redeploy): the next fire starts and the error is cleared.
        e.rt.register(compile_yaml_text(report_wf("ghost"), "ghost.yaml"))
        e.advance_to(T0 + 2 * HOUR)
        await e.moved_past("g", T0 + 2 * HOUR)
        assert (await e.schedules())["g"].last_error is None
        assert await e.executions() == [f"sched_g_{T0 + 2 * HOUR}"]


# ------------------------------------------------------------- the actor on a memory store


async def ok_start(eid: str, workflow_id: str, version: str, data: dict[str, Any]) -> None:
    return None


@asynccontextmanager
async def cron_on_memory(
    clock: VirtualClock,
    start: Callable[[str, str, str, dict[str, Any]], Awaitable[None]],
    store: Store | None = None,
    **kw: Any,
) -> AsyncIterator[tuple[ActorRef, Store, ActorSystem]]:
    if store is None:
        store = MemoryStore()
        await store.open()
    async with anyio.create_task_group() as tg:
        async with ActorSystem(clock=clock) as system:
            ref = await system.spawn(lambda: CronActor(store, clock, start, tg, **kw), name="c")
            yield ref, store, system
        tg.cancel_scope.cancel()


async def test_a_passing_failure_retries_the_same_fire_later() -> None:
    clock = VirtualClock()
    calls: list[tuple[str, dict[str, Any]]] = []

    async def flaky(eid: str, workflow_id: str, version: str, data: dict[str, Any]) -> None:
        calls.append((eid, data))
        if len(calls) <= 2:
            raise OSError("disk hiccup")

    async with cron_on_memory(clock, flaky, retry_after_ms=30_000) as (cron, store, _):
        await cron.ask(create("q", "0 * * * *", input={"x": [1, 2]}))
        clock.advance(3600)
        await until(lambda: len(calls) == 1)
        row = await store.get_schedule("q")
        assert row is not None and row.next_fire_ms == T0 + HOUR  # not moved on
        clock.advance(29)
        assert len(calls) == 1
        clock.advance(1)
        await until(lambda: len(calls) == 2)
        clock.advance(30)  # 01:01:00, more than late_after_ms after the fire: still that fire
        await until(lambda: len(calls) == 3)

        async def moved() -> bool:
            row = await store.get_schedule("q")
            return row is not None and row.next_fire_ms == T0 + 2 * HOUR

        await eventually(moved)
        assert calls == [(f"sched_q_{T0 + HOUR}", {"x": [1, 2]})] * 3
        row = await store.get_schedule("q")
        assert row is not None and row.last_error is None


async def test_stored_schedules_that_cannot_run_are_reported_I10() -> None:
    clock = VirtualClock()
    store = MemoryStore()
    await store.open()
    good = ScheduleRow("good", "0 * * * *", "UTC", "report", "1", msgspec.msgpack.encode({}),
                       "skip", False, T0 + HOUR, 0, 0)  # fmt: skip
    await store.put_schedule(good)
    await store.put_schedule(msgspec.structs.replace(good, schedule_id="bad", timezone="No/Zone"))
    await store.put_schedule(msgspec.structs.replace(good, schedule_id="corrupt", input=b"\xc1"))
    calls: list[str] = []

    async def start(eid: str, workflow_id: str, version: str, data: dict[str, Any]) -> None:
        calls.append(eid)

    async with cron_on_memory(clock, start, store=store) as (cron, _, _):
        rows = await cron.ask(ListSchedules())
        assert isinstance(rows, list)
        bad = rows[0]
        assert bad.schedule_id == "bad"
        assert bad.last_error is not None and "'No/Zone' is not a known time zone" in bad.last_error
        clock.advance(3600)
        await until(lambda: calls == [f"sched_good_{T0 + HOUR}"])

        async def corrupt_reported() -> bool:
            row = await store.get_schedule("corrupt")
            return row is not None and row.next_fire_ms == T0 + 2 * HOUR

        await eventually(corrupt_reported)
        corrupt = await store.get_schedule("corrupt")
        assert corrupt is not None and corrupt.last_error is not None
        assert "stored input is corrupt" in corrupt.last_error


# --------------------------------------------------------------------- fire times (pure)


def test_fall_back_fixed_hours_fire_once_hourly_ones_follow_real_time() -> None:
    zone = "Europe/Paris"
    night = parse_cron("30 2 * * *", zone)
    t = at("2026-10-24T12:00:00+02:00")
    fires = []
    for _ in range(3):
        t = night.next_after(t)
        fires.append(local(t, zone))
    assert fires == [
        "2026-10-25T02:30:00+02:00",  # the first pass only: not again at 02:30+01:00
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]
    quarter = parse_cron("*/15 * * * *", zone)
    t, times = at("2026-10-25T01:50:00+02:00"), []
    for _ in range(10):
        t = quarter.next_after(t)
        times.append(t)
    assert {b - a for a, b in itertools.pairwise(times)} == {15 * MIN}
    assert local(times[0], zone) == "2026-10-25T02:00:00+02:00"
    assert local(times[4], zone) == "2026-10-25T02:00:00+01:00"  # the second pass
    nine = parse_cron("0 9 * * *", zone)
    assert local(nine.next_after(at("2026-10-24T12:00:00+02:00")), zone) == (
        "2026-10-25T09:00:00+01:00"
    )


def test_plan_fire_policies() -> None:
    spec = parse_cron("0 * * * *", "UTC")
    skip = ScheduleRow("h", "0 * * * *", "UTC", "w", "1", b"\x80", "skip", False, T0 + HOUR, 0, 0)
    run_once = msgspec.structs.replace(skip, missed="run_once")
    # On time (a few seconds late): that fire, then the next one.
    assert plan_fire(skip, spec, T0 + HOUR + 5_000) == (T0 + HOUR, T0 + 2 * HOUR, None)
    # Down from before 01:00 to 03:10: 01:00, 02:00 and 03:00 were missed.
    late = T0 + 3 * HOUR + 10 * MIN
    assert plan_fire(skip, spec, late) == (None, T0 + 4 * HOUR, T0 + HOUR)
    assert plan_fire(run_once, spec, late) == (T0 + 3 * HOUR, T0 + 4 * HOUR, T0 + HOUR)
    # Planned again after a crash (same row, later clock): the same fire, so the same id.
    assert plan_fire(run_once, spec, late + MIN).fire_ms == T0 + 3 * HOUR
    # Back 30 s after 03:00: the latest fire is on time whatever the policy.
    back = T0 + 3 * HOUR + 30_000
    assert plan_fire(skip, spec, back) == (T0 + 3 * HOUR, T0 + 4 * HOUR, T0 + HOUR)


def reference_fires(cron: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[int]:
    """The documented rules, by brute force over every minute: a matching wall time fires at
    its instant (first pass only unless the hour field is '*'); matching wall times skipped by
    a spring-forward fire at the jump."""
    every_hour = croniter(cron).expanded[1] == ["*"]
    walls = croniter(cron, start.replace(tzinfo=None) - timedelta(days=1))
    matching: set[datetime] = set()
    while not matching or max(matching) < end.replace(tzinfo=None) + timedelta(days=1):
        matching.add(walls.get_next(datetime))
    out, t, prev_wall = [], start, None
    while t <= end:
        loc = t.astimezone(zone)
        wall = loc.replace(tzinfo=None)
        fire = wall in matching and (loc.fold == 0 or every_hour)
        if prev_wall is not None and wall - prev_wall > timedelta(minutes=1):
            skipped = prev_wall + timedelta(minutes=1)
            while skipped < wall:
                fire = fire or skipped in matching
                skipped += timedelta(minutes=1)
        if fire:
            out.append(int(t.timestamp() * 1000))
        prev_wall = wall
        t += timedelta(minutes=1)
    return out


@pytest.mark.parametrize(
    ("zone", "change"),
    [
        ("Europe/Paris", "2026-03-29T01:00:00"),
        ("Europe/Paris", "2026-10-25T01:00:00"),
        ("America/New_York", "2026-03-08T07:00:00"),
        ("America/New_York", "2026-11-01T06:00:00"),
        ("Australia/Lord_Howe", "2026-10-03T15:30:00"),  # a 30-minute spring-forward
        ("Australia/Lord_Howe", "2026-04-04T15:00:00"),
    ],
)
def test_fire_times_match_the_documented_rules_around_dst_changes(zone: str, change: str) -> None:
    tz = ZoneInfo(zone)
    jump = datetime.fromisoformat(change).replace(tzinfo=UTC)
    for cron in ("30 2 * * *", "*/15 * * * *", "0 * * * *", "15,45 1-3 * * *", "* 2 * * *"):
        spec = parse_cron(cron, zone)
        ref = reference_fires(cron, tz, jump - timedelta(hours=30), jump + timedelta(hours=30))
        probe = jump - timedelta(hours=4)
        while probe < jump + timedelta(hours=4):
            ms = int(probe.timestamp() * 1000)
            for p in (ms - 1, ms, ms + 1):
                assert spec.next_after(p) == next(f for f in ref if f > p), (cron, probe, p)
                assert spec.last_at_or_before(p) == [f for f in ref if f <= p][-1], (cron, p)
            probe += timedelta(minutes=10)


async def test_the_runtime_schedules_fires_and_keeps_them_across_a_restart(
    tmp_path: Path,
) -> None:
    clock = VirtualClock()
    url = f"sqlite:///{tmp_path / 'cron.db'}"
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(report_wf(), "r.yaml"))
        row = await rt.schedule("hourly", cron="0 * * * *", workflow=wf, input={"n": 1})
        assert row.next_fire_ms == T0 + HOUR
        with pytest.raises(InvalidInput, match="cron"):
            await rt.schedule("bad", cron="61 * * * *", workflow=wf, input={"n": 1})
        clock.advance(HOUR / 1000)
        first = f"sched_hourly_{T0 + HOUR}"
        await eventually(lambda: _completed(rt, first))
        assert [r.schedule_id for r in await rt.schedules.list()] == ["hourly"]
    clock.advance(1.5 * HOUR / 1000)  # due while no engine ran: "skip" starts nothing for it
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        await eventually(lambda: _next_fire_is(rt, T0 + 3 * HOUR))
        assert await rt.store.get_execution(f"sched_hourly_{T0 + 2 * HOUR}") is None
        paused = await rt.schedules.pause("hourly")
        assert paused.paused
        assert await rt.schedules.delete("hourly")
        assert await rt.schedules.list() == []
        with pytest.raises(ScheduleNotFound):
            await rt.schedules.pause("hourly")


async def _completed(rt: Runtime, execution_id: str) -> bool:
    row = await rt.store.get_execution(execution_id)
    return row is not None and row.status == "completed"


async def _next_fire_is(rt: Runtime, ms: int) -> bool:
    rows = await rt.schedules.list()
    return bool(rows) and rows[0].next_fire_ms == ms
