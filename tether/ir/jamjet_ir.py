"""Import the canonical IR dict of the ``jamjet`` SDK (or Tether's own encoded IR).

The SDK's ``compile_yaml`` / ``compile_to_ir`` output has quirks this smooths over:
``state_schema`` is a string (often ``""``) or a JSON Schema; ``retry_policy`` is a name or
``None`` (its built-in ``llm_default`` is defined here); ``timeouts`` may be partial; retry
policies carry the YAML as written; top-level keys Tether has no use for (``tools``,
``remote_agents``) are ignored; ``models``, ``mcp_servers``, ``budget``, ``allowed_tools``,
``cost_limit_usd`` and ``governance`` are kept (Tether's own IR comes back whole). A node
kind Tether does not run (``coordinator`` ...) is a ``WorkflowInvalid`` naming the node and
the kind.

An agent's IR (``jamjet.Agent(...).compile()``, or an agent-first YAML) carries
``strategy_metadata``: when the IR has no ``workflow_id`` (``Agent.compile()`` gives none) the
agent's id is the workflow id, and its ``limits.max_cost_usd`` becomes the workflow's
``cost_limit_usd``, which the strategy's cost guards read as ``state.__cost_exceeded__``
(:mod:`tether.runtime.strategy_limits`), and its ``limits.timeout_seconds`` the
``timeouts.workflow_timeout`` (when the IR gives none); its ``limit_exceeded`` node ends a
run with that status. Its model nodes name their answer's state key in ``output_schema``
(``Node.state_key``), and their JSON answers land parsed (:mod:`tether.agents.kinds.answers`).

Example::

    from jamjet.workflow.ir_compiler import compile_yaml
    wf = workflow_from_ir(compile_yaml(Path("flow.yaml").read_text()), source="flow.yaml")
    check(wf)
    wf = workflow_from_ir(Agent("researcher", model="gpt-4o-mini", tools=[search]).compile())
    (wf.workflow_id, wf.cost_limit_usd)          # ("researcher", 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, get_args

import msgspec

from tether.ir.errors import ValidationIssue, WorkflowInvalid
from tether.ir.governance import Governance
from tether.ir.limits import DEFAULT_LIMITS, InputLimits, check_ir_size, too_many
from tether.ir.state_schema import SchemaShapeError, parse_state_schema
from tether.ir.types import (
    Budget,
    ContinueAsNew,
    Edge,
    Node,
    NodeKind,
    RetryPolicy,
    SourceLocation,
    StateField,
    Timeouts,
    Workflow,
)
from tether.ir.yaml_values import ValueProblem, convert, parse_retry

KIND_TAGS: tuple[str, ...] = tuple(str(cls.__struct_config__.tag) for cls in get_args(NodeKind))


class _Issues:
    def __init__(self) -> None:
        self.items: list[ValidationIssue] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(ValidationIssue(path=path, message=message))

    def convert(self, value: Any, type_: Any, path: str, what: str) -> Any:
        try:
            return convert(value, type_, what)
        except ValueProblem as exc:
            self.add(".".join([path, *map(str, exc.subpath)]), str(exc))
            return None


def workflow_from_ir(
    ir: Mapping[str, Any], source: str = "<ir>", *, limits: InputLimits = DEFAULT_LIMITS
) -> Workflow:
    """Build a ``Workflow`` from an IR dict; raises ``WorkflowInvalid`` listing every problem.

    Graph rules are not checked here: call ``check`` on the result (or use
    ``compile_submitted_ir``, which does both). An IR over ``limits`` is refused first.

    Example::

        wf = workflow_from_ir({"workflow_id": "w", "version": "1", "start_node": "a",
                               "nodes": {"a": {"id": "a", "kind": {"type": "end"}}}})
    """
    issues = _Issues()
    if not isinstance(ir, Mapping):
        issues.add("", f"the IR must be a mapping, got {type(ir).__name__}")
        raise WorkflowInvalid(issues.items, source=source)
    check_ir_size(ir, limits, source)
    _check_counts(ir, limits, issues)
    if issues.items:
        raise WorkflowInvalid(issues.items, source=source)
    strategy = _mapping(ir, "strategy_metadata", issues)
    agent_id = strategy.get("agent_id")
    named = "workflow_id" in ir or (isinstance(agent_id, str) and agent_id != "")
    for key in ("workflow_id", "start_node", "nodes"):
        if key not in ir and (key != "workflow_id" or not named):
            issues.add(key, f"the IR has no '{key}'")
    nodes = _nodes(ir.get("nodes"), issues)
    edges = _edges(ir.get("edges"), issues)
    wf = Workflow(
        workflow_id=_text(ir, "workflow_id", issues) if "workflow_id" in ir else str(agent_id),
        version=_text(ir, "version", issues) or "0.1.0",
        start_node=_text(ir, "start_node", issues),
        nodes=nodes,
        edges=edges,
        name=_opt_text(ir, "name", issues),
        description=_opt_text(ir, "description", issues),
        state_schema=_state_schema(ir.get("state_schema"), issues),
        retry_policies=_builtin_policies(nodes, _retry_policies(ir.get("retry_policies"), issues)),
        timeouts=_strategy_timeout(_timeouts(ir.get("timeouts"), issues), strategy),
        labels={str(k): str(v) for k, v in _mapping(ir, "labels", issues).items()},
        continue_as_new=_continue_as_new(ir.get("continue_as_new"), issues),
        locations=issues.convert(
            _mapping(ir, "locations", issues), dict[str, SourceLocation], "locations", "locations"
        )
        or {},
        models=dict(_mapping(ir, "models", issues)),
        mcp_servers=dict(_mapping(ir, "mcp_servers", issues)),
        budget=_optional(ir, "budget", Budget, issues),
        allowed_tools=_optional(ir, "allowed_tools", list[str], issues),
        cost_limit_usd=_cost_limit(ir, strategy, issues),
        code=_code_ref(ir, issues),
        governance=_optional(ir, "governance", Governance, issues),
    )
    if issues.items:
        raise WorkflowInvalid(issues.items, source=source)
    return wf


def _check_counts(ir: Mapping[str, Any], limits: InputLimits, issues: _Issues) -> None:
    nodes, edges = ir.get("nodes"), ir.get("edges")
    if isinstance(nodes, Mapping) and len(nodes) > limits.max_nodes:
        issues.add("nodes", too_many("nodes", len(nodes), limits.max_nodes, "max_nodes"))
    if isinstance(edges, list) and len(edges) > limits.max_edges:
        issues.add("edges", too_many("edges", len(edges), limits.max_edges, "max_edges"))


def _optional(ir: Mapping[str, Any], key: str, type_: Any, issues: _Issues) -> Any:
    """Tether's own settings (``budget``, ``allowed_tools``), kept when an IR comes back."""
    raw = ir.get(key)
    return None if raw is None else issues.convert(raw, type_, key, key)


def _cost_limit(
    ir: Mapping[str, Any], strategy: Mapping[str, Any], issues: _Issues
) -> float | None:
    """Tether's ``cost_limit_usd``, else the SDK agent's ``strategy_metadata.limits``."""
    path, raw = "cost_limit_usd", ir.get("cost_limit_usd")
    if raw is None:
        limits = strategy.get("limits")
        path = "strategy_metadata.limits.max_cost_usd"
        raw = limits.get("max_cost_usd") if isinstance(limits, Mapping) else None
    if raw is None:
        return None
    ok = isinstance(raw, int | float) and not isinstance(raw, bool) and 0 < raw < math.inf
    if not ok:
        issues.add(path, f"the cost limit must be a positive number of USD, got {raw!r}")
        return None
    return float(raw)


def _strategy_timeout(timeouts: Timeouts, strategy: Mapping[str, Any]) -> Timeouts:
    """An agent's ``limits.timeout_seconds`` as the workflow timeout its strategy's calls are
    checked against (``Agent.compile()`` gives no ``timeouts``; its agent-first YAML does)."""
    limits = strategy.get("limits")
    raw = limits.get("timeout_seconds") if isinstance(limits, Mapping) else None
    if not isinstance(raw, int | float) or isinstance(raw, bool) or not 0 < raw < math.inf:
        return timeouts
    if timeouts.workflow_timeout is not None:
        return timeouts
    return msgspec.structs.replace(timeouts, workflow_timeout=float(raw))


def _continue_as_new(raw: Any, issues: _Issues) -> ContinueAsNew | None:
    """Tether's own setting (the SDK sends none); kept when an IR comes back from Tether."""
    if raw is None:
        return None
    converted: ContinueAsNew | None = issues.convert(
        raw, ContinueAsNew, "continue_as_new", "continue_as_new"
    )
    return converted


def _text(ir: Mapping[str, Any], key: str, issues: _Issues) -> str:
    value = ir.get(key)
    if value is None:
        return ""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    issues.add(key, f"'{key}' must be a string, got {value!r}")
    return ""


def _opt_text(ir: Mapping[str, Any], key: str, issues: _Issues) -> str | None:
    return _text(ir, key, issues) if ir.get(key) is not None else None


#: Longest ``code`` reference accepted (a module path and a qualified name).
MAX_CODE_REF = 300


def _code_ref(ir: Mapping[str, Any], issues: _Issues) -> str | None:
    """A code-first workflow's ``module:qualname``. Kept, not dropped: without it the IR's
    placeholder node would run as a graph that ends at once. Only a name to look up among
    the bodies an engine was given; nothing is ever imported from it."""
    value = ir.get("code")
    if value is None:
        return None
    module, colon, qualname = value.partition(":") if isinstance(value, str) else ("", "", "")
    shaped = bool(module and colon and qualname) and len(value) <= MAX_CODE_REF
    if not shaped or not value.isprintable() or any(ch.isspace() for ch in value):
        issues.add("code", f"'code' must be 'module:qualname' (at most {MAX_CODE_REF} "
                           f"characters, no spaces), got {str(value)[:80]!r}")  # fmt: skip
        return None
    return str(value)


def _mapping(ir: Mapping[str, Any], key: str, issues: _Issues) -> Mapping[str, Any]:
    value = ir.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        issues.add(key, f"'{key}' must be a mapping, got {type(value).__name__}")
        return {}
    return value


def _without_none(raw: Mapping[str, Any]) -> dict[str, Any]:
    # The SDK writes explicit nulls where Tether has non-null defaults (labels, output_schema).
    return {str(k): v for k, v in raw.items() if v is not None}


def _nodes(raw: Any, issues: _Issues) -> dict[str, Node]:
    if not isinstance(raw, Mapping):
        if raw is not None:
            issues.add("nodes", "'nodes' must be a mapping of node id -> node")
        return {}
    nodes: dict[str, Node] = {}
    for key, spec in raw.items():
        path = f"nodes.{key}"
        if not isinstance(spec, Mapping):
            issues.add(path, f"node '{key}' must be a mapping")
            continue
        kind = spec.get("kind")
        kind_type = kind.get("type") if isinstance(kind, Mapping) else None
        if kind_type not in KIND_TAGS:
            got = "no kind" if kind_type is None else f"unknown node kind '{kind_type}'"
            issues.add(
                f"{path}.kind.type",
                f"node '{key}': {got} (Tether runs: {', '.join(KIND_TAGS)})",
            )
            continue
        assert isinstance(kind, Mapping)
        fields = _without_none(spec)
        fields.setdefault("id", str(key))
        fields["kind"] = _without_none(kind)
        if not fields.get("input") and isinstance(kind.get("input_mapping"), Mapping):
            fields["input"] = dict(kind["input_mapping"])  # the runtime binds from node.input
        node = issues.convert(fields, Node, path, f"node '{key}'")
        if node is not None:
            nodes[str(key)] = node
    return nodes


def _edges(raw: Any, issues: _Issues) -> list[Edge]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        issues.add("edges", "'edges' must be a list")
        return []
    edges = [issues.convert(e, Edge, f"edges.{i}", f"edge {i}") for i, e in enumerate(raw)]
    return [e for e in edges if e is not None]


def _state_schema(raw: Any, issues: _Issues) -> dict[str, StateField] | str:
    if raw is None or isinstance(raw, str):
        return raw or ""  # the SDK's form: a model class name, or ""
    try:
        return parse_state_schema(raw)
    except SchemaShapeError as exc:
        issues.add(f"state_schema.{exc.path}".rstrip("."), str(exc))
        return {}


def _retry_policies(raw: Any, issues: _Issues) -> dict[str, RetryPolicy]:
    policies: dict[str, RetryPolicy] = {}
    for name, spec in _mapping({"retry_policies": raw}, "retry_policies", issues).items():
        try:
            fields = _without_none(spec) if isinstance(spec, Mapping) else spec
            policies[str(name)] = parse_retry(fields)
        except ValueProblem as exc:
            issues.add(f"retry_policies.{name}", f"retry policy '{name}': {exc}")
    return policies


#: Retry policies the SDK's strategy compiler names without defining them (its runtime has
#: them built in): Tether's default retry stands in (3 attempts, exponential from 0.5 s).
SDK_RETRY_POLICIES: dict[str, RetryPolicy] = {"llm_default": RetryPolicy()}


def _builtin_policies(
    nodes: Mapping[str, Node], policies: dict[str, RetryPolicy]
) -> dict[str, RetryPolicy]:
    """``policies`` with the SDK's built-in ones its nodes name and it does not define."""
    for node in nodes.values():
        name = node.retry_policy
        if isinstance(name, str) and name in SDK_RETRY_POLICIES and name not in policies:
            policies[name] = SDK_RETRY_POLICIES[name]
    return policies


def _timeouts(raw: Any, issues: _Issues) -> Timeouts:
    spec = _mapping({"timeouts": raw}, "timeouts", issues)
    known = {k: v for k, v in spec.items() if k in Timeouts.__struct_fields__}
    # A key the SDK leaves out keeps Tether's default (e.g. heartbeat_interval=30); an
    # explicit null stays null so that Tether's own IR round-trips.
    timeouts = issues.convert(known, Timeouts, "timeouts", "timeouts")
    return timeouts if timeouts is not None else Timeouts()
