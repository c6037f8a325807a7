"""Continue-as-new: bounded journal segments, state and waits carried over (I9, I3, I4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec
import pytest

from tether import InvalidInput, Runtime, tool
from tether.ir import WorkflowInvalid, WorkflowSyntaxError, check, compile_yaml_text
from tether.ir.types import ContinueAsNew
from tether.persistence import SqliteStore, Turn
from tether.testing import VirtualClock, check_replay

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0)


async def until_live(rt: Runtime, execution_id: str) -> None:
    with anyio.fail_after(10):
        while await rt.live_state(execution_id) is None:
            await anyio.sleep(0)


@tool
async def bump(n: int) -> int:
    return n + 1


LOOP = """
workflow:
  id: loop
  version: "1"
  start: tick
  state_schema: {n: {type: integer}}
  continue_as_new: {max_records: 12}
nodes:
  tick: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: more}
  more:
    type: branch
    cases: [{when: "n < 30", to: tick}]
    default: end
"""


async def test_a_long_loop_rolls_into_bounded_segments_I9(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(LOOP, "loop.yaml")), {"n": 0})
        assert (await run.result(timeout=20))["n"] == 30
        segments = [run.id]
        while (nxt := (await rt.state(segments[-1])).continued_as) is not None:
            segments.append(nxt)
        assert len(segments) >= 3
        assert (await rt.get_execution(segments[-1])).status == "completed"
        for i, eid in enumerate(segments):
            types = [e.type for e in await rt.journal(eid)]
            assert len(types) <= 12 + 4  # the ceiling, plus the turn that crossed it
            assert types[0] == ("execution_started" if i == 0 else "segment_started")
            if i < len(segments) - 1:
                assert types[-1] == "segment_boundary"
            await check_replay(rt, eid)
        completions = 0
        for eid in segments:
            completions += [e.type for e in await rt.journal(eid)].count("node_completed")
        assert completions == 30 + 30  # each tick and each branch decision, once


WAITING = """
workflow: {id: w, version: "1", start: hold, state_schema: {n: {type: integer}}}
nodes:
  hold: {type: wait, event: go, duration: 1h, next: after}
  after: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: end}
"""


async def test_a_requested_roll_carries_waits_and_events_over(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(WAITING, "w.yaml")), {"n": 1})
        await until(lambda: clock.sleepers > 0)
        await rt.continue_as_new(run.id, reason="journal too long")
        assert (await rt.get_execution(run.id)).status == "continued"
        nxt = (await rt.state(run.id)).continued_as
        assert nxt is not None and nxt.startswith(f"{run.id}~2.")
        second = await rt.state(nxt)
        assert "hold" in second.waits and second.segment == 2
        assert second.root_execution_id == run.id
        # Signals on the first id reach the live segment.
        await rt.send_event(run.id, "go", {"n": 41})
        assert (await run.result(timeout=10))["n"] == 42
        await check_replay(rt, nxt)


async def test_a_timer_carried_into_a_new_segment_still_fires_once_I3(db_url: str) -> None:
    clock = VirtualClock()
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        run = await rt.start(rt.register(compile_yaml_text(WAITING, "w.yaml")), {"n": 1})
        await until(lambda: clock.sleepers > 0)
        await rt.continue_as_new(run.id)
        nxt = (await rt.state(run.id)).continued_as
        assert nxt is not None
        await until_live(rt, nxt)  # it has recovered, and armed the timer it carries
        clock.advance(3600)
        state = await rt.wait(run.id, timeout=10)
        assert state.data["hold"]["by"] == "timer" and state.data["n"] == 2
        assert [e.type for e in await rt.journal(nxt)].count("timer_fired") == 1


class _LoseBoundary(SqliteStore):
    """Crashes (once) right after the next segment's first turn, before the boundary."""

    armed = True

    async def append(self, turn: Turn) -> int:
        types = {r.type for r in turn.records}
        if self.armed and "segment_boundary" in types:
            type(self).armed = False
            raise ConnectionError("simulated crash before the boundary commits")
        return await super().append(turn)


async def test_a_crash_between_the_new_segment_and_the_boundary_I4(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    store = _LoseBoundary(db)
    await store.open()
    try:
        async with Runtime(store=store, tools=[bump]) as rt:
            wf = rt.register(compile_yaml_text(WAITING, "w.yaml"))
            run = await rt.start(wf, {"n": 5})
            with pytest.raises(Exception, match="simulated crash"):
                await rt.continue_as_new(run.id)
        # The orphan's first turn is there; the first segment never handed over to it.
        [orphan] = [r for r in await store.list_executions() if r.execution_id != run.id]
        async with Runtime(store=store, tools=[bump]) as rt:
            await rt.send_event(run.id, "go", {"n": 7})  # the first segment goes on
            assert (await rt.handle(run.id).result(timeout=10))["n"] == 8
            orphaned = await rt.journal(orphan.execution_id)  # it waited and did nothing
            assert [e.type for e in orphaned] == ["segment_started"]
        async with Runtime(store=store, tools=[bump]) as rt:
            state = await rt.wait(orphan.execution_id, timeout=10)
            assert state.status == "cancelled" and "orphaned" in (state.error or "")
            assert (await rt.get_execution(run.id)).status == "completed"
    finally:
        await store.close()


async def test_segment_marks_are_refused_in_given_ids(db_url: str) -> None:
    async with Runtime(db_url, tools=[bump]) as rt:
        wf = rt.register(compile_yaml_text(WAITING, "w.yaml"))
        with pytest.raises(InvalidInput, match="reserved for the ids of continued segments"):
            await rt.start(wf, {"n": 1}, execution_id="job~2")


async def test_a_roll_ceiling_too_low_to_make_progress_is_refused() -> None:
    wf = compile_yaml_text(LOOP, "loop.yaml")
    low = msgspec.structs.replace(wf, continue_as_new=ContinueAsNew(max_records=2))
    with pytest.raises(WorkflowInvalid, match="max_records must be at least 10"):
        check(low)
    with pytest.raises(WorkflowSyntaxError, match="whole number >= 10"):
        compile_yaml_text(LOOP.replace("max_records: 12", "max_records: 3"), "l.yaml")
