"""Compile workflow YAML (a superset of the jamjet SDK's graph YAML) to a ``Workflow``.

Every problem, from a tab in the indentation to an edge naming a missing node, is raised as
a ``WorkflowError`` whose message starts with ``file:line``.

Example::

    >>> wf = compile_yaml_text('''
    ... workflow: {id: counter, version: "1", state_schema: {n: integer}}
    ... nodes:
    ...   inc: {type: tool, tool: add_one, output_key: n}
    ... ''')
    >>> wf.start_node, [(e.from_, e.to) for e in wf.edges]
    ('inc', [('inc', 'end')])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from tether.ir.errors import WorkflowSyntaxError
from tether.ir.governance import Governance
from tether.ir.jamjet_ir import SDK_RETRY_POLICIES
from tether.ir.jamjet_project import project_mcp_servers, servers_named
from tether.ir.limits import DEFAULT_LIMITS, InputLimits, too_many
from tether.ir.state_schema import SchemaShapeError, parse_state_schema
from tether.ir.strategies.yaml_agent import ExpandedAgent, expand
from tether.ir.types import (
    BranchKind,
    Budget,
    ContinueAsNew,
    Edge,
    Node,
    RetryPolicy,
    SourceLocation,
    Timeouts,
    Workflow,
)
from tether.ir.validation import check
from tether.ir.yaml_nodes import _unknown, build_node, parse_budget
from tether.ir.yaml_source import Path as YPath
from tether.ir.yaml_source import YamlDocument, load_yaml
from tether.ir.yaml_values import ValueProblem, as_str_list, convert, parse_duration, parse_retry

# 'tools', 'mcp' and 'a2a' are read by the jamjet SDK for its own runtime; Tether registers
# tools in Python, so they are accepted and ignored. 'models' and 'mcp_servers' travel in the IR.
_TOP_KEYS = frozenset(
    {
        "workflow", "nodes", "retry_policies", "timeouts", "models", "tools", "mcp", "a2a",
        "mcp_servers", "budget", "allowed_tools", "governance",
    }
)  # fmt: skip
_WORKFLOW_KEYS = frozenset(
    {
        "id", "version", "name", "description", "start", "start_node", "state_schema", "labels",
        "continue_as_new",
    }
)  # fmt: skip
# YAML key -> IR field, so that validation finds 'nodes.x.retry_policy' where 'retry:' was.
_IR_FIELD = {"retry": "retry_policy", "timeout": "node_timeout_secs"}
# YAML key -> kind field, when the names differ ('tool: x' is recorded as 'kind.tool_ref').
_KIND_FIELD = {
    "tool": "tool_ref", "model": "model_ref", "input": "input_mapping",
    "arguments": "input_mapping", "agent": "agent_ref", "fallback": "fallback_node",
    "system": "system_prompt", "duration": "duration_secs", "event": "correlation_key",
    "timeout": "timeout_secs", "conditions": "cases",
}  # fmt: skip


def compile_yaml_file(
    path: Path | str, *, validate: bool = True, limits: InputLimits = DEFAULT_LIMITS
) -> Workflow:
    """Read and compile a workflow file; see ``compile_yaml_text``. The ``[[mcp_servers]]`` of a
    ``jamjet.toml`` beside it join the workflow's ``mcp_servers`` (see ``jamjet_project``).

    Example::

        wf = compile_yaml_file(Path("examples/counter.yaml"))
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowSyntaxError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise WorkflowSyntaxError(f"{path}: cannot read the file ({exc.strerror})") from None
    wf = compile_yaml_text(text, str(path), validate=validate, limits=limits)
    wanted = servers_named(wf) - set(wf.mcp_servers)
    if not wanted:  # the project file is read only for servers the workflow lacks
        return wf
    servers = project_mcp_servers(Path(path).resolve().parent)
    extra = {name: cfg for name, cfg in servers.items() if name in wanted}
    if extra:  # a jamjet project's servers; the workflow's own come first
        wf = msgspec.structs.replace(wf, mcp_servers={**wf.mcp_servers, **extra})
    return wf


def compile_yaml_text(
    text: str,
    filename: str = "<string>",
    *,
    validate: bool = True,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Workflow:
    """Compile YAML text; with ``validate`` the graph is also checked (``WorkflowInvalid``).
    A workflow over ``limits`` (or a document over the loader's value budget) is refused.

    Example::

        wf = compile_yaml_text(Path("flow.yaml").read_text(), "flow.yaml")
    """
    wf = _Compiler(load_yaml(text, filename, max_depth=limits.max_depth), limits).compile()
    if validate:
        check(wf)
    return wf


class _Compiler:
    def __init__(self, doc: YamlDocument, limits: InputLimits) -> None:
        self.doc = doc
        self.limits = limits
        self.locations: dict[str, SourceLocation] = {}
        #: The strategy agent node (tether.ir.strategies) and what it expanded to.
        self.strategy: tuple[str, ExpandedAgent] | None = None

    def fail(self, path: YPath, message: str) -> WorkflowSyntaxError:
        return WorkflowSyntaxError(message, self.doc.locate(path))

    def note(self, ir_path: str, path: YPath) -> None:
        loc = self.doc.locate(path)
        if loc is not None:
            self.locations[ir_path] = loc

    def mapping(self, value: Any, path: YPath, what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            got = "nothing" if value is None else f"a {type(value).__name__}"
            raise self.fail(path, f"{what} must be a mapping, got {got}")
        return value

    def compile(self) -> Workflow:
        data = self.doc.data
        if not isinstance(data, Mapping):
            raise self.fail(
                (), "the top level must be a mapping with 'workflow' and 'nodes' sections"
            )
        if "agent" in data:
            raise self.fail(
                ("agent",),
                "agent-first YAML ('agent:') is compiled by the jamjet SDK's strategy compiler; "
                "compile it with jamjet and load the IR with workflow_from_ir",
            )
        self.known_keys(data, (), _TOP_KEYS, "top-level key")
        if "workflow" not in data:
            raise self.fail((), "missing the 'workflow' section (with at least 'id')")
        header = self.mapping(data["workflow"], ("workflow",), "'workflow'")
        self.known_keys(header, ("workflow",), _WORKFLOW_KEYS, "workflow key")
        nodes, edges = self.nodes(data.get("nodes"))
        wf = Workflow(
            workflow_id=self.scalar_text(header, "id", required=True),
            version=self.scalar_text(header, "version") or "0.1.0",
            start_node=self.start(header, nodes),
            nodes=nodes,
            edges=edges,
            name=self.opt_str(header, "name"),
            description=self.opt_str(header, "description"),
            state_schema=self.state_schema(header.get("state_schema")),
            retry_policies=self.retry_policies(data.get("retry_policies")),
            timeouts=self.timeouts(data.get("timeouts")),
            labels={str(k): str(v) for k, v in (header.get("labels") or {}).items()},
            continue_as_new=self.continue_as_new(header.get("continue_as_new")),
            locations=self.locations,
            models=dict(self.mapping(data.get("models") or {}, ("models",), "'models'")),
            mcp_servers=dict(
                self.mapping(data.get("mcp_servers") or {}, ("mcp_servers",), "'mcp_servers'")
            ),
            budget=self.budget(data.get("budget")),
            allowed_tools=self.allowed_tools(data.get("allowed_tools")),
            governance=self.governance(data.get("governance")),
        )
        return wf if self.strategy is None else with_strategy(wf, *self.strategy)

    def budget(self, raw: Any) -> Budget | None:
        if raw is None:
            return None
        try:
            return parse_budget(raw)
        except ValueProblem as exc:
            raise self.fail(("budget", *exc.subpath), f"budget: {exc}") from None

    def allowed_tools(self, raw: Any) -> list[str] | None:
        if raw is None:
            return None
        try:
            return as_str_list(raw, "allowed_tools")
        except ValueProblem as exc:
            raise self.fail(("allowed_tools", *exc.subpath), str(exc)) from None

    def governance(self, raw: Any) -> Governance | None:
        if raw is None:
            return None
        try:
            return convert(raw, Governance, "governance")
        except ValueProblem as exc:
            raise self.fail(("governance", *exc.subpath), str(exc)) from None

    def known_keys(
        self, spec: Mapping[str, Any], path: YPath, allowed: frozenset[str], what: str
    ) -> None:
        for key in spec:
            if key not in allowed:
                raise self.fail((*path, key), _unknown(what, key, allowed))

    def scalar_text(self, header: Mapping[str, Any], key: str, required: bool = False) -> str:
        """The scalar as written (``version: 1.10`` stays "1.10", not the float 1.1)."""
        if key not in header or header[key] is None:
            if required:
                raise self.fail(("workflow",), f"the workflow needs '{key}'")
            return ""
        if isinstance(header[key], Mapping | list):
            raise self.fail(("workflow", key), f"workflow {key} must be a plain value")
        self.note(f"workflow.{key}", ("workflow", key))
        return self.doc.scalars.get(("workflow", key), str(header[key]))

    def opt_str(self, header: Mapping[str, Any], key: str) -> str | None:
        value = header.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(("workflow", key), f"workflow {key} must be a string")

    def start(self, header: Mapping[str, Any], nodes: Mapping[str, Node]) -> str:
        key = "start" if "start" in header else "start_node"
        start = header.get(key)
        if start is None:
            return next(iter(nodes))  # the jamjet SDK's default: the first node
        if not isinstance(start, str):
            raise self.fail(("workflow", key), "start must be a node name")
        self.note("start_node", ("workflow", key))
        return start

    def nodes(self, raw: Any) -> tuple[dict[str, Node], list[Edge]]:
        if raw is None:
            raise self.fail((), "missing the 'nodes' section")
        specs = self.mapping(raw, ("nodes",), "'nodes' (node id -> node)")
        if not specs:
            raise self.fail(("nodes",), "the workflow has no nodes")
        if len(specs) > self.limits.max_nodes:
            message = too_many("nodes", len(specs), self.limits.max_nodes, "max_nodes")
            raise self.fail(("nodes",), message)
        nodes: dict[str, Node] = {}
        edges: list[Edge] = []
        for node_id, spec in specs.items():
            where = ("nodes", node_id)
            spec = self.mapping(spec, where, f"node '{node_id}'")
            if spec.get("type") == "agent" and "strategy" in spec:
                self.strategy_agent(node_id, spec, nodes, edges)
                continue
            try:
                built = build_node(node_id, spec)
            except ValueProblem as exc:
                raise self.fail((*where, *exc.subpath), f"node '{node_id}': {exc}") from None
            nodes[node_id] = built.node
            self.note(f"nodes.{node_id}", where)
            kind_fields = type(built.node.kind).__struct_fields__
            for key in spec:
                self.note(f"nodes.{node_id}.{_IR_FIELD.get(key, key)}", (*where, key))
                field = key if key in kind_fields else _KIND_FIELD.get(key, "")
                if field in kind_fields:
                    self.note(f"nodes.{node_id}.kind.{field}", (*where, key))
            for ir_sub, sub in built.kind_paths.items():
                self.note(f"nodes.{node_id}.{ir_sub}", (*where, *sub))
            for route in built.routes:
                self.note(f"edges.{len(edges)}", (*where, *route.where))
                if route.when_where is not None:
                    self.note(f"edges.{len(edges)}.condition", (*where, *route.when_where))
                edges.append(Edge(from_=node_id, to=route.to, condition=route.when))
        if len(edges) > self.limits.max_edges:
            message = too_many("edges", len(edges), self.limits.max_edges, "max_edges")
            raise self.fail(("nodes",), message)
        return nodes, edges

    def strategy_agent(
        self, node_id: str, spec: Mapping[str, Any], nodes: dict[str, Node], edges: list[Edge]
    ) -> None:
        """Expand a strategy agent in place (``tether.ir.strategies.yaml_agent``)."""
        where = ("nodes", node_id)
        if self.strategy is not None:
            raise self.fail(
                (*where, "strategy"),
                f"node '{node_id}': one strategy agent per workflow (node "
                f"'{self.strategy[0]}' is one; their nodes and state keys would collide)",
            )
        try:
            expanded = expand(node_id, spec)
        except ValueProblem as exc:
            raise self.fail((*where, *exc.subpath), f"node '{node_id}': {exc}") from None
        self.strategy = (node_id, expanded)
        for sub_id, node in expanded.nodes.items():
            nodes[sub_id] = node
            self.note(f"nodes.{sub_id}", where)
        for edge in expanded.edges:
            self.note(f"edges.{len(edges)}", where)
            edges.append(edge)

    def state_schema(self, raw: Any) -> dict[str, Any]:
        base: YPath = ("workflow", "state_schema")
        try:
            fields = parse_state_schema(raw)
        except SchemaShapeError as exc:
            sub = tuple(p for p in exc.path.split(".") if p)
            raise self.fail((*base, *sub), str(exc)) from None
        for key in fields:
            nested = (*base, "properties", key)  # the JSON Schema spelling
            where = nested if nested in self.doc.locations else (*base, key)
            self.note(f"state_schema.{key}", where)
        return fields

    def retry_policies(self, raw: Any) -> dict[str, RetryPolicy]:
        if raw is None:
            return {}
        policies: dict[str, RetryPolicy] = {}
        for name, spec in self.mapping(raw, ("retry_policies",), "'retry_policies'").items():
            try:
                policies[name] = parse_retry(spec)
            except ValueProblem as exc:
                path = ("retry_policies", name, *exc.subpath)
                raise self.fail(path, f"retry policy '{name}': {exc}") from None
            self.note(f"retry_policies.{name}", ("retry_policies", name))
        return policies

    def continue_as_new(self, raw: Any) -> ContinueAsNew | None:
        if raw is None:
            return None
        where: YPath = ("workflow", "continue_as_new")
        spec = self.mapping(raw, where, "'continue_as_new'")
        self.known_keys(spec, where, frozenset({"max_records"}), "continue_as_new key")
        value = spec.get("max_records")
        if not isinstance(value, int) or isinstance(value, bool) or value < 10:
            raise self.fail(
                (*where, "max_records"),
                f"continue_as_new.max_records must be a whole number >= 10, got {value!r}",
            )
        self.note("continue_as_new.max_records", (*where, "max_records"))
        return ContinueAsNew(max_records=value)

    def timeouts(self, raw: Any) -> Timeouts:
        if raw is None:
            return Timeouts()
        spec = self.mapping(raw, ("timeouts",), "'timeouts'")
        self.known_keys(spec, ("timeouts",), frozenset(Timeouts.__struct_fields__), "timeout")
        values: dict[str, float | None] = {}
        for key, value in spec.items():
            try:
                values[key] = None if value is None else parse_duration(value)
            except ValueProblem as exc:
                raise self.fail(("timeouts", key), f"timeouts.{key}: {exc}") from None
            self.note(f"timeouts.{key}", ("timeouts", key))
        return Timeouts(**values)


def with_strategy(wf: Workflow, agent_id: str, expanded: ExpandedAgent) -> Workflow:
    """``wf`` with its strategy agent's id routed to the strategy's first node, its limits
    set (``cost_limit_usd``, the tighter ``workflow_timeout``), the SDK's retry policy its
    model nodes name, and the SDK's labels (``jamjet.strategy``, ``jamjet.agent.id``)."""
    start = expanded.start

    def to(target: str) -> str:
        return start if target == agent_id else target

    nodes = {
        k: _retarget(n, agent_id, start) if isinstance(n.kind, BranchKind) else n
        for k, n in wf.nodes.items()
    }
    timeout = float(expanded.limits.timeout_seconds)
    if wf.timeouts.workflow_timeout is not None:
        timeout = min(timeout, wf.timeouts.workflow_timeout)
    return msgspec.structs.replace(
        wf,
        start_node=to(wf.start_node),
        nodes=nodes,
        edges=[msgspec.structs.replace(e, to=to(e.to)) for e in wf.edges],
        retry_policies={**SDK_RETRY_POLICIES, **wf.retry_policies},
        timeouts=msgspec.structs.replace(wf.timeouts, workflow_timeout=timeout),
        cost_limit_usd=expanded.limits.max_cost_usd,
        labels={"jamjet.strategy": expanded.strategy, "jamjet.agent.id": agent_id, **wf.labels},
    )


def _retarget(node: Node, old: str, new: str) -> Node:
    kind = node.kind
    assert isinstance(kind, BranchKind)
    cases = [msgspec.structs.replace(c, to=new if c.to == old else c.to) for c in kind.cases]
    default = new if kind.default == old else kind.default
    return msgspec.structs.replace(
        node, kind=msgspec.structs.replace(kind, cases=cases, default=default)
    )
