"""What keeps a workflow's model, agent and http nodes from running, found at registration
(each problem names the node and the name at fault), not at the first call.

Example::

    check_workflow(wf, tools, CostTable())
    # [ValidationIssue("nodes.work.kind.tools", "tool 'web_serch' is not registered ...")]
"""

from __future__ import annotations

from tether.agents.kinds.mcp_calls import mcp_ref
from tether.agents.kinds.model_calls import model_spec
from tether.agents.mcp import McpConfigError, parse_servers
from tether.agents.providers.config import parse_models
from tether.agents.providers.costs import CostTable
from tether.agents.providers.errors import ModelConfigError
from tether.ir.errors import ValidationIssue
from tether.ir.eval_spec import FEEDBACK_KEY
from tether.ir.templates import TemplateError, parse_template
from tether.ir.types import AgentKind, Budget, HttpKind, McpToolKind, ModelKind, Node, Workflow
from tether.runtime.tools import ToolRegistry, UnknownTool


def check_workflow(wf: Workflow, tools: ToolRegistry, costs: CostTable) -> list[ValidationIssue]:
    issues: list[ValidationIssue] = []
    if wf.models:
        try:
            parse_models(wf.models)
        except ModelConfigError as exc:
            return [ValidationIssue("models", str(exc))]
    if wf.mcp_servers:
        try:
            parse_servers(wf.mcp_servers)
        except McpConfigError as exc:
            return [ValidationIssue("mcp_servers", str(exc))]
    for node in wf.nodes.values():
        where = f"nodes.{node.id}.kind"
        kind = node.kind
        if isinstance(kind, ModelKind):
            _model(wf, node, kind.model_ref, where, costs, issues)
            prompt = kind.prompt if kind.prompt is not None else kind.prompt_ref
            _template(node, prompt, f"{where}.prompt", wf, issues)
            _template(node, kind.system_prompt, f"{where}.system_prompt", wf, issues)
        elif isinstance(kind, AgentKind):
            if not kind.model:
                issues.append(
                    ValidationIssue(f"{where}.model", f"agent {node.id!r} names no model")
                )
            else:
                _model(wf, node, kind.model, f"{where}.model", costs, issues, kind.budget)
            _template(node, kind.instructions, f"{where}.instructions", wf, issues)
            _template(node, kind.prompt, f"{where}.prompt", wf, issues)
            _agent_tools(wf, node, kind, tools, f"{where}.tools", issues)
        elif isinstance(kind, HttpKind):
            _template(node, kind.url, f"{where}.url", wf, issues)
        elif isinstance(kind, McpToolKind):
            _mcp_node(wf, node, kind, where, issues)
    return issues


def _mcp_node(
    wf: Workflow, node: Node, kind: McpToolKind, where: str, issues: list[ValidationIssue]
) -> None:
    if kind.server not in wf.mcp_servers:
        known = ", ".join(sorted(wf.mcp_servers)) or "none"
        issues.append(
            ValidationIssue(
                f"{where}.server",
                f"node {node.id!r}: MCP server {kind.server!r} is not in the workflow's "
                f"mcp_servers (known: {known})",
            )
        )
    if not kind.tool:
        issues.append(ValidationIssue(f"{where}.tool", f"node {node.id!r} names no MCP tool"))
    for name, source in (node.input or kind.input_mapping).items():
        if isinstance(source, str):
            _template(node, source, f"{where}.input.{name}", wf, issues)


def _model(
    wf: Workflow,
    node: Node,
    ref: str,
    where: str,
    costs: CostTable,
    issues: list[ValidationIssue],
    budget: Budget | None = None,
) -> None:
    try:
        spec = model_spec(wf, ref)
    except ModelConfigError as exc:
        known = ", ".join(wf.models) or "none"
        issues.append(
            ValidationIssue(where, f"node {node.id!r}: model {ref!r}: {exc} (models: {known})")
        )
        return
    capped = any(b is not None and b.max_cost_usd is not None for b in (budget, wf.budget))
    if capped and spec.cost is None and costs.price(spec.model) is None:
        issues.append(
            ValidationIssue(
                where,
                f"node {node.id!r}: a cost budget cannot count model {spec.model!r}: it has no "
                f"price here; give one (models: {{{ref}: {{model: {spec.model}, cost: "
                "{input: <usd per Mtok>, output: <usd per Mtok>}}}})",
            )
        )


def _template(
    node: Node, text: str | None, where: str, wf: Workflow, issues: list[ValidationIssue]
) -> None:
    if not text:
        return
    try:
        template = parse_template(text)
    except TemplateError as exc:
        issues.append(ValidationIssue(where, f"node {node.id!r}: {exc}"))
        return
    known = _state_keys(wf)
    if known is None:
        return  # an untyped state: any key may come with the input
    for path in template.variables():
        if len(path) > 1 and path[1] not in known:
            issues.append(
                ValidationIssue(
                    where,
                    f"node {node.id!r}: template variable {'.'.join(path)!r} names no state "
                    f"key (known: {', '.join(sorted(known))})",
                )
            )


def _state_keys(wf: Workflow) -> set[str] | None:
    """The keys state can hold, when the workflow declares a typed state."""
    schema = wf.typed_schema()
    if not schema:
        return None
    return set(schema) | {n.state_key for n in wf.nodes.values()} | {FEEDBACK_KEY}


def _agent_tools(
    wf: Workflow,
    node: Node,
    kind: AgentKind,
    tools: ToolRegistry,
    where: str,
    issues: list[ValidationIssue],
) -> None:
    for name in kind.tools:
        try:
            if mcp_ref(wf, name) is None:
                tools.resolve(name)
        except UnknownTool as exc:
            server = name.partition(".")[0] if "." in name else None
            hint = (
                f"; nor is {server!r} one of the workflow's mcp_servers "
                f"({', '.join(sorted(wf.mcp_servers)) or 'none'})"
                if server
                else ""
            )
            issues.append(ValidationIssue(where, f"agent {node.id!r}: {exc}{hint}"))
            continue
        if wf.allowed_tools is not None and name not in wf.allowed_tools:
            issues.append(
                ValidationIssue(
                    where,
                    f"agent {node.id!r}: tool {name!r} is not on the workflow's allowed_tools",
                )
            )
