"""The embedded runtime as a user drives it: YAML in, durable runs out."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from tools import add_one, double, label

from tether import (
    ExecutionFailedError,
    InvalidInput,
    Runtime,
    UnsupportedNode,
    WorkflowNotFound,
    tool,
)
from tether.ir import compile_yaml_text
from tether.testing import check_replay

pytestmark = pytest.mark.anyio


async def test_counter_example_runs_to_the_end_I1(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register_yaml(examples / "counter.yaml")
        run = await rt.start(wf, input={"n": 0})
        assert await run.result() == {"n": 3}
        types = [e.type for e in await rt.journal(run.id)]
        assert types[0] == "execution_started"
        assert types[-1] == "execution_completed"
        assert types.count("node_completed") == 3
        assert types.count("node_scheduled") == 3
        await check_replay(rt, run.id)
        row = await rt.get_execution(run.id)
        assert row.status == "completed"


async def test_branch_parallel_and_join(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one, double, label]) as rt:
        wf = rt.register_yaml(examples / "branching.yaml")
        for n, tag, incremented in ((0, "small", 2), (5, "big", 6)):
            run = await rt.start(wf, input={"n": n})
            assert await run.result() == tag  # the end node returns its `output` key
            state = await run.state()
            assert state.data["incremented"] == incremented
            assert ("doubled" in state.data) == (n > 3)
            await check_replay(rt, run.id)


async def test_start_by_workflow_id_and_unknown_workflow(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register_yaml(examples / "counter.yaml")
        run = await rt.start(wf.workflow_id, {"n": 1})
        assert await run.result() == {"n": 4}
        with pytest.raises(WorkflowNotFound, match="nope"):
            await rt.start("nope", {})


async def test_input_that_does_not_fit_the_schema_is_refused(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register_yaml(examples / "counter.yaml")
        with pytest.raises(InvalidInput, match="'n' is integer, got string"):
            await rt.start(wf, {"n": "zero"})
        assert await rt.list_executions() == []


async def test_unsupported_node_kind_is_refused_at_registration(db_url: str) -> None:
    text = """
workflow: {id: m, version: "1"}
nodes:
  ask: {type: a2a_task, remote_agent: "http://x", next: end}
"""
    # The core runtime: tether.Runtime runs a2a_task through its agents' node kinds.
    from tether.runtime import Runtime as CoreRuntime

    async with CoreRuntime(db_url) as rt:
        with pytest.raises(UnsupportedNode, match="node 'ask' is a 'a2a_task' node"):
            rt.register(compile_yaml_text(text, "m.yaml"))


async def test_a_model_node_the_core_runtime_cannot_run_says_what_can(db_url: str) -> None:
    from tether.runtime import Runtime as CoreRuntime

    text = """
workflow: {id: m, version: "1"}
nodes:
  ask: {type: model, model: gpt-4o-mini, prompt: hi, next: end}
"""
    async with CoreRuntime(db_url) as rt:
        with pytest.raises(UnsupportedNode, match=r"tether\.Runtime has them"):
            rt.register(compile_yaml_text(text, "m.yaml"))


async def test_same_execution_id_starts_once(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register_yaml(examples / "counter.yaml")
        run = await rt.start(wf, {"n": 0}, execution_id="exec_fixed")
        await run.result()
        again = await rt.start(wf, {"n": 0}, execution_id="exec_fixed")
        assert await again.result() == {"n": 3}
        starts = [e for e in await rt.journal("exec_fixed") if e.type == "execution_started"]
        assert len(starts) == 1


async def test_tool_output_of_the_wrong_type_fails_the_node(db_url: str) -> None:
    @tool(name="add_one")
    async def wrong(n: int) -> str:
        return "not a number"

    text = """
workflow: {id: w, version: "1", state_schema: {n: integer}}
nodes:
  inc: {type: tool, tool: add_one, output_key: n}
"""
    async with Runtime(db_url, tools=[wrong]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(text, "w.yaml")), {"n": 0})
        with pytest.raises(ExecutionFailedError, match="'n' is integer, got string"):
            await run.result()
        await check_replay(rt, run.id)


async def test_many_concurrent_runs_share_one_journal(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register_yaml(examples / "counter.yaml")
        runs = [await rt.start(wf, {"n": i}) for i in range(50)]
        results = [await r.result() for r in runs]
        assert results == [{"n": i + 3} for i in range(50)]
        for r in runs[:5]:
            await check_replay(rt, r.id)


async def test_result_wait_can_time_out(db_url: str) -> None:
    gate = anyio.Event()

    @tool
    async def block() -> int:
        await gate.wait()
        return 1

    text = """
workflow: {id: b, version: "1"}
nodes:
  wait_here: {type: tool, tool: block}
"""
    async with Runtime(db_url, tools=[block]) as rt:
        run = await rt.start(rt.register(compile_yaml_text(text, "b.yaml")))
        with pytest.raises(TimeoutError):
            await run.result(timeout=0.05)
        gate.set()
        assert await run.result() == {"wait_here": 1}
