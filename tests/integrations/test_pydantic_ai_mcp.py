"""MCP toolsets of a Pydantic AI agent on Tether: the demo MCP server (a real subprocess over
stdio, tests/agents/mcp_servers) used by an agent whose model is Pydantic AI's FunctionModel.
Listing its tools and calling one are journaled steps; a restart does not call it again;
a call in flight when the process was killed is sent again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip(
    "pydantic_ai.mcp", exc_type=ImportError
)  # needs Pydantic AI's MCP extra (the fastmcp client)

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import CallToolFunc, MCPToolset
from pydantic_ai.messages import ModelResponse, TextPart
from pydantic_ai.tools import RunContext

from tests.integrations.test_pydantic_ai import RAN, calls, node_ids, scripted, until_waiting
from tether import Runtime
from tether.integrations.pydantic_ai import TetherAgent
from tether.testing import check_replay

DEMO = Path(__file__).parents[1] / "agents" / "mcp_servers" / "demo_server.py"
pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    RAN.clear()


async def counted(ctx: RunContext[Any], call: CallToolFunc, name: str, args: dict[str, Any]) -> Any:
    """Runs in the step around each call really sent to the server: what the tests count."""
    RAN.append(f"mcp {name} {args}")
    return await call(name, args)


def demo_server(id: str | None = "demo") -> MCPToolset[Any]:
    transport = StdioTransport(command=sys.executable, args=[str(DEMO), "stdio"])
    return MCPToolset(transport, id=id, process_tool_call=counted)


def adder_agent() -> TetherAgent[None, str]:
    """Adds with the MCP server, then asks a person before it reports the sum."""
    model = scripted(
        calls("add", {"a": 2, "b": 3}, "c1"),
        calls("report", {"total": 5}, "c2"),
        ModelResponse(parts=[TextPart("the sum is 5")]),
    )
    agent = Agent(model, name="adder", toolsets=[demo_server()])

    @agent.tool_plain(requires_approval=True)
    async def report(total: int) -> str:
        RAN.append(f"report {total}")
        return f"reported {total}"

    return TetherAgent(agent)


async def test_listing_and_calling_an_mcp_server_are_steps_not_repeated_after_a_restart(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    agent = adder_agent()
    async with Runtime(url, workflows=[agent.workflow]) as rt:
        run = await rt.start(agent.workflow, {"prompt": "add 2 and 3"})
        await until_waiting(rt, run.id, "@approval:adder.report#")
    assert RAN == ["model 0", "mcp add {'a': 2, 'b': 3}", "model 1"]
    agent = adder_agent()  # a new process: the same agent built again
    async with Runtime(url, workflows=[agent.workflow]) as rt:
        await rt.approve(run.id, "approved", user_id="ana")
        result = await rt.handle(run.id).result(timeout=30)
        await check_replay(rt, run.id)
        scheduled = node_ids(await rt.journal(run.id), "node_scheduled")
    assert result["output"] == "the sum is 5"
    # The MCP call committed before the restart was answered from the journal.
    assert RAN == ["model 0", "mcp add {'a': 2, 'b': 3}", "model 1", "report 5", "model 2"]
    [returned] = [p for m in result["messages"] for p in m["parts"]
                  if p["part_kind"] == "tool-return" and p["tool_name"] == "add"]  # fmt: skip
    assert returned["content"] == {"total": 5, "terms": 2}
    steps = [s.split("#")[0] for s in scheduled]
    # Listed once per run (Pydantic AI caches a run's MCP tool list), called once.
    assert steps.count("adder.mcp.demo.get_tools") == 1
    assert steps.count("adder.mcp.demo.call_tool") == 1
    assert steps.index("adder.mcp.demo.call_tool") < steps.index("adder.call_tool")


def test_an_mcp_server_without_an_id_is_refused() -> None:
    with pytest.raises(ValueError, match=r"MCP toolset .* needs an id"):
        TetherAgent(Agent(scripted(), name="adder", toolsets=[demo_server(id=None)]))


def test_two_mcp_servers_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="two MCP toolsets have the id 'demo'"):
        TetherAgent(Agent(scripted(), name="adder", toolsets=[demo_server(), demo_server()]))


@pytest.mark.slow
async def test_sigkill_with_an_mcp_call_in_flight_sends_only_that_call_again_I12(
    tmp_path: Path,
) -> None:
    from tests.integrations.pyai_mcp_crash_child import make_agent, make_runtime

    db, log = tmp_path / "rt.db", tmp_path / "mcp.log"
    here = Path(__file__).parent
    child = subprocess.Popen(
        [sys.executable, str(here / "pyai_mcp_crash_child.py"), str(db), str(log)],
        stdout=subprocess.PIPE, text=True, cwd=here.parents[1],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        execution_id = child.stdout.readline().strip()
        with anyio.fail_after(30):  # another process: its log is what to watch
            while "echo" not in (log.read_text().split() if log.exists() else []):
                await anyio.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    agent = make_agent(str(log), hold=False)
    async with make_runtime(str(db), agent) as rt:
        state = await rt.wait(execution_id, timeout=30)
        await check_replay(rt, execution_id)
    assert state.status == "completed", state.error
    assert state.result["output"] == "the sum is 5"
    # add was committed before the kill: not sent again; echo was in flight: sent again.
    assert log.read_text().splitlines() == ["add", "echo", "echo"]
