"""debate: a proposal, then up to ``max_rounds`` of counter-argument and ruling (a
``judge_model`` if given); an unsettled ruling goes through a cost guard to a response that
opens the next round; a settled ruling, or the last round, goes to the finalizer.

    __propose__ -> __counter_0__ -> __judge_0__ -> __judge_gate_0__ -> [settled] __finalize__
        -> __cost_guard_0__ -> __respond_0__ -> __counter_1__ -> ...
    __judge_{N-1}__ -> __finalize__ -> end
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
    rounds,
    verdict_gate,
)


def compile_debate(spec: StrategyInput) -> dict[str, Any]:
    goal, model = spec.goal, spec.model
    judge_model = spec.config.get("judge_model", model)
    max_rounds = rounds(spec)
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    nodes["__propose__"] = model_node(
        model,
        f"Goal: {goal}. Present your initial position with reasoning and evidence.",
        "__propose_output__",
        labels={NODE: "proposer", EVENT: "iteration_started"},
    )
    edges.append(edge("__propose__", "__counter_0__"))
    for i in range(max_rounds):
        counter_id, judge_id, gate_id = f"__counter_{i}__", f"__judge_{i}__", f"__judge_gate_{i}__"
        respond_id, guard_id = f"__respond_{i}__", f"__cost_guard_{i}__"
        argument_ref = "__propose_output__" if i == 0 else f"__respond_{i - 1}_output__"
        nodes[counter_id] = model_node(
            model,
            (
                f"Goal: {goal}. "
                f"Previous argument: {{{{ state.{argument_ref} }}}}. "
                "Challenge this argument. Identify weaknesses, present counter-arguments."
            ),
            f"__counter_{i}_output__",
            labels={NODE: "challenger", EVENT: "tool_called", ITERATION: str(i)},
        )
        edges.append(edge(counter_id, judge_id))
        nodes[judge_id] = model_node(
            judge_model,
            (
                f"Goal: {goal}. "
                f"Proposition: {{{{ state.{argument_ref} }}}}. "
                f"Counter-argument: {{{{ state.__counter_{i}_output__ }}}}. "
                "Judge: has the debate reached a well-supported conclusion? "
                'Output JSON: {"settled": true/false, "score": 0.0-1.0, "ruling": "..."}'
            ),
            f"__judge_{i}_ruling__",
            labels={NODE: "judge", EVENT: "critic_verdict", ITERATION: str(i)},
        )
        if i == max_rounds - 1:
            edges.append(edge(judge_id, FINALIZE))
            continue
        settled = f"state.__judge_{i}_ruling__.settled == true"
        verdict_gate(nodes, edges, (judge_id, settled), (gate_id, "judge_gate"), guard_id, i)
        nodes[guard_id] = cost_guard(i, respond_id)
        edges.extend(guard_edges(guard_id, respond_id))
        nodes[respond_id] = model_node(
            model,
            (
                f"Goal: {goal}. "
                f"Counter-argument: {{{{ state.__counter_{i}_output__ }}}}. "
                f"Judge feedback: {{{{ state.__judge_{i}_ruling__ }}}}. "
                "Respond to the counter-argument, strengthening your position."
            ),
            f"__respond_{i}_output__",
            labels={NODE: "responder", EVENT: "iteration_started", ITERATION: str(i + 1)},
        )
        edges.append(edge(respond_id, f"__counter_{i + 1}__"))
    final = f"Goal: {goal}\nSynthesize the debate into a final, well-supported answer."
    return finish(nodes, edges, final, model, "__propose__")
