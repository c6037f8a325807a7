"""react: ``max_iterations`` thoughts, each followed by a cost guard and (but the last) an
observation of the tool's result, then the finalizer.

    __think_0__ -> __react_guard_0__ -> __observe_0__ -> __think_1__ -> ...
    __think_{N-1}__ -> __react_guard_{N-1}__ -> __finalize__ -> end
"""

from __future__ import annotations

from typing import Any

from tether.ir.strategies.shapes import (
    EVENT,
    FINALIZE,
    ITERATION,
    NODE,
    StrategyInput,
    cost_guard,
    edge,
    finish,
    guard_edges,
    model_node,
)


def compile_react(spec: StrategyInput) -> dict[str, Any]:
    n = spec.limits.max_iterations
    goal, model = spec.goal, spec.model
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    for i in range(n):
        think_id, observe_id, guard_id = (
            f"__think_{i}__",
            f"__observe_{i}__",
            f"__react_guard_{i}__",
        )
        nodes[think_id] = model_node(
            model,
            (
                f"Goal: {goal}\n"
                f"Available tools: {spec.tools_list}\n"
                f"Iteration {i + 1} of {n}. "
                "Think about what to do next. "
                "If you have enough information to answer, say FINISH. "
                "Otherwise choose a tool and describe what input to pass. "
                'Output JSON: {"thought": "...", "action": "tool_name or FINISH", "input": {...}}'
            ),
            f"__think_{i}_output__",
            labels={NODE: "react_think", EVENT: "iteration_started", ITERATION: str(i)},
        )
        ok_target = observe_id if i < n - 1 else FINALIZE
        nodes[guard_id] = cost_guard(i, ok_target)
        edges.append(edge(think_id, guard_id))
        edges.extend(guard_edges(guard_id, ok_target))
        if i < n - 1:
            nodes[observe_id] = model_node(
                model,
                (
                    f"Goal: {goal}\n"
                    f"Previous thought: {{{{ state.__think_{i}_output__ }}}}\n"
                    "Process the tool result and update your understanding. "
                    'Output JSON: {"observation": "...", "progress": "..."}'
                ),
                f"__observe_{i}_output__",
                labels={NODE: "react_observe", EVENT: "tool_called", ITERATION: str(i)},
            )
            edges.append(edge(observe_id, f"__think_{i + 1}__"))
    final = f"Goal: {goal}\nBased on all thoughts and observations, produce a final answer."
    return finish(nodes, edges, final, model, "__think_0__")
