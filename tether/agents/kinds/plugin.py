"""``AgentKinds``: the model, agent, http, ``mcp_tool`` and eval node kinds, plugged into a
runtime through its one seam (:class:`tether.runtime.node_kinds.NodeKinds`).

Example::

    from tether.agents import AgentKinds
    async with Runtime(url, tools=[search], node_kinds=AgentKinds()) as rt:
        ...                          # tether.Runtime plugs them in by default
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tether.agents.a2a.caller import A2A_TOOL, A2aCaller, a2a_args, check_a2a
from tether.agents.kinds.checks import check_workflow
from tether.agents.kinds.eval_calls import check_evals, eval_binder
from tether.agents.kinds.eval_tool import EVAL_TOOL, EvalCaller
from tether.agents.kinds.http_tool import HTTP_TOOL, HttpCaller, http_args
from tether.agents.kinds.mcp_calls import (
    MCP_TOOL,
    McpCaller,
    SecretsThenEnviron,
    mcp_call_args,
    mcp_node_args,
    mcp_ref,
)
from tether.agents.kinds.model_calls import call_args, first_messages, model_node_args, model_spec
from tether.agents.kinds.model_fallback import with_fallbacks
from tether.agents.kinds.model_tool import MODEL_TOOL, ModelCaller
from tether.agents.kinds.tool_schema import tool_spec, wire_name
from tether.agents.memory.nodes import (
    MEMORY_RETRIEVAL_TOOL,
    MEMORY_WRITE_TOOL,
    check_memory,
    memory_retrieval_args,
    memory_write_args,
)
from tether.agents.providers.costs import CostTable
from tether.agents.providers.types import ToolSpec
from tether.agents.sandbox.caller import NODE_TOOL, RunCodeCaller, check_run_code, run_code_args
from tether.agents.sandbox.limits import SandboxLimits
from tether.ir.errors import ValidationIssue
from tether.ir.types import (
    A2aTaskKind,
    AgentKind,
    EvalKind,
    HttpKind,
    McpToolKind,
    MemoryRetrievalKind,
    MemoryWriteKind,
    ModelKind,
    Node,
    RunCodeKind,
    Workflow,
)
from tether.runtime.node_kinds import CallBinder
from tether.runtime.secrets import SecretSource
from tether.runtime.tools import Tool, ToolRegistry, UnknownTool

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

_KINDS = (
    ModelKind, AgentKind, HttpKind, McpToolKind, EvalKind, RunCodeKind, A2aTaskKind,
    MemoryWriteKind, MemoryRetrievalKind,
)  # fmt: skip

#: An agent's tools: the specs of its ``@tool`` functions, wire name -> tool name where they
#: differ, and its MCP tools (listed by the server when the model is called).
_AgentTools = tuple[list[ToolSpec], dict[str, str], list[dict[str, Any]]]


class AgentKinds:
    """Runs model, agent, http, ``mcp_tool``, eval and ``run_code`` nodes. ``env`` gives
    provider keys and endpoints and ``TETHER_SANDBOX_URL`` (default: this process's
    environment, read at the first call); ``secrets`` fills http headers' and MCP servers'
    ``${NAME}`` before the environment does; ``sandbox_limits`` are the defaults of code runs
    (an agent's ``run_code`` calls, and what a node's ``limits`` leave out)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        secrets: SecretSource | None = None,
        http: httpx.AsyncClient | None = None,
        costs: CostTable | None = None,
        sandbox_limits: SandboxLimits | None = None,
    ) -> None:
        self._costs = costs or CostTable()
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._code = RunCodeCaller(self._env, limits=sandbox_limits)
        self._a2a = A2aCaller(self._env)
        self._mcp = McpCaller(SecretsThenEnviron(secrets, os.environ if env is None else env))
        self._models = ModelCaller(env, http=http, costs=self._costs, mcp=self._mcp)
        self._http = HttpCaller(secrets)
        self._evals = EvalCaller(self._models)
        self._specs: dict[int, _AgentTools] = {}

    def handles(self, node: Node) -> bool:
        return isinstance(node.kind, _KINDS)

    def tools(self) -> Iterable[Tool]:
        return (
            self._models.tool(), self._http.tool(), self._mcp.tool(), self._evals.tool(),
            *self._code.tools(), self._a2a.tool(),
        )  # fmt: skip

    async def start(self) -> None:
        await self._code.start()  # a configured sandbox service that is not there: refuse
        await self._mcp.start()

    def check(self, wf: Workflow, tools: ToolRegistry) -> list[ValidationIssue]:
        return (
            check_workflow(wf, tools, self._costs)
            + check_evals(wf, self._costs)
            + check_run_code(wf, self._env)
            + check_a2a(wf)
            + check_memory(wf, tools)
        )

    def binding(self, wf: Workflow, node: Node, tools: ToolRegistry) -> tuple[str, CallBinder]:
        if isinstance(node.kind, HttpKind):
            return HTTP_TOOL, lambda data: http_args(node, data)
        if isinstance(node.kind, McpToolKind):
            return MCP_TOOL, lambda data: mcp_node_args(wf, node, data)
        if isinstance(node.kind, ModelKind):
            return MODEL_TOOL, lambda data: with_fallbacks(
                wf, model_node_args(wf, node, data, self._costs), self._costs
            )
        if isinstance(node.kind, EvalKind):
            return EVAL_TOOL, eval_binder(wf, node, self._costs)
        if isinstance(node.kind, RunCodeKind):
            return NODE_TOOL, lambda data: run_code_args(node, data)
        if isinstance(node.kind, A2aTaskKind):
            return A2A_TOOL, lambda data: a2a_args(node, data)
        if isinstance(node.kind, MemoryWriteKind):
            return MEMORY_WRITE_TOOL, lambda data: memory_write_args(node, data)
        if isinstance(node.kind, MemoryRetrievalKind):
            return MEMORY_RETRIEVAL_TOOL, lambda data: memory_retrieval_args(node, data)
        return MODEL_TOOL, lambda data: self.model_call(wf, node, None, data, tools)

    def model_call(
        self,
        wf: Workflow,
        node: Node,
        messages: tuple[Any, ...] | None,
        data: Mapping[str, Any],
        tools: ToolRegistry,
    ) -> dict[str, Any]:
        kind = node.kind
        assert isinstance(kind, AgentKind)
        specs, names, mcp_tools = self._agent_tools(wf, node, tools)
        transcript = list(messages) if messages is not None else first_messages(node, data)
        schema = kind.output_schema if isinstance(kind.output_schema, dict) else None
        spec = model_spec(wf, kind.model or "default_chat")
        args = call_args(
            spec, transcript, specs, kind.temperature, kind.max_tokens, schema, "full",
            self._costs,
        )  # fmt: skip
        if names:
            args["tool_names"] = names
        if mcp_tools:
            args["mcp_tools"] = mcp_tools
        return with_fallbacks(wf, args, self._costs)

    def refusal(self, wf: Workflow, node: Node, call: Mapping[str, Any]) -> str | None:
        kind = node.kind
        assert isinstance(kind, AgentKind)
        name = call.get("name")
        if name not in kind.tools:
            return "not on the agent's allow-list"
        if wf.allowed_tools is not None and name not in wf.allowed_tools:
            return "not on the workflow's allow-list"
        return None

    def needs_approval(
        self, wf: Workflow, node: Node, call: Mapping[str, Any], tools: ToolRegistry
    ) -> bool:
        kind = node.kind
        assert isinstance(kind, AgentKind)
        name = str(call.get("name"))
        if name in kind.requires_approval:
            return True
        if mcp_ref(wf, name) is not None:
            return False
        try:
            return tools.resolve(name).requires_approval
        except UnknownTool:
            return False

    def tool_call(
        self, wf: Workflow, node: Node, call: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        name, arguments = str(call.get("name")), call.get("arguments")
        arguments = dict(arguments) if isinstance(arguments, dict) else {}
        ref = mcp_ref(wf, name)
        if ref is not None:
            return MCP_TOOL, mcp_call_args(wf, ref[0], ref[1], arguments, node)
        return name, arguments

    def _agent_tools(self, wf: Workflow, node: Node, tools: ToolRegistry) -> _AgentTools:
        found = self._specs.get(id(node))
        if found is None:
            kind = node.kind
            assert isinstance(kind, AgentKind)
            specs, mcp_tools = [], []
            for name in kind.tools:
                ref = mcp_ref(wf, name)
                if ref is None:
                    specs.append(tool_spec(tools.resolve(name), name))
                else:
                    mcp_tools.append(
                        {"name": name, "server": ref[0], "tool": ref[1],
                         "config": wf.mcp_servers[ref[0]]}
                    )  # fmt: skip
            names = {wire_name(n): n for n in kind.tools if wire_name(n) != n}
            found = self._specs[id(node)] = (specs, names, mcp_tools)
        return found

    async def aclose(self) -> None:
        try:
            await self._models.aclose()
            await self._http.aclose()
            await self._code.aclose()
            await self._a2a.aclose()
        finally:  # its task group must close in this task whatever the others did
            await self._mcp.aclose()
