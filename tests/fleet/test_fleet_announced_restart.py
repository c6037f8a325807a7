"""A run held for a tool only workers serve outlives an engine restart: the new engine holds it
again from its journal (nothing about the hold is journaled) and finishes it once a worker
announcing the tool joins; the engine's own pool never takes the tool's queue."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tether import Runtime, tool
from tether.fleet.transport import ZmqFleet
from tether.fleet.worker import Worker
from tether.ir import compile_yaml_text
from tether.runtime.internals import runtime_internals
from tether.runtime.tools import UnknownTool
from tether.testing import check_replay

pytestmark = pytest.mark.anyio


@tool
async def shout(text: str) -> str:
    return text.upper()  # served by the worker only: the engines below do not have it


WF = """
workflow: {id: held, version: "1", start: a}
nodes:
  a: {type: tool, tool: shout, input: {text: $word}, output_key: loud,
      labels: {queue: remote}, next: end}
"""


async def _held(rt: Runtime, execution_id: str) -> list[str]:
    """The run's hold reasons once it has one (its recovery plans in the actor's own task)."""
    announced = runtime_internals(rt).services.announced
    assert announced is not None
    with anyio.fail_after(20):
        while not announced.holds_of(execution_id):
            await anyio.sleep(0.01)
    return [h.reason for h in announced.holds_of(execution_id)]


async def test_a_held_run_is_held_again_after_a_restart_and_finishes_when_a_worker_joins(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    waiting = ["waiting for a worker serving tool 'shout' on queue 'remote'"]
    async with Runtime(url, transports=[ZmqFleet("tcp://127.0.0.1:0")]) as rt:
        wf = rt.register(compile_yaml_text(WF, "held.yaml"))
        run = await rt.start(wf, {"word": "hi"})
        assert await _held(rt, run.id) == waiting
        assert (await rt.state(run.id)).status == "running"
    fleet = ZmqFleet("tcp://127.0.0.1:0")
    async with Runtime(url, transports=[fleet]) as rt:
        assert await _held(rt, run.id) == waiting
        worker = Worker(fleet.endpoint, tools=[shout], queues=["remote"], worker_id="w-remote")
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            state = await rt.wait(run.id, timeout=30)
            worker.request_stop()
        assert state.status == "completed" and state.data["loud"] == "HI"
        journal = await rt.journal(run.id)
        done = [e.record for e in journal if e.record.type == "node_completed"]
        assert [r.worker_id for r in done] == ["w-remote"]  # not the engine's pool
        await check_replay(rt, run.id)


async def test_an_unknown_tool_on_the_default_queue_is_refused_naming_both_ways_to_serve_it(
    tmp_path: Path,
) -> None:
    """Most likely a module the engine was not started with: the pool serves the default
    queue, so a tool only workers serve could not have it (see the queue rules)."""
    unlabelled = WF.replace("labels: {queue: remote}, ", "").replace("id: held", "id: plain")
    async with Runtime(
        f"sqlite:///{tmp_path / 'e.db'}", transports=[ZmqFleet("tcp://127.0.0.1:0")]
    ) as rt:
        with pytest.raises(UnknownTool) as refused:
            rt.register(compile_yaml_text(unlabelled, "plain.yaml"))
    said = str(refused.value)
    assert "tool 'shout' (used by node 'a') is not registered" in said
    assert "no worker announces it" in said and "`tether dev --modules ...`" in said
    assert "`tether worker --queue NAME --modules ...`" in said
