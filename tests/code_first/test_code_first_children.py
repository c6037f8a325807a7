"""ctx.child: a child workflow is a run of its own, started once its parent's turn is durable,
its end told to the parent once, across restarts of the engine."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.code_first import flows
from tether import InvalidInput, Runtime
from tether.testing import check_replay, crash_and_recover, journal_length

pytestmark = pytest.mark.anyio


async def test_children_run_in_parallel_and_a_failed_one_is_the_bodys_to_handle(
    tmp_path: Path,
) -> None:
    async with Runtime(
        f"sqlite:///{tmp_path / 'c.db'}", workflows=[flows.parent, flows.child_sum]
    ) as rt:
        run = await rt.start(flows.parent, {"values": [1, 2, 3]})
        assert await run.result(timeout=10) == {"first": 12, "both": [2, 4], "failed": "failed"}
        await check_replay(rt, run.id)
        first_child = f"{run.id}~child1.1"
        assert (await rt.get_execution(first_child)).status == "completed"
        assert (await rt.state(first_child)).result == 12
        with pytest.raises(InvalidInput, match="are the runtime's"):  # nobody else may
            await rt.send_event(run.id, f"tether.child:{first_child}", {"status": "completed"})


async def test_a_parent_waiting_on_a_child_across_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    bodies = [flows.parent, flows.child_sum]
    async with Runtime(url, workflows=bodies) as rt:
        run = await rt.start(flows.parent, {"values": [5], "wait": True})
        child = f"{run.id}~child1.1"
        with anyio.fail_after(10):
            while (row := await rt.store.get_execution(child)) is None or row.status != "paused":
                await anyio.sleep(0)
    async with Runtime(url, workflows=bodies) as rt:
        await rt.approve(child, "approved", "ana")
        result = await rt.handle(run.id).result(timeout=10)
        assert result == {"first": 10, "both": [2, 4], "failed": "failed"}
        # The child was started once: one execution_started in its journal.
        assert [e.type for e in await rt.journal(child)].count("execution_started") == 1


async def test_a_crash_anywhere_in_a_parent_loses_no_child_and_starts_none_twice() -> None:
    data = {"values": [1, 2]}
    total = await journal_length(flows.parent, data, tools=[])
    for cut in range(total + 1):
        report = await crash_and_recover(flows.parent, data, tools=[], cut=cut)
        assert report.state.status == "completed", (cut, report.state.error)
        assert report.state.result == {"first": 6, "both": [2, 4], "failed": "failed"}, cut
        assert report.reran_settled == [] and report.unjournaled == [], cut


async def test_a_child_that_continues_as_new_is_heard_of_when_it_really_ends(
    tmp_path: Path,
) -> None:
    async with Runtime(
        f"sqlite:///{tmp_path / 'c.db'}", workflows=[flows.parent_of_rounds, flows.rounds]
    ) as rt:
        run = await rt.start(flows.parent_of_rounds)
        assert await run.result(timeout=10) == {"total": 6, "rounds": 3}


async def test_nobody_else_may_spend_a_childs_event_id(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'c.db'}", workflows=[flows.long_wait]) as rt:
        run = await rt.start(flows.long_wait)
        with pytest.raises(InvalidInput, match=r"ids starting with 'tether\.'"):
            await rt.send_event(run.id, "never", 1, event_id=f"tether.child-done:{run.id}~child1.1")
