"""ctx.sleep, ctx.approval and ctx.wait_event: durable, on the injected clock, across restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.code_first import flows
from tether import Runtime
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    """Let the runtime's tasks run until ``check()`` holds (no time passes on the clock)."""
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


async def waits_on(rt: Runtime, run_id: str, prefix: str) -> bool:
    state = await rt.state(run_id)
    return any(node_id.startswith(prefix) for node_id in state.waits)


async def until_waiting(rt: Runtime, run_id: str, prefix: str) -> None:
    with anyio.fail_after(10):
        while not await waits_on(rt, run_id, prefix):
            await anyio.sleep(0)


async def test_sleep_approval_and_event_in_one_run(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Runtime(
        f"sqlite:///{tmp_path / 'w.db'}", workflows=[flows.waits], clock=clock
    ) as rt:
        run = await rt.start(flows.waits, {"amount": 5})
        await until_waiting(rt, run.id, "@sleep#")
        clock.advance(3599)
        assert await waits_on(rt, run.id, "@sleep#")
        clock.advance(1)
        await until_waiting(rt, run.id, "@approval:pay#")
        assert (await rt.get_execution(run.id)).status == "paused"
        [pending] = await rt.pending_approvals()
        assert pending.node_id == "@approval:pay#2"
        await rt.approve(run.id, "approved", user_id="ana", comment="fine")
        await until_waiting(rt, run.id, "@event:cleared#")
        await rt.send_event(run.id, "cleared", {"ref": "tx-1"})
        assert await run.result(timeout=10) == {
            "decision": "approved", "by": "ana", "event": {"ref": "tx-1"},
        }  # fmt: skip
        await check_replay(rt, run.id)


async def test_timeouts_give_timed_out_and_a_timeout_error(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Runtime(
        f"sqlite:///{tmp_path / 'w.db'}", workflows=[flows.waits], clock=clock
    ) as rt:
        run = await rt.start(flows.waits, {"amount": 5})
        await until_waiting(rt, run.id, "@sleep#")
        clock.advance(3600)
        await until_waiting(rt, run.id, "@approval:pay#")
        clock.advance(86_400)
        await until_waiting(rt, run.id, "@event:cleared#")
        clock.advance(2 * 86_400)
        result = await run.result(timeout=10)
        assert result == {"decision": "timed_out", "by": "tether:timeout", "event": None}
        await check_replay(rt, run.id)


async def test_a_run_paused_at_an_approval_resumes_in_a_new_runtime(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    clock = VirtualClock()
    async with Runtime(url, workflows=[flows.waits], clock=clock) as rt:
        run = await rt.start(flows.waits, {"amount": 7})
        await until_waiting(rt, run.id, "@sleep#")
        clock.advance(3600)
        await until_waiting(rt, run.id, "@approval:pay#")
    async with Runtime(url, workflows=[flows.waits], clock=clock) as rt:
        await rt.approve(run.id, "rejected", user_id="bo")
        await until_waiting(rt, run.id, "@event:cleared#")
        await rt.send_event(run.id, "cleared", 42)
        result = await rt.handle(run.id).result(timeout=10)
        assert result == {"decision": "rejected", "by": "bo", "event": 42}
        types = [e.type for e in await rt.journal(run.id)]
        assert types.count("timer_fired") == 1  # the sleep fired once, before the restart
        assert types.count("node_waiting") == 3


async def test_a_long_body_resumes_from_a_snapshot_and_a_passivated_one_wakes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    flows.RAN.clear()
    async with Runtime(url, workflows=[flows.many], snapshot_every=10) as rt:
        run = await rt.start(flows.many, {"steps": 40})
        await until_waiting(rt, run.id, "@approval:done?#")
    snap = None
    async with Runtime(url, workflows=[flows.many], passivate_after=0.001) as rt:
        snap = await rt.store.latest_snapshot(run.id)
        assert snap is not None and snap.seq > 70  # recovery folds from it, not from seq 1
        assert rt._system_ref(run.id) is None  # paused with no timer: it holds no actor
        await rt.approve(run.id, "approved", "ana")  # wakes it: replayed from the snapshot
        assert await rt.handle(run.id).result(timeout=10) == sum(2 * i for i in range(40))
    assert len(flows.RAN) == 40  # no step ran again, across a restart and a passivation


async def test_task_groups_and_async_generators_in_a_body_across_a_restart(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    async with Runtime(url, workflows=[flows.libraries]) as rt:
        run = await rt.start(flows.libraries, {"values": [1, 2, 3]})
        await until_waiting(rt, run.id, "@approval:ok#")
    # The runtime stopped with the body's generator unfinished: its loop did not hang.
    async with Runtime(url, workflows=[flows.libraries]) as rt:
        await rt.approve(run.id, "approved", "ana")
        assert await rt.handle(run.id).result(timeout=10) == {
            "added": [101, 102, 103], "doubled": [2, 4, 6], "first": 2, "ok": True,
            "same_ctx": True,
        }  # fmt: skip
        await check_replay(rt, await rt.current_segment(run.id))


async def test_gathered_branches_of_several_calls_replay_in_the_order_they_ran(
    tmp_path: Path,
) -> None:
    """A replay hands the body its recorded results one at a time in the journal's order, so
    branches interleave as they did live (else they take positions in another order: a false
    NondeterminismError after every restart or wake)."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    async with Runtime(url, workflows=[flows.branches]) as rt:
        run = await rt.start(flows.branches, {})
        await until_waiting(rt, run.id, "@approval:A#")
        await until_waiting(rt, run.id, "@approval:B#")
    async with Runtime(url, workflows=[flows.branches], passivate_after=0.001) as rt:
        await rt.approve(run.id, "approved", "ana", node_id="@approval:A#3")
        await until_waiting(rt, run.id, "@approval:B#")
    async with Runtime(url, workflows=[flows.branches]) as rt:  # replayed again, then B
        await rt.approve(run.id, "rejected", "bo")
        assert await rt.handle(run.id).result(timeout=10) == [[2, "approved", 3], ["rejected", 10]]
        assert rt.broken() == {}
