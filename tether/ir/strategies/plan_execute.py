"""plan-and-execute: a plan, then one model call per step (``max_iterations`` steps), a cost
guard before each, an optional verifier after each, then the finalizer.

    __plan__ -> __cost_guard_0__ -> __step_0__ [-> __verify_0__] -> __cost_guard_1__ -> ...
    __step_{N-1}__ -> __finalize__ -> end
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


def compile_plan_and_execute(spec: StrategyInput) -> dict[str, Any]:
    n = spec.limits.max_iterations
    goal, model = spec.goal, spec.model
    verifier_model = spec.config.get("verifier_model")
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    nodes["__plan__"] = model_node(
        model,
        (
            f"You are an AI agent working on: {goal}\n"
            f"Available tools: {spec.tools_list}\n"
            f"Generate a structured plan with up to {n} concrete steps. "
            'Output JSON: {"steps": ["step 1", "step 2", ...]}'
        ),
        "__plan__",
        system_prompt="You are a planning AI. Output valid JSON only.",
        labels={NODE: "plan_generation", EVENT: "plan_generated"},
    )
    edges.append(edge("__plan__", "__cost_guard_0__"))
    for i in range(n):
        step_id, guard_id = f"__step_{i}__", f"__cost_guard_{i}__"
        after = f"__cost_guard_{i + 1}__" if i < n - 1 else FINALIZE
        nodes[guard_id] = cost_guard(i, step_id)
        nodes[step_id] = model_node(
            model,
            (
                f"You are executing step {i + 1} of {n} for the goal: {goal}\n"
                f"The plan is: {{{{ state.__plan__ }}}}\n"
                f"Execute step {i + 1} using the available tools. "
                "Record your result."
            ),
            f"__step_{i}_output__",
            labels={NODE: "step_executor", EVENT: "iteration_started", ITERATION: str(i)},
        )
        if verifier_model:
            verifier_id = f"__verify_{i}__"
            nodes[verifier_id] = model_node(
                verifier_model,
                (
                    f"Verify step {i + 1} output against the goal: {goal}\n"
                    'Output JSON: {"passed": true/false, "score": 0.0-1.0, "feedback": "..."}'
                ),
                f"__verify_{i}_result__",
                labels={NODE: "verifier", EVENT: "critic_verdict"},
            )
            edges.append(edge(step_id, verifier_id))
            edges.append(edge(verifier_id, after))
        else:
            edges.append(edge(step_id, after))
        edges.extend(guard_edges(guard_id, step_id))
    final = (
        f"You completed all steps for the goal: {goal}\n"
        "Synthesize the results from all steps into a final, well-structured response."
    )
    return finish(nodes, edges, final, model, "__plan__")
