"""Named reasoning strategies compiled into graph nodes, in the `jamjet` SDK's shapes.

``type: agent`` with ``strategy: react | plan-and-execute | reflection | critic | consensus |
debate`` in a workflow's YAML compiles here into the same node ids, kinds, labels, state keys
and edges as the SDK's ``Agent(...).compile()`` for the same agent, so a run reads the same
whichever side compiled it (``tests/ir/test_strategy_shapes.py`` compares them). Limits:
``max_iterations`` unrolls the rounds, ``max_cost_usd`` becomes the workflow's
``cost_limit_usd`` (its cost guards, and the projection before each call), ``timeout`` its
``timeouts.workflow_timeout``; the runtime side is :mod:`tether.runtime.strategy_limits`.

Example::

    compiled = compile_strategy("critic", {}, ["search"], "gpt-4o-mini",
                                StrategyLimits(3, 0.5, 120), "Write a haiku", "poet")
    compiled["start_node"], sorted(compiled["nodes"])[:2]   # "__draft__", [...]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tether.ir.strategies.consensus import compile_consensus
from tether.ir.strategies.critic import compile_critic
from tether.ir.strategies.debate import compile_debate
from tether.ir.strategies.plan_execute import compile_plan_and_execute
from tether.ir.strategies.react import compile_react
from tether.ir.strategies.reflection import compile_reflection
from tether.ir.strategies.shapes import StrategyInput, StrategyLimits

__all__ = ["STRATEGIES", "StrategyLimits", "compile_strategy"]

#: Strategy name -> its compiler.
STRATEGIES: dict[str, Callable[[StrategyInput], dict[str, Any]]] = {
    "react": compile_react,
    "plan-and-execute": compile_plan_and_execute,
    "critic": compile_critic,
    "reflection": compile_reflection,
    "consensus": compile_consensus,
    "debate": compile_debate,
}


def compile_strategy(
    strategy_name: str,
    strategy_config: dict[str, Any],
    tools: list[str],
    model: str,
    limits: StrategyLimits,
    goal: str,
    agent_id: str,
) -> dict[str, Any]:
    """``{nodes, edges, start_node, strategy_metadata}`` for a named strategy (the SDK's
    ``jamjet.compiler.compile_strategy`` contract). Raises ValueError for an unknown
    strategy or a limit out of range."""
    limits.validate()
    compiler = STRATEGIES.get(strategy_name)
    if compiler is None:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"Unknown strategy '{strategy_name}'. Known strategies: {known}")
    spec = StrategyInput(strategy_config, tools, model, limits, goal, agent_id)
    result = compiler(spec)
    result["strategy_metadata"] = {
        "strategy_name": strategy_name,
        "strategy_config": strategy_config,
        "limits": limits.to_dict(),
        "agent_id": agent_id,
    }
    return result
