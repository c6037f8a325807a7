"""critic: a draft, then up to ``max_rounds`` critic verdicts (a separate ``critic_model`` if
given), each failing one followed by a revision; a passing verdict, or the last round, goes
to the finalizer.

    __draft__ -> __critic_0__ -> __critic_gate_0__ -> [passed] __finalize__
                                                   -> __revise_0__ -> __critic_1__ -> ...
    __critic_{N-1}__ -> __finalize__ -> end
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


def compile_critic(spec: StrategyInput) -> dict[str, Any]:
    goal, model = spec.goal, spec.model
    critic_model = spec.config.get("critic_model", model)
    pass_threshold = spec.config.get("pass_threshold", 0.8)
    max_rounds = rounds(spec)
    nodes: dict[str, Any] = {}
    edges: list[dict[str, Any]] = []
    nodes["__draft__"] = model_node(
        model,
        f"Goal: {goal}\nProduce a high-quality initial response.",
        "__draft_output__",
        labels={NODE: "draft_generation", EVENT: "iteration_started"},
    )
    edges.append(edge("__draft__", "__critic_0__"))
    for i in range(max_rounds):
        critic_id, revise_id = f"__critic_{i}__", f"__revise_{i}__"
        draft_ref = "__draft_output__" if i == 0 else f"__revise_{i - 1}_output__"
        nodes[critic_id] = model_node(
            critic_model,
            (
                f"Goal: {goal}\n"
                f"Draft to evaluate: {{{{ state.{draft_ref} }}}}\n"
                f"Evaluate this draft against the goal. Pass threshold: {pass_threshold}.\n"
                'Output JSON: {"score": 0.0-1.0, "passed": true/false, "feedback": "..."}'
            ),
            f"__critic_{i}_verdict__",
            labels={NODE: "critic_eval", EVENT: "critic_verdict", ITERATION: str(i)},
        )
        if i == max_rounds - 1:
            edges.append(edge(critic_id, FINALIZE))
            continue
        passed = f"state.__critic_{i}_verdict__.passed == true"
        gate = (f"__critic_gate_{i}__", "critic_gate")
        verdict_gate(nodes, edges, (critic_id, passed), gate, revise_id, i)
        nodes[revise_id] = model_node(
            model,
            (
                f"Goal: {goal}\n"
                f"Previous draft: {{{{ state.{draft_ref} }}}}\n"
                f"Critic feedback: {{{{ state.__critic_{i}_verdict__.feedback }}}}\n"
                "Revise the draft based on the feedback."
            ),
            f"__revise_{i}_output__",
            labels={NODE: "revision", EVENT: "iteration_started", ITERATION: str(i + 1)},
        )
        edges.append(edge(revise_id, f"__critic_{i + 1}__"))
    final = f"Goal: {goal}\nFormat the final, polished response based on all revisions."
    return finish(nodes, edges, final, model, "__draft__")
