"""A YAML ``type: agent`` node with a ``strategy:``, expanded into the strategy's graph nodes.

The node's keys: ``strategy``, ``model``, ``goal`` (or ``instructions``; a template over
state like any prompt), ``tools``, ``max_iterations`` (10), ``max_cost_usd`` (1.0),
``timeout`` (300 s), ``strategy_config`` (the strategy's own settings: ``pass_threshold``,
``max_rounds``, ``critic_model``, ``judge_model``, ``num_agents``, ``verifier_model``) and
``next``. The expansion is the SDK's sub-graph (node ids ``__think_0__`` ...): what routed to
the agent node routes to the strategy's first node, and its ``__finalize__`` goes to
``next``. Its node ids and state keys are the SDK's, so one workflow holds one strategy
agent (a second is refused, naming both).

Example::

    expanded = expand("research", {"type": "agent", "strategy": "react", "model": "m",
                                   "goal": "Find it", "max_iterations": 2})
    expanded.start, expanded.limits.max_iterations     # "__think_0__", 2
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.ir.errors import WorkflowInvalid
from tether.ir.jamjet_ir import workflow_from_ir
from tether.ir.strategies import STRATEGIES, compile_strategy
from tether.ir.strategies.shapes import FINALIZE, StrategyLimits
from tether.ir.types import Edge, Node
from tether.ir.yaml_values import ValueProblem, as_str, as_str_list, parse_duration

#: The keys a strategy agent node takes.
STRATEGY_KEYS = frozenset(
    {
        "type", "strategy", "model", "goal", "instructions", "tools", "max_iterations",
        "max_cost_usd", "timeout", "strategy_config", "next", "description",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ExpandedAgent:
    """The strategy's nodes and edges, where it starts, its limits and its name."""

    nodes: dict[str, Node]
    edges: list[Edge]
    start: str
    limits: StrategyLimits
    strategy: str


def expand(node_id: str, spec: Mapping[str, Any]) -> ExpandedAgent:
    """Compile the agent node ``node_id``; raises ``ValueProblem`` naming the bad key."""
    for key in spec:
        if key not in STRATEGY_KEYS:
            allowed = ", ".join(sorted(STRATEGY_KEYS))
            raise ValueProblem((key,), f"'{key}' is not a key of a strategy agent ({allowed})")
    name = spec.get("strategy")
    if name not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueProblem(("strategy",), f"unknown strategy {name!r} (known: {known})")
    model = _text(spec, "model", required=True)
    goal = _text(spec, "goal") or _text(spec, "instructions")
    if not goal:
        raise ValueProblem((), "a strategy agent needs a 'goal' (or 'instructions')")
    tools = as_str_list(spec.get("tools", []), "tools")
    limits = StrategyLimits(
        max_iterations=_whole(spec, "max_iterations", 10),
        max_cost_usd=_usd(spec.get("max_cost_usd", 1.0)),
        timeout_seconds=_seconds(spec.get("timeout", 300)),
    )
    config = spec.get("strategy_config") or {}
    if not isinstance(config, Mapping):
        raise ValueProblem(("strategy_config",), "strategy_config must be a mapping")
    try:
        compiled = compile_strategy(str(name), dict(config), tools, model, limits, goal, node_id)
    except (ValueError, TypeError) as exc:
        raise ValueProblem(("strategy_config",), str(exc)) from None
    nxt = spec.get("next", "end")
    if not isinstance(nxt, str):
        raise ValueProblem(("next",), "a strategy agent's 'next' is one node id")
    ir = {
        "workflow_id": node_id,
        "start_node": compiled["start_node"],
        "nodes": {k: {**v, "id": k} for k, v in compiled["nodes"].items()},
        "edges": [
            {**e, "to": nxt} if e["from"] == FINALIZE and e["to"] == "end" else e
            for e in compiled["edges"]
        ],
    }
    try:
        wf = workflow_from_ir(ir, source=node_id)
    except WorkflowInvalid as exc:  # a model name or config value the IR refuses
        raise ValueProblem((), str(exc)) from None
    return ExpandedAgent(wf.nodes, wf.edges, wf.start_node, limits, str(name))


def _text(spec: Mapping[str, Any], key: str, required: bool = False) -> str:
    value = spec.get(key)
    if value is None:
        if required:
            raise ValueProblem((), f"a strategy agent needs '{key}'")
        return ""
    return as_str(value, key)


def _whole(spec: Mapping[str, Any], key: str, default: int) -> int:
    value = spec.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100:
        raise ValueProblem((key,), f"{key} must be a whole number from 1 to 100, got {value!r}")
    return value


def _usd(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not 0 < value < math.inf:
        raise ValueProblem(
            ("max_cost_usd",), f"max_cost_usd must be a positive number, got {value!r}"
        )
    return float(value)


def _seconds(value: Any) -> int:
    try:
        secs = parse_duration(value)
    except ValueProblem as exc:
        raise ValueProblem(("timeout",), f"timeout: {exc}") from None
    if not 1 <= secs < math.inf:
        raise ValueProblem(("timeout",), f"timeout must be at least 1 second, got {value!r}")
    return math.ceil(secs)
