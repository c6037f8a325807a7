"""reflection: an answer, then up to ``max_rounds`` self-reflections scoring it, each failing
one followed by a revision; a passing reflection, or the last round, goes to the finalizer.

    __execute__ -> __reflect_0__ -> __reflect_gate_0__ -> [passed] __finalize__
                                                       -> __revise_0__ -> __reflect_1__ -> ...
    __reflect_{N-1}__ -> __finalize__ -> end
"""

from __future__ import annotations

from typing import Any

from tether.ir.strategies.shapes import (
    EVENT,
    FINALIZE,
    ITERATION,
    NODE,
    StrategyInput,
    edge,
    finish,
    model_node,
    rounds,
    verdict_gate,
)


def compile_reflection(spec: StrategyInput) -> dict[str, Any]:
    goal, model = spec.goal, spec.model
    pass_threshold = spec.config.get("pass_threshold", 0.8)
    max_rounds = rounds(spec)
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    nodes["__execute__"] = model_node(
        model,
        f"Goal: {goal}. Produce your best response.",
        "__execute_output__",
        labels={NODE: "initial_execution", EVENT: "iteration_started"},
    )
    edges.append(edge("__execute__", "__reflect_0__"))
    for i in range(max_rounds):
        reflect_id, revise_id, gate_id = (
            f"__reflect_{i}__",
            f"__revise_{i}__",
            f"__reflect_gate_{i}__",
        )
        output_ref = "__execute_output__" if i == 0 else f"__revise_{i - 1}_output__"
        nodes[reflect_id] = model_node(
            model,
            (
                f"Goal: {goal}. "
                f"Current output: {{{{ state.{output_ref} }}}}. "
                "Reflect: does this fully achieve the goal? "
                f"Score 0-1. Pass threshold: {pass_threshold}. "
                'Output JSON: {"score": 0.0-1.0, "passed": true/false, '
                '"gaps": "...", "suggestions": "..."}'
            ),
            f"__reflect_{i}_verdict__",
            labels={NODE: "reflection", EVENT: "critic_verdict", ITERATION: str(i)},
        )
        if i == max_rounds - 1:
            edges.append(edge(reflect_id, FINALIZE))
            continue
        passed = f"state.__reflect_{i}_verdict__.passed == true"
        verdict_gate(nodes, edges, (reflect_id, passed), (gate_id, "reflect_gate"), revise_id, i)
        nodes[revise_id] = model_node(
            model,
            (
                f"Goal: {goal}. "
                f"Previous: {{{{ state.{output_ref} }}}}. "
                f"Reflection feedback: {{{{ state.__reflect_{i}_verdict__ }}}}. "
                "Improve the response."
            ),
            f"__revise_{i}_output__",
            labels={NODE: "revision", EVENT: "iteration_started", ITERATION: str(i + 1)},
        )
        edges.append(edge(revise_id, f"__reflect_{i + 1}__"))
    final = (
        f"Goal: {goal}\nFormat the final, polished response based on all reflections and revisions."
    )
    return finish(nodes, edges, final, model, "__execute__")
