"""Bad input gets a clear error and loses nothing (I10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools import add_one

from tether import ExecutionNotFound, Runtime
from tether.ir import WorkflowError, WorkflowInvalid, WorkflowSyntaxError
from tether.runtime.tools import UnknownTool

pytestmark = pytest.mark.anyio


async def test_malformed_yaml_names_file_and_line(db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflow:\n  id: x\n nodes: [\n")
    async with Runtime(db_url) as rt:
        with pytest.raises(WorkflowSyntaxError, match=r"bad\.yaml:\d+"):
            rt.register_yaml(bad)


async def test_the_shipped_invalid_example_is_refused(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        with pytest.raises(WorkflowError, match=r"invalid\.yaml:\d+"):
            rt.register_yaml(examples / "invalid.yaml")


async def test_invalid_ir_dict_lists_its_problems(db_url: str) -> None:
    ir = {
        "workflow_id": "w",
        "version": "1",
        "start_node": "a",
        "nodes": {"a": {"id": "a", "kind": {"type": "tool", "tool_ref": "add_one"}}},
        "edges": [{"from": "a", "to": "nowhere", "condition": None}],
    }
    async with Runtime(db_url, tools=[add_one]) as rt:
        with pytest.raises(WorkflowInvalid, match="nowhere"):
            rt.register(ir)


async def test_a_tool_that_is_not_registered_is_named_once_with_its_nodes(
    db_url: str, examples: Path
) -> None:
    async with Runtime(db_url) as rt:
        with pytest.raises(UnknownTool) as refused:
            rt.register_yaml(examples / "counter.yaml")  # add_one at three nodes
    message = str(refused.value)
    assert message.count("'add_one' is not registered") == 1
    assert "used by nodes 'first', 'second', 'third'" in message


async def test_unknown_execution_id(db_url: str, examples: Path) -> None:
    async with Runtime(db_url, tools=[add_one]) as rt:
        rt.register_yaml(examples / "counter.yaml")
        for call in (rt.journal, rt.state, rt.get_execution, rt.cancel, rt.wait):
            with pytest.raises(ExecutionNotFound, match="exec_missing"):
                await call("exec_missing")
        run = await rt.start("counter", {"n": 0})  # the runtime still serves
        assert await run.result() == {"n": 3}


async def test_jamjet_sdk_ir_runs(db_url: str) -> None:
    jamjet = pytest.importorskip("jamjet.workflow.ir_compiler")
    ir = jamjet.compile_yaml(
        """
workflow: {id: sdk-flow, version: 0.1.0}
nodes:
  first: {type: tool, tool_ref: add_one, next: second}
  second: {type: tool, tool_ref: add_one, next: end}
"""
    )
    async with Runtime(db_url, tools=[add_one]) as rt:
        wf = rt.register(ir)
        run = await rt.start(wf, {"n": 1})
        result = await run.result()
        # The SDK's IR has no output keys: each node writes under its own id.
        assert result == {"n": 1, "first": 2, "second": 2}
