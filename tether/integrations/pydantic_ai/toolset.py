"""Function tools of a Pydantic AI agent as durable steps when called in a Tether workflow.

Each call is the agent's ``{name}.call_tool`` step: the tool's name, its arguments, the run
context and the deps are journaled as JSON data before the tool runs, and its result (or the
``ModelRetry``/``ApprovalRequired``/``CallDeferred`` it raised, as data) after; on replay the
recorded result is returned and the tool does not run again. The step rebuilds the call from
the journal alone (the toolset by key, the context by ``DurableRunContext``), so a call that
was in flight when the process died runs again after a restart without its workflow body.

Example::

    calls = call_tool_step("support", agent, {"<agent>": agent_tools}, DepsCodec(None))
    durable = TetherFunctionToolset(agent_tools, key="<agent>", call=calls, deps=DepsCodec(None))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_ai import FunctionToolset
from pydantic_ai.agent import AbstractAgent
from pydantic_ai.durable_exec import (
    DurableRunContext,
    ToolsetCallToolParams,
    revalidate_function_call,
)

# The canonical control-flow-as-data wrapping every Pydantic AI durable engine shares; the
# engine guide asks integrations not to copy it. Private module: pinned by the extra's floor.
from pydantic_ai.durable_exec._toolset import unwrap_tool_call_result, wrap_tool_call_result
from pydantic_ai.tools import AgentDepsT, RunContext
from pydantic_ai.toolsets import ToolsetTool, WrapperToolset
from pydantic_core import to_jsonable_python

from tether.integrations.pydantic_ai import codec
from tether.runtime.code_first.calls import current_driver
from tether.runtime.code_first.decorators import Step, step


def call_tool_step(
    agent_name: str,
    agent: AbstractAgent[Any, Any],
    toolsets: Mapping[str, FunctionToolset[Any]],
    deps: codec.DepsCodec,
    **options: Any,
) -> Step:
    """The step ``{agent_name}.call_tool``: one call of a function tool of ``toolsets``."""

    async def call_tool(toolset: str, name: str, args: dict[str, Any], run: dict[str, Any],
                        deps_data: Any) -> Any:  # fmt: skip
        found = toolsets[toolset]
        ctx = DurableRunContext.restore(
            run, deps=deps.load(deps_data), agent=agent, engine_spec=codec.TETHER_SPEC
        )
        call = ToolsetCallToolParams(name, tool_args=args, ctx=ctx, tool=None)
        call = await revalidate_function_call(found, call, engine_spec=codec.TETHER_SPEC)
        assert call.tool is not None  # revalidate_function_call looked it up
        result = await wrap_tool_call_result(found.call_tool(name, call.tool_args, ctx, call.tool))
        return codec.dump_tool_result(result)

    return step(name=f"{agent_name}.call_tool", **options)(call_tool)


class TetherFunctionToolset(WrapperToolset[AgentDepsT]):
    """A function toolset whose calls go through the agent's ``call_tool`` step in a workflow."""

    def __init__(
        self, wrapped: FunctionToolset[AgentDepsT], *, key: str, call: Step, deps: codec.DepsCodec
    ) -> None:
        super().__init__(wrapped)
        self._key = key
        self._call = call
        self._deps = deps

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[AgentDepsT],
        tool: ToolsetTool[AgentDepsT],
    ) -> Any:  # fmt: skip
        if current_driver() is None:
            return await super().call_tool(name, tool_args, ctx, tool)
        payload = await self._call(
            toolset=self._key,
            name=name,
            args=to_jsonable_python(tool_args),
            run=codec.dump_run_context(ctx),
            deps_data=self._deps.dump(ctx.deps),
        )
        return unwrap_tool_call_result(codec.load_tool_result(payload))
