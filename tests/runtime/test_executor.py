"""The in-process pool on its own: an item is held until its outcome is delivered, so an
execution actor restarted while the outcome waits for room in its mailbox does not reissue
it (it would run twice), and cancelling it then stops nothing and frees no slot twice."""

from __future__ import annotations

import anyio
import pytest

from tether.clock import SystemClock
from tether.runtime.executor import InProcessExecutor, NodeOutcome, WorkItem
from tether.runtime.tools import ToolRegistry, tool

pytestmark = pytest.mark.anyio


@tool
async def echo(i: int) -> int:
    return i


def item(wid: str, i: int) -> WorkItem:
    return WorkItem(
        work_item_id=wid, execution_id="e1", node_id="a", attempt=1, dispatch=1,
        tool="echo", input={"i": i}, fence=1,
    )  # fmt: skip


async def test_an_item_is_held_until_its_outcome_is_delivered_I3() -> None:
    # One worker: the second item runs only after the first one's report is done.
    executor = InProcessExecutor(ToolRegistry([echo]), SystemClock(), max_concurrency=1)
    reporting, release, second = anyio.Event(), anyio.Event(), anyio.Event()
    delivered: list[tuple[str, object]] = []

    async def deliver(outcome: NodeOutcome) -> None:
        if outcome.work_item_id == "first":
            reporting.set()
            await release.wait()  # as a full mailbox makes the pool wait
        delivered.append((outcome.work_item_id, outcome.output))
        if outcome.work_item_id == "second":
            second.set()

    async with anyio.create_task_group() as tg:
        executor.bind(tg, deliver)
        assert executor.submit(item("first", 7))
        with anyio.fail_after(5):
            await reporting.wait()
        assert executor.holds("first")  # its outcome is still to come
        assert not executor.submit(item("first", 7))  # a second hand-out does not run it
        assert not executor.cancel("first")  # nothing left to stop: no slot freed
        assert executor.submit(item("second", 8))
        release.set()
        with anyio.fail_after(5):
            await second.wait()
        assert not executor.holds("first") and not executor.holds("second")
        await executor.aclose()
        tg.cancel_scope.cancel()
    assert delivered == [("first", 7), ("second", 8)]
