"""Passivation (I9): an execution that only waits holds no actor; the next signal, timer or
cancel wakes it through recovery, exactly once however many race; restarts leave it on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tether import ApprovalNotPending, ExecutionNotRunning, Runtime, tool
from tether.ir import compile_yaml_text
from tether.ir.types import Workflow
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


@tool
async def bump(n: int) -> int:
    return n + 1


FLOW = """
workflow: {{id: {name}, version: "1", start: pause, state_schema: {{n: {{type: integer}}}}}}
nodes:
  pause: {{{pause}, next: after}}
  after: {{type: tool, tool: bump, input: {{n: $n}}, output_key: n, next: end}}
"""
APPROVAL = 'type: human_approval, description: "Go?"'
EVENT = "type: wait, event: go"
TIMER = "type: wait, duration: 1h"


def flow(rt: Runtime, pause: str) -> Workflow:
    name = {APPROVAL: "approval", EVENT: "event", TIMER: "timer"}[pause]
    return rt.register(compile_yaml_text(FLOW.format(pause=pause, name=name), "idle.yaml"))


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


def actor_of(rt: Runtime, execution_id: str) -> object:
    """The actor the system holds under this execution's name, stopping or not."""
    assert rt._system is not None
    return rt._system._cells.get(execution_id)


async def passivated(rt: Runtime, execution_id: str) -> None:
    """Wait until the execution's actor is gone and its row says passivated."""
    await until(lambda: actor_of(rt, execution_id) is None)
    row = await rt.get_execution(execution_id)
    assert row.passivated, row


async def test_a_run_paused_at_an_approval_holds_no_actor_and_completes_I9(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(flow(rt, APPROVAL), {"n": 1})
        await passivated(rt, run.id)
        state = await rt.live_state(run.id)  # answered from the store: nothing spawned
        assert state is not None and state.display_status == "paused"
        assert actor_of(rt, run.id) is None
        assert [p.execution_id for p in await rt.pending_approvals()] == [run.id]
        await check_replay(rt, run.id)  # the snapshot it sleeps on is the fold (I2)
        await rt.approve(run.id, "approved", "alice@example.com")
        assert (await run.result(timeout=10))["n"] == 2
        await check_replay(rt, run.id)


async def test_an_event_wait_passivates_and_the_event_wakes_it_once_I9(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(flow(rt, EVENT), {"n": 1})
        await passivated(rt, run.id)
        sent = await asyncio.gather(
            *(rt.send_event(run.id, "go", {"k": 1}, event_id="e-1") for _ in range(3))
        )
        assert sorted(sent) == [False, False, True]  # one event id is applied once
        assert (await run.result(timeout=10))["n"] == 2
        types = [e.type for e in await rt.journal(run.id)]
        assert types.count("event_received") == 1
        await check_replay(rt, run.id)


async def test_a_distant_timer_passivates_and_still_fires_on_time_I9(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(flow(rt, TIMER), {"n": 1})
        await passivated(rt, run.id)
        row = await rt.get_execution(run.id)
        assert row.wake_at_ms == int(clock.now() * 1000) + 3_600_000
        clock.advance(3599)
        await anyio.sleep(0)
        assert actor_of(rt, run.id) is None  # not due: still asleep
        clock.advance(1)
        assert (await run.result(timeout=10))["n"] == 2
        fired = [e for e in await rt.journal(run.id) if e.type == "timer_fired"]
        assert [e.record.at_ms for e in fired] == [row.wake_at_ms]


async def test_a_near_timer_keeps_its_actor(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock, passivate_after=7200) as rt:
        run = await rt.start(flow(rt, TIMER), {"n": 1})  # 1h away: under the threshold
        await until(lambda: clock.sleepers > 0)
        assert not (await rt.get_execution(run.id)).passivated
        assert rt._system_ref(run.id) is not None


async def test_cancel_of_a_passivated_run_wakes_it_once_I9(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(flow(rt, APPROVAL), {"n": 1})
        await passivated(rt, run.id)
        spawns = count_spawns(rt)
        results = await asyncio.gather(*(rt.cancel(run.id, "no") for _ in range(3)))
        assert sorted(results) == [False, False, True]
        assert spawns == [run.id]
        assert (await rt.get_execution(run.id)).status == "cancelled"
        assert [e.type for e in await rt.journal(run.id)].count("execution_cancelled") == 1


async def test_racing_approvals_wake_one_actor_and_one_decision_counts_I9(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(flow(rt, APPROVAL), {"n": 1})
        await passivated(rt, run.id)
        spawns = count_spawns(rt)
        outcomes = await asyncio.gather(
            rt.approve(run.id, "approved", "alice@example.com"),
            rt.approve(run.id, "rejected", "bob@example.com"),
            return_exceptions=True,
        )
        assert spawns == [run.id]
        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert len(refused) == 1 and isinstance(refused[0], ApprovalNotPending)
        await run.result(timeout=10)
        assert [e.type for e in await rt.journal(run.id)].count("approval_received") == 1
        with pytest.raises(ExecutionNotRunning):
            await rt.approve(run.id, "approved", "alice@example.com")


async def test_a_passivated_run_survives_a_restart_without_being_spawned_I9(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    clock = VirtualClock()
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        timed = await rt.start(flow(rt, TIMER), {"n": 1})
        approval = await rt.start(flow(rt, APPROVAL), {"n": 5})
        await passivated(rt, timed.id)
        await passivated(rt, approval.id)
    async with Runtime(url, tools=[bump], clock=clock) as rt:
        assert actor_of(rt, timed.id) is None and actor_of(rt, approval.id) is None
        assert (await rt.state(approval.id)).display_status == "paused"
        clock.advance(3600)  # the wake-up recovery armed fires the timer
        assert (await rt.handle(timed.id).result(timeout=10))["n"] == 2
        await rt.approve(approval.id, "approved", "alice@example.com")
        assert (await rt.handle(approval.id).result(timeout=10))["n"] == 6
        await check_replay(rt, timed.id)


def count_spawns(rt: Runtime) -> list[str]:
    """Record every spawn of a passivated execution from now on."""
    spawned: list[str] = []
    activations = rt._passive
    real = activations._spawn

    async def spawn(execution_id: str, loaded: object) -> object:
        spawned.append(execution_id)
        return await real(execution_id, loaded)  # type: ignore[arg-type]

    activations._spawn = spawn  # type: ignore[assignment]
    return spawned
