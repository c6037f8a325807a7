"""The fleet Worker's leases: heartbeats list what it holds, the engine takes leases back with
Cancel or HeartbeatAck(expired), and an engine restart gets re-sent Results and heartbeats (I5)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest
from msgspec.structs import replace
from worker_engine import Gate, TestEngine, engine_on, grant, running_worker

from tether.fleet import Cancel, LeaseRef, Result
from tether.runtime.tools import Tool, tool
from tether.testing.clock import VirtualClock

pytestmark = pytest.mark.anyio


@tool
async def echo(value: object) -> object:
    return value


def gated(gate: Gate) -> Tool:
    @tool
    async def gated(name: str) -> str:
        await gate.enter(name)
        return name

    return gated


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    # For state outside the engine (the virtual clock's sleepers): re-check at each checkpoint.
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0)


async def test_heartbeats_list_the_leases_held_and_drop_them_once_reported() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine, heartbeat_interval_ms=20) as broker:
        engine.add(grant("h", "gated", {"name": "h"}, fence=7))
        async with running_worker(broker.endpoint, [gated(gate)]):
            await engine.wait_until(
                lambda: (
                    LeaseRef(work_item_id="h", fence=7) in engine.heartbeats[-1].leases
                    if engine.heartbeats
                    else None
                )
            )
            gate.open()
            await engine.wait_until(lambda: engine.outcome("h"))
            seen = len(engine.heartbeats)
            await engine.wait_until(lambda: len(engine.heartbeats) > seen)
            assert engine.heartbeats[-1].leases == []


async def test_heartbeats_follow_the_injected_clock() -> None:
    clock, engine = VirtualClock(), TestEngine()
    async with (
        engine_on(engine, heartbeat_interval_ms=50, lease_ttl_ms=60_000) as broker,
        running_worker(broker.endpoint, [echo], clock=clock),
    ):
        await engine.wait_until(lambda: engine.joined)
        await wait_for(lambda: clock.sleepers == 1)
        assert engine.heartbeats == []
        clock.advance(0.05)
        await engine.wait_until(lambda: engine.heartbeats)
        await wait_for(lambda: clock.sleepers == 1)
        assert len(engine.heartbeats) == 1


async def test_cancel_stops_the_tool_sends_nothing_for_it_and_gives_the_slot_back() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine) as broker:
        engine.add(grant("c", "gated", {"name": "c"}, fence=3))
        async with running_worker(broker.endpoint, [gated(gate), echo], concurrency=1) as worker:
            await engine.wait_until(lambda: gate.current == 1)
            # A Cancel for an older fence of the same item leaves the newer lease alone.
            engine.send(Cancel(work_item_id="c", fence=2, reason="old"))
            engine.send(Cancel(work_item_id="c", fence=3, reason="execution cancelled"))
            await engine.wait_until(lambda: engine.credits == [1])
            assert gate.cancelled == ["c"] and worker.in_flight == 0
            engine.add(grant("next", "echo", {"value": 1}))  # the slot serves new work
            await engine.wait_until(lambda: engine.outcome("next"))
    assert engine.outcome("c") is None


async def test_heartbeat_ack_expired_stops_the_tool_and_sends_nothing_for_it() -> None:
    gate, engine = Gate(), TestEngine()
    async with engine_on(engine, heartbeat_interval_ms=20) as broker:
        engine.add(grant("e", "gated", {"name": "e"}, fence=5), grant("k", "gated", {"name": "k"}))
        async with running_worker(broker.endpoint, [gated(gate)]):
            await engine.wait_until(lambda: gate.current == 2)
            engine.expire = [LeaseRef(work_item_id="e", fence=5)]
            await engine.wait_until(lambda: gate.cancelled == ["e"])
            await engine.wait_until(lambda: engine.credits == [1])
            gate.open()
            await engine.wait_until(lambda: engine.outcome("k"))
    assert engine.outcome("e") is None


@pytest.mark.parametrize("result_credits", [False, True], ids=["credit", "result_credit"])
async def test_engine_restart_gets_unacked_results_again_and_held_leases_at_once(
    result_credits: bool,
) -> None:
    # result_credits: the first engine counted the "done" Result's credit, which was spent
    # there: its re-sent copy frees no slot again.
    clock, gate = VirtualClock(), Gate()
    first, second = TestEngine(ack=False), TestEngine()
    timings = {"heartbeat_interval_ms": 50, "lease_ttl_ms": 60_000}
    async with engine_on(first, **timings, result_credits=result_credits) as b1:
        endpoint = b1.endpoint
        first.add(grant("done", "echo", {"value": "v"}), grant("held", "gated", {"name": "h"}))
        worker_cm = running_worker(
            endpoint, [echo, gated(gate)], concurrency=2, clock=clock, drain_timeout=10
        )
        worker = await worker_cm.__aenter__()
        await first.wait_until(lambda: first.outcome("done"))
        await wait_for(lambda: gate.current == 1)
    stopped = False
    try:
        async with engine_on(
            second, endpoint, engine_id="eng-2", heartbeat_interval_ms=50, lease_ttl_ms=60_000
        ):
            # The worker learns of the new engine when it next speaks: tick its heartbeats
            # until the new engine has welcomed it.
            async def tick() -> None:
                while not second.joined:
                    clock.advance(0.05)
                    await anyio.sleep(0.02)

            async with anyio.create_task_group() as tg:
                tg.start_soon(tick)
                await second.wait_until(lambda: second.joined, timeout=10)
            # Re-sent without being asked: the un-acked Result and the running lease.
            resent = await second.wait_until(lambda: second.outcome("done"))
            done = first.outcome("done")
            assert done is not None and done.credit == int(result_credits)
            assert resent == replace(done, credit=0)
            await second.wait_until(lambda: second.heartbeats)
            assert second.heartbeats[0].leases == [LeaseRef(work_item_id="held", fence=1)]
            # The new engine counts the full capacity free while "held" still runs: the worker
            # keeps to its concurrency and credits back only what is really free.
            second.add(grant("n1", "gated", {"name": "n1"}), grant("n2", "gated", {"name": "n2"}))
            await second.wait_until(lambda: len(second.granted) == 2)
            # No heartbeats here to wake wait_until: poll the worker's own state.
            await wait_for(lambda: worker.in_flight == 3 and gate.current == 2)
            gate.open()
            await second.wait_until(lambda: len(second.outcomes) == 4)
            await second.wait_until(lambda: len(second.credits) == 2)
            assert gate.peak == 2 and second.credit == 2
            assert isinstance(second.outcome("held"), Result)
            # Drain while the engine is up: its last Acks are still on their way.
            stopped = True
            await worker_cm.__aexit__(None, None, None)
    finally:
        if not stopped:
            await worker_cm.__aexit__(None, None, None)
