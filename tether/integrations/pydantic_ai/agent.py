"""``TetherAgent``: a Pydantic AI agent whose runs are durable Tether workflows.

Inside a workflow body, ``await agent.run(...)`` runs the agent's loop in the body: each model
request is the step ``{name}.model_request``, each function tool call the step
``{name}.call_tool`` and each MCP server's tool listing and calls the steps
``{name}.mcp.{id}.get_tools`` and ``{name}.mcp.{id}.call_tool`` (see :mod:`.mcp_toolset`),
journaled before they are made and their results before the loop goes on; a tool that needs
approval pauses the run on ``ctx.approval`` until a person decides (``rt.approve``). After a
crash the body replays: committed requests and tool calls are answered from the journal, not
sent again. ``agent.workflow`` is a ready-made workflow that runs the agent on its input
(``{"prompt": ..., "deps": ..., "message_history": [...]}``). Outside a workflow body, ``run``
is the plain agent's.

Example::

    agent = TetherAgent(Agent("openai:gpt-4o", name="support", tools=[lookup_order]))

    async with Runtime("sqlite:///tether.db", workflows=[agent.workflow]) as rt:
        out = await rt.run(agent.workflow, {"prompt": "Where is order 42?"})
        print(out["output"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeGuard

from pydantic_ai import Agent, FunctionToolset
from pydantic_ai.agent import AgentRunResult
from pydantic_ai.capabilities import HandleDeferredToolCalls
from pydantic_ai.durable_exec import conversation_id_from_run_id
from pydantic_ai.models import Model, infer_model
from pydantic_ai.output import OutputDataT
from pydantic_ai.tools import AgentDepsT
from pydantic_ai.toolsets import AbstractToolset
from pydantic_core import to_jsonable_python

from tether.integrations.pydantic_ai import codec
from tether.integrations.pydantic_ai.approvals import ApprovalsByPerson
from tether.integrations.pydantic_ai.model import TetherModel, model_request_step
from tether.integrations.pydantic_ai.scope import durable_run
from tether.integrations.pydantic_ai.toolset import TetherFunctionToolset, call_tool_step
from tether.runtime.code_first.calls import current_context
from tether.runtime.code_first.context import WorkflowContext
from tether.runtime.code_first.decorators import CodeWorkflow, Step, workflow

if TYPE_CHECKING:  # the MCP client (fastmcp) is an extra of Pydantic AI's: imported when used
    from pydantic_ai.mcp import MCPToolset


class TetherAgent(Generic[AgentDepsT, OutputDataT]):
    """Wraps a Pydantic AI ``Agent``: its model requests and tool calls become durable steps.

    Its toolsets may hold function tools and MCP servers (``MCPToolset(..., id=...)``: the id
    names the server's steps); ``tool_step`` applies to both.

    ``name`` (default: the agent's) names the steps and the workflow; it must stay the same
    while runs are in flight. ``model_step``/``tool_step``: :func:`tether.step` options
    (``retry``, ``timeout``) of the two steps. ``approval_timeout``: how long a tool call
    waits for a person before it is denied.

    Example::

        agent = TetherAgent(Agent(TestModel(), name="helper"))

        @workflow(id="triage")
        async def triage(ctx, data):
            result = await agent.run(data["question"])
            return result.output
    """

    def __init__(
        self,
        agent: Agent[AgentDepsT, OutputDataT],
        *,
        name: str | None = None,
        model_step: dict[str, Any] | None = None,
        tool_step: dict[str, Any] | None = None,
        approval_timeout: float | str | None = None,
    ) -> None:
        self.name = name or agent.name or ""
        if not self.name:
            raise ValueError("TetherAgent needs a name: Agent(..., name=...) or name=")
        if agent.model is None:
            raise ValueError(f"TetherAgent {self.name!r}: the agent needs a model")
        self.wrapped = agent
        self._deps = codec.DepsCodec(agent.deps_type)
        self._approval_timeout = approval_timeout
        inner = agent.model if isinstance(agent.model, Model) else infer_model(agent.model)
        request = model_request_step(self.name, inner, **(model_step or {}))
        self._model = TetherModel(inner, request)
        self._function_toolsets: dict[str, FunctionToolset[Any]] = {}
        calls = call_tool_step(
            self.name, agent, self._function_toolsets, self._deps, **(tool_step or {})
        )
        #: Its steps: registered with ``agent.workflow``; a workflow of one's own that runs the
        #: agent passes them on (``@workflow(steps=agent.steps)``), so that a call in flight
        #: when the process died is found after a restart. Each MCP server adds its own three.
        self.steps: list[Step] = [request, calls]
        self._tool_step = tool_step or {}
        self._mcp_ids: set[str] = set()
        self._toolsets = [ts.visit_and_replace(self._durable_leaf(calls)) for ts in agent.toolsets]
        self.workflow: CodeWorkflow = self._make_workflow()

    async def run(
        self,
        user_prompt: str | None = None,
        *,
        run_id: str | None = None,
        capabilities: Sequence[Any] = (),
        **kwargs: Any,
    ) -> AgentRunResult[Any]:
        """Run the agent: durably inside a workflow body, as the plain agent elsewhere.

        Takes ``Agent.run``'s arguments (``deps``, ``message_history``, ``output_type``, ...).
        """
        ctx = current_context()
        result: AgentRunResult[Any]
        if ctx is None:
            result = await self.wrapped.run(
                user_prompt, run_id=run_id, capabilities=list(capabilities), **kwargs
            )
            return result
        run_id = run_id or ctx.uuid()
        kwargs.setdefault("conversation_id", conversation_id_from_run_id(run_id))
        approvals = ApprovalsByPerson(ctx, self.name, timeout=self._approval_timeout)
        with (
            durable_run(ctx, start=ctx.now()),
            self.wrapped.override(model=self._model, toolsets=self._toolsets, tools=[]),
        ):
            result = await self.wrapped.run(
                user_prompt,
                run_id=run_id,
                capabilities=[*capabilities, HandleDeferredToolCalls(handler=approvals.decide)],
                **kwargs,
            )
        return result

    def _durable_leaf(self, calls: Step) -> Any:
        def replace(leaf: AbstractToolset[Any]) -> AbstractToolset[Any]:
            if _is_mcp(leaf):
                return self._durable_mcp(leaf)
            if not isinstance(leaf, FunctionToolset):
                raise TypeError(
                    f"TetherAgent {self.name!r}: toolset {leaf.label} is not supported yet "
                    "(function and MCP toolsets are; dynamic ones are not)"
                )
            key = leaf.id or f"toolset-{len(self._function_toolsets)}"
            if key in self._function_toolsets:
                raise ValueError(f"TetherAgent {self.name!r}: two toolsets have the id {key!r}")
            self._function_toolsets[key] = leaf
            return TetherFunctionToolset(leaf, key=key, call=calls, deps=self._deps)

        return replace

    def _durable_mcp(self, server: MCPToolset[Any]) -> AbstractToolset[Any]:
        from tether.integrations.pydantic_ai import mcp_toolset

        key = mcp_toolset.server_id(self.name, server)
        if key in self._mcp_ids:  # the same steps would serve two servers
            raise ValueError(f"TetherAgent {self.name!r}: two MCP toolsets have the id {key!r}")
        self._mcp_ids.add(key)
        steps = mcp_toolset.mcp_steps(self.name, self.wrapped, server, self._deps,
                                      **self._tool_step)  # fmt: skip
        self.steps.extend(steps.all())
        return mcp_toolset.tether_mcp_toolset(server, steps, self._deps)

    def _make_workflow(self) -> CodeWorkflow:
        async def run_agent(ctx: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
            history = data.get("message_history")
            result = await self.run(
                data.get("prompt"),
                deps=self._deps.load(data.get("deps")),
                message_history=codec.load_messages(history) if history else None,
            )
            return {
                "output": to_jsonable_python(result.output),
                "messages": codec.dump_messages(result.all_messages()),
            }

        # The runtime finds a body by where it lives: each agent's is its own.
        run_agent.__qualname__ = f"TetherAgent[{self.name}].run"
        return workflow(
            id=self.name, description=f"the Pydantic AI agent {self.name}", steps=self.steps
        )(run_agent)


def _is_mcp(leaf: AbstractToolset[Any]) -> TypeGuard[MCPToolset[Any]]:
    """Whether ``leaf`` is an MCP server's toolset; without the MCP client none can be."""
    try:
        from pydantic_ai.mcp import MCPToolset
    except ImportError:  # Pydantic AI's MCP extra (fastmcp) is not installed
        return False
    return isinstance(leaf, MCPToolset)
