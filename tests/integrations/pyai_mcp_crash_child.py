"""Child process for the SIGKILL test of a Pydantic AI agent using an MCP server on Tether: the
demo MCP server over stdio, a FunctionModel that calls ``add`` then ``echo``; each call sent to
the server is logged, and with ``hold`` the ``echo`` call stays in flight until the process dies.

python pyai_mcp_crash_child.py DB LOG  -> prints the execution id, runs until killed
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import CallToolFunc, MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.tools import RunContext

from tether import Runtime
from tether.integrations.pydantic_ai import TetherAgent

DEMO = Path(__file__).parents[1] / "agents" / "mcp_servers" / "demo_server.py"
REPLIES = [
    ModelResponse(parts=[ToolCallPart("add", {"a": 2, "b": 3}, tool_call_id="c1")]),
    ModelResponse(parts=[ToolCallPart("echo", {"text": "5"}, tool_call_id="c2")]),
    ModelResponse(parts=[TextPart("the sum is 5")]),
]


def make_agent(log: str, *, hold: bool) -> TetherAgent[None, str]:
    async def logged(ctx: RunContext[Any], call: CallToolFunc, name: str,
                     args: dict[str, Any]) -> Any:  # fmt: skip
        with open(log, "a") as f:
            f.write(f"{name}\n")
        if hold and name == "echo":  # in flight until the parent kills this process
            await anyio.Event().wait()
        return await call(name, args)

    def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return REPLIES[len([m for m in messages if m.kind == "response"])]

    transport = StdioTransport(command=sys.executable, args=[str(DEMO), "stdio"])
    server = MCPToolset(transport, id="demo", process_tool_call=logged)
    return TetherAgent(Agent(FunctionModel(answer), name="adder", toolsets=[server]))


def make_runtime(db: str, agent: TetherAgent[None, str]) -> Runtime:
    return Runtime(f"sqlite:///{db}", workflows=[agent.workflow])


async def main(db: str, log: str) -> None:
    agent = make_agent(log, hold=True)
    async with make_runtime(db, agent) as rt:
        run = await rt.start(agent.workflow, {"prompt": "add 2 and 3, then say it"})
        print(run.id, flush=True)
        await run.result()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:3])
