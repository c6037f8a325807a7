"""Pending approvals across runs are complete and paged (issue 18): every paused run once,
whatever the page size, including runs that pause while someone pages; the whole list walks
every page (it used to stop at the first 10,000 paused runs)."""

from __future__ import annotations

import anyio
import pytest

from tether import InvalidInput, Runtime, tool
from tether.ir import compile_yaml_text
from tether.persistence.pages import PagePosition
from tether.runtime.signals import pending_approvals
from tether.testing import VirtualClock

pytestmark = pytest.mark.anyio

FLOW = """
workflow: {id: gate, version: "1", start: review, state_schema: {n: {type: integer}}}
nodes:
  review: {type: human_approval, description: "Go?", next: bump}
  bump: {type: tool, tool: bump, input: {n: $n}, output_key: n, next: end}
"""


@tool
async def bump(n: int) -> int:
    return n + 1


async def paused(rt: Runtime, run_id: str) -> None:
    with anyio.fail_after(10):
        while (await rt.get_execution(run_id)).status != "paused":
            await anyio.sleep(0)


async def test_pages_visit_every_paused_run_once(db_url: str) -> None:
    clock = VirtualClock()  # each start a second after the last: the order is the start order
    async with Runtime(db_url, tools=[bump], clock=clock) as rt:
        wf = rt.register(compile_yaml_text(FLOW, "gate.yaml"))
        ids = []
        for i in range(7):
            clock.advance(1)
            run = await rt.start(wf, {"n": i}, execution_id=f"run-{i}")
            await paused(rt, run.id)
            ids.append(run.id)
        clock.advance(1)
        done = await rt.start(wf, {"n": 9}, execution_id="decided")
        await paused(rt, done.id)
        await rt.approve(done.id, "approved", "alice")
        await done.result(timeout=10)

        seen: list[str] = []
        after: PagePosition | None = None
        late = 0
        while True:
            page = await rt.pending_approvals_page(after, runs=3)
            assert len(page.approvals) <= 3
            seen += [p.execution_id for p in page.approvals]
            if page.next is None:
                break
            after = page.next
            late += 1  # a run pausing mid-way is newer than every page: it comes last
            clock.advance(1)
            run = await rt.start(wf, {"n": 0}, execution_id=f"late-{late}")
            await paused(rt, run.id)
        assert seen[:7] == ids  # runs oldest first, each once
        assert seen[7:] == [f"late-{i}" for i in range(1, late + 1)]

        everything = await pending_approvals(rt.store, rt.live_state, page_runs=2)
        assert sorted(p.execution_id for p in everything) == sorted(seen)
        assert everything == await rt.pending_approvals()
        with pytest.raises(InvalidInput, match="runs must be 1-1000"):
            await rt.pending_approvals_page(runs=0)
