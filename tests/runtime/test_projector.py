"""The runtime's projector: the run views follow the journal by themselves (no read has to
ask), reads that promise the present wait for it, and an engine started on a feed left
behind (a crash, an older engine) catches up from the persisted position."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tether import Runtime, tool
from tether.clock import SystemClock
from tether.ir import compile_yaml_text
from tether.persistence import IndexUpdate, NewRecord, SqliteStore, Turn
from tether.persistence.pages import ExecutionQuery
from tether.runtime.internals import runtime_internals
from tether.runtime.projector import Projector

pytestmark = pytest.mark.anyio

FLOW = """
workflow: {id: pv, version: "1", state_schema: {n: {type: integer, default: 0}}}
nodes:
  a: {type: tool, tool: inc, output_key: n, next: review}
  review: {type: human_approval, description: "ok?", next: b}
  b: {type: tool, tool: inc, output_key: n, next: end}
"""


@tool
async def inc(n: int) -> int:
    return n + 1


async def _until_counted(rt: Runtime, want: dict[str, int]) -> None:
    with anyio.fail_after(10):
        while await rt.store.count_executions(ExecutionQuery()) != want:
            await anyio.sleep(0.01)  # polling the views' own answer, with a deadline


async def test_the_views_follow_the_journal_without_a_read_asking(tmp_path: Path) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[inc]) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "pv.yaml"))
        run = await rt.start(wf, {})
        await _until_counted(rt, {"paused": 1})  # the projector's own task moved them
        [row] = await rt.store.page_executions(ExecutionQuery(status="paused"))
        assert row.execution_id == run.id
        await rt.approve(run.id, "approved", "ann")
        assert (await run.result())["n"] == 2
        await _until_counted(rt, {"completed": 1})
        lag = runtime_internals(rt).services.views.lag
        assert lag.nudged >= 1 and lag.projected >= 3  # started, paused, running, completed
        assert await rt.store.views_behind() == 0


async def test_pending_approvals_wait_for_the_pauses_committed_before_the_call(
    tmp_path: Path,
) -> None:
    async with Runtime(f"sqlite:///{tmp_path / 'rt.db'}", tools=[inc]) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "pv.yaml"))
        runs = [await rt.start(wf, {}) for _ in range(5)]
        with anyio.fail_after(10):
            for run in runs:
                while (await rt.state(run.id)).display_status != "paused":
                    await anyio.sleep(0.01)
        # Every pause is committed: the complete list holds all of them, however far the
        # projector's own task had got.
        pending = await rt.pending_approvals()
        assert sorted(p.execution_id for p in pending) == sorted(r.id for r in runs)


async def test_an_engine_started_on_a_feed_left_behind_catches_up(tmp_path: Path) -> None:
    db = tmp_path / "rt.db"
    store = SqliteStore(db)
    await store.open()
    for i in range(30):  # runs an earlier engine finished, its projector never ran
        index = IndexUpdate("completed", i, workflow_id="old", workflow_version="1",
                            created_at_ms=i)  # fmt: skip
        await store.append(Turn(f"old{i}", 1, (NewRecord("x", b"x"),), index=index))
    await store.project_views(limit=7)  # part of the way
    assert await store.views_behind() == 23
    await store.close()
    async with Runtime(f"sqlite:///{db}", tools=[inc]) as rt:
        await _until_counted(rt, {"completed": 30})  # from the position it had persisted


async def test_a_read_between_a_status_turns_commit_and_its_nudge_still_projects_it(
    tmp_path: Path,
) -> None:
    """A turn's commit is visible to readers before the actor gets on to nudge the projector:
    a read that promises the present, coming in between, must not take the views as clean
    (an agent-approval test saw an empty pending list for a run it had seen paused)."""
    async with SqliteStore(tmp_path / "p.db") as store:
        projector = Projector(store, SystemClock())
        await projector.catch_up()  # clean: nothing to project
        index = IndexUpdate("paused", 1, workflow_id="w", workflow_version="1", created_at_ms=1)
        with projector.writing():
            await store.append(Turn("e1", 1, (NewRecord("x", b"x"),), index=index))
            assert await projector.catch_up() == 1  # committed, not yet nudged
        assert await store.count_executions(ExecutionQuery()) == {"paused": 1}
