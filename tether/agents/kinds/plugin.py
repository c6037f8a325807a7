"""``AgentKinds``: the model, agent and http node kinds, plugged into a runtime through its one
seam (:class:`tether.runtime.node_kinds.NodeKinds`).

Example::

    from tether.agents import AgentKinds
    async with Runtime(url, tools=[search], node_kinds=AgentKinds()) as rt:
        ...                          # tether.Runtime plugs them in by default
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from tether.agents.kinds.checks import check_workflow
from tether.agents.kinds.eval_calls import check_evals, eval_binder
from tether.agents.kinds.eval_tool import EVAL_TOOL, EvalCaller
from tether.agents.kinds.http_tool import HTTP_TOOL, HttpCaller, http_args
from tether.agents.kinds.model_calls import call_args, first_messages, model_node_args, model_spec
from tether.agents.kinds.model_tool import MODEL_TOOL, ModelCaller
from tether.agents.kinds.tool_schema import tool_spec, wire_name
from tether.agents.providers.costs import CostTable
from tether.agents.providers.types import ToolSpec
from tether.ir.errors import ValidationIssue
from tether.ir.types import AgentKind, EvalKind, HttpKind, ModelKind, Node, Workflow
from tether.runtime.node_kinds import CallBinder
from tether.runtime.secrets import SecretSource
from tether.runtime.tools import Tool, ToolRegistry

_KINDS = (ModelKind, AgentKind, HttpKind, EvalKind)


class AgentKinds:
    """Runs model, agent and http nodes. ``env`` gives provider keys and endpoints (default:
    this process's environment, read at the first call); ``secrets`` fills http headers'
    ``${NAME}`` before the environment does."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        secrets: SecretSource | None = None,
        http: httpx.AsyncClient | None = None,
        costs: CostTable | None = None,
    ) -> None:
        self._costs = costs or CostTable()
        self._models = ModelCaller(env, http=http, costs=self._costs)
        self._http = HttpCaller(secrets)
        self._evals = EvalCaller(self._models)
        self._specs: dict[int, tuple[list[ToolSpec], dict[str, str]]] = {}

    def handles(self, node: Node) -> bool:
        return isinstance(node.kind, _KINDS)

    def tools(self) -> Iterable[Tool]:
        return (self._models.tool(), self._http.tool(), self._evals.tool())

    def check(self, wf: Workflow, tools: ToolRegistry) -> list[ValidationIssue]:
        return check_workflow(wf, tools, self._costs) + check_evals(wf, self._costs)

    def binding(self, wf: Workflow, node: Node, tools: ToolRegistry) -> tuple[str, CallBinder]:
        if isinstance(node.kind, HttpKind):
            return HTTP_TOOL, lambda data: http_args(node, data)
        if isinstance(node.kind, ModelKind):
            return MODEL_TOOL, lambda data: model_node_args(wf, node, data, self._costs)
        if isinstance(node.kind, EvalKind):
            return EVAL_TOOL, eval_binder(wf, node, self._costs)
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
        specs, names = self._agent_tools(node, tools)
        transcript = list(messages) if messages is not None else first_messages(node, data)
        schema = kind.output_schema if isinstance(kind.output_schema, dict) else None
        spec = model_spec(wf, kind.model or "default_chat")
        args = call_args(
            spec, transcript, specs, kind.temperature, kind.max_tokens, schema, "full",
            self._costs,
        )  # fmt: skip
        if names:
            args["tool_names"] = names
        return args

    def refusal(self, wf: Workflow, node: Node, call: Mapping[str, Any]) -> str | None:
        kind = node.kind
        assert isinstance(kind, AgentKind)
        name = call.get("name")
        if name not in kind.tools:
            return "not on the agent's allow-list"
        if wf.allowed_tools is not None and name not in wf.allowed_tools:
            return "not on the workflow's allow-list"
        return None

    def tool_call(
        self, wf: Workflow, node: Node, call: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        arguments = call.get("arguments")
        return str(call.get("name")), dict(arguments) if isinstance(arguments, dict) else {}

    def _agent_tools(
        self, node: Node, tools: ToolRegistry
    ) -> tuple[list[ToolSpec], dict[str, str]]:
        """The specs an agent offers, and wire name -> tool name where they differ."""
        found = self._specs.get(id(node))
        if found is None:
            kind = node.kind
            assert isinstance(kind, AgentKind)
            specs = [tool_spec(tools.resolve(name), name) for name in kind.tools]
            names = {wire_name(n): n for n in kind.tools if wire_name(n) != n}
            found = self._specs[id(node)] = (specs, names)
        return found

    async def aclose(self) -> None:
        await self._models.aclose()
        await self._http.aclose()
