"""MCP toolsets of a Pydantic AI agent as durable steps when used in a Tether workflow.

Each server (a ``pydantic_ai.mcp.MCPToolset`` with an ``id``) gets its own steps:
``{agent}.mcp.{id}.get_tools`` lists the server's tools, ``{agent}.mcp.{id}.call_tool`` calls
one, and ``{agent}.mcp.{id}.get_instructions`` reads its instructions (only with
``include_instructions=True``). Like the agent's other steps they are journaled before they run
and their results after: on replay the recorded list or result is returned and the server is not
asked again; a call in flight when the process died is sent again. One step per operation and
server, not one per server, so that the journal names what was done to which server and each
operation keeps its own recorded shape.

The workflow body refuses I/O, so the server's session is opened by each step where the step
runs (Pydantic AI's ``__aenter__``/``__aexit__``, refcounted when steps overlap), never by the
run; the step rebuilds its call from the journal alone (run context, deps, the tool's
definition) on the server the agent was built with.

Example::

    steps = mcp_steps("support", agent, MCPToolset(transport, id="docs"), DepsCodec(None))
    durable = tether_mcp_toolset(server, steps, DepsCodec(None))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai.agent import AbstractAgent
from pydantic_ai.durable_exec import DurableRunContext

# Pydantic AI's shared MCP wrapper of its durable engines: it caches a run's tool list, decides
# when instructions are read, and rebuilds tools from their definitions; Tether supplies the
# steps. Private module, like the control-flow wrapping in toolset.py: pinned by the extra's floor.
from pydantic_ai.durable_exec._toolset import (
    DurableMCPToolset,
    unwrap_tool_call_result,
    wrap_tool_call_result,
)
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import InstructionPart
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.toolsets import ToolsetTool
from pydantic_core import to_jsonable_python

from tether.integrations.pydantic_ai import codec
from tether.runtime.code_first.calls import current_driver
from tether.runtime.code_first.decorators import Step, step

_TOOL_DEFS: TypeAdapter[dict[str, ToolDefinition]] = TypeAdapter(dict[str, ToolDefinition])
_TOOL_DEF: TypeAdapter[ToolDefinition] = TypeAdapter(ToolDefinition)
_INSTRUCTIONS: TypeAdapter[InstructionPart | None] = TypeAdapter(InstructionPart | None)


@dataclass(frozen=True)
class McpSteps:
    """The three steps of one MCP server of an agent."""

    get_tools: Step
    get_instructions: Step
    call_tool: Step

    def all(self) -> list[Step]:
        return [self.get_tools, self.get_instructions, self.call_tool]


def server_id(agent_name: str, server: MCPToolset[Any]) -> str:
    """The server's chosen ``id``: it names its steps, so it must be given and stay the same."""
    # A URL server's id is derived from its hostname unless given; a derived one would rename
    # the steps when the URL moves, as Pydantic AI's DBOS and Temporal integrations also refuse.
    chosen = server._explicit_id
    if not chosen:
        raise ValueError(
            f"TetherAgent {agent_name!r}: the MCP toolset {server.label} needs an id "
            "(MCPToolset(..., id='docs')): it names the toolset's durable steps"
        )
    return chosen


def mcp_steps(
    agent_name: str,
    agent: AbstractAgent[Any, Any],
    server: MCPToolset[Any],
    deps: codec.DepsCodec,
    **options: Any,
) -> McpSteps:
    """The steps ``{agent_name}.mcp.{id}.*`` of ``server``; ``options``: :func:`tether.step`'s."""
    prefix = f"{agent_name}.mcp.{server_id(agent_name, server)}"

    def restore(run: dict[str, Any], deps_data: Any) -> RunContext[Any]:
        return DurableRunContext.restore(
            run, deps=deps.load(deps_data), agent=agent, engine_spec=codec.TETHER_SPEC
        )

    async def get_tools(run: dict[str, Any], deps_data: Any) -> Any:
        ctx = restore(run, deps_data)
        # The run's own copy when auth/headers are per run, else the server itself.
        async with await server.for_run(ctx) as session:
            tools = await session.get_tools(ctx)
        return _TOOL_DEFS.dump_python({n: t.tool_def for n, t in tools.items()}, mode="json")

    async def get_instructions(run: dict[str, Any], deps_data: Any) -> Any:
        ctx = restore(run, deps_data)
        # Instructions arrive with the session's handshake: they need it open.
        async with await server.for_run(ctx) as session:
            part = await session.get_instructions(ctx)
        return _INSTRUCTIONS.dump_python(part, mode="json")

    async def call_tool(name: str, args: dict[str, Any], tool_def: dict[str, Any],
                        run: dict[str, Any], deps_data: Any) -> Any:  # fmt: skip
        ctx = restore(run, deps_data)
        async with await server.for_run(ctx) as session:
            tool = session.tool_for_tool_def(_TOOL_DEF.validate_python(tool_def), ctx=ctx)
            result = await wrap_tool_call_result(session.call_tool(name, args, ctx, tool))
        return codec.dump_tool_result(result)

    return McpSteps(
        get_tools=step(name=f"{prefix}.get_tools", **options)(get_tools),
        get_instructions=step(name=f"{prefix}.get_instructions", **options)(get_instructions),
        call_tool=step(name=f"{prefix}.call_tool", **options)(call_tool),
    )


def tether_mcp_toolset(
    server: MCPToolset[Any], steps: McpSteps, deps: codec.DepsCodec
) -> DurableMCPToolset[Any]:
    """``server`` as the agent's run sees it in a workflow body: each operation is a step."""

    def journaled(ctx: RunContext[Any]) -> dict[str, Any]:
        return {"run": codec.dump_run_context(ctx), "deps_data": deps.dump(ctx.deps)}

    async def get_tools(ctx: RunContext[Any]) -> dict[str, ToolDefinition]:
        return _TOOL_DEFS.validate_python(await steps.get_tools(**journaled(ctx)))

    async def get_instructions(ctx: RunContext[Any]) -> InstructionPart | None:
        return _INSTRUCTIONS.validate_python(await steps.get_instructions(**journaled(ctx)))

    async def call_tool(name: str, tool_args: dict[str, Any], *, ctx: RunContext[Any],
                        tool: ToolsetTool[Any], config: Mapping[str, Any]) -> Any:  # fmt: skip
        payload = await steps.call_tool(
            name=name,
            args=to_jsonable_python(tool_args),
            tool_def=_TOOL_DEF.dump_python(tool.tool_def, mode="json"),
            **journaled(ctx),
        )
        return unwrap_tool_call_result(codec.load_tool_result(payload))

    return DurableMCPToolset(
        server,
        in_durable_context=lambda: current_driver() is not None,
        get_tools_operation=get_tools,
        get_instructions_operation=get_instructions,
        call_tool_operation=call_tool,
        # Per-tool step options are not offered: every call takes the agent's tool_step options.
        resolve_tool_config=lambda tool, name: {},
        # The run never enters the server (its body refuses I/O); each step opens a session.
        lifecycle="enter-never",
    )
