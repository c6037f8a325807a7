"""consensus: ``num_agents`` independent answers (3 by default; one after another, a cost
guard between them), a vote, a judge (``judge_model`` if given), then the finalizer.

    __agent_0__ -> __cost_guard_0__ -> __agent_1__ -> ... -> __agent_{N-1}__
    -> __vote__ -> __judge__ -> __finalize__ -> end
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


def compile_consensus(spec: StrategyInput) -> dict[str, Any]:
    goal, model = spec.goal, spec.model
    num_agents = spec.config.get("num_agents", 3)
    judge_model = spec.config.get("judge_model", model)
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    for i in range(num_agents):
        agent_node = f"__agent_{i}__"
        nodes[agent_node] = model_node(
            model,
            f"Goal: {goal}. You are agent {i + 1} of {num_agents}. "
            "Independently produce your best answer.",
            f"__agent_{i}_output__",
            labels={NODE: "parallel_agent", EVENT: "iteration_started", ITERATION: str(i)},
        )
        if i < num_agents - 1:
            guard_id, next_agent = f"__cost_guard_{i}__", f"__agent_{i + 1}__"
            nodes[guard_id] = cost_guard(i, next_agent)
            edges.append(edge(agent_node, guard_id))
            edges.extend(guard_edges(guard_id, next_agent))
        else:
            edges.append(edge(agent_node, "__vote__"))
    answers = ", ".join(f"{{{{ state.__agent_{i}_output__ }}}}" for i in range(num_agents))
    nodes["__vote__"] = model_node(
        model,
        (
            f"Goal: {goal}. "
            f"You have {num_agents} candidate answers: {answers}. "
            "Analyze each answer. Vote for the best one. "
            'Output JSON: {"votes": [{"agent": i, "score": 0.0-1.0, "reason": "..."}], "winner": i}'
        ),
        "__vote_result__",
        labels={NODE: "voting", EVENT: "critic_verdict"},
    )
    edges.append(edge("__vote__", "__judge__"))
    nodes["__judge__"] = model_node(
        judge_model,
        (
            f"Goal: {goal}. "
            "The voting result: {{ state.__vote_result__ }}. "
            "The winning answer: {{ state.__vote_result__.winner }}. "
            "Verify this is the best choice and produce the final refined answer."
        ),
        "__judge_output__",
        labels={NODE: "judge", EVENT: "strategy_completed"},
    )
    edges.append(edge("__judge__", FINALIZE))
    final = f"Goal: {goal}\nFormat the final consensus answer based on the judge's output."
    return finish(nodes, edges, final, model, "__agent_0__")
