"""The building blocks of a compiled strategy, in the `jamjet` SDK's IR shapes: a model node,
a condition node, the ``__limit_exceeded__`` terminal, an edge, a cost guard's branches.

Node ids start and end with ``__`` (no clash with a user's nodes); labels say what each node
is to the strategy (``jamjet.strategy.node``), which event it stands for
(``jamjet.strategy.event``: ``iteration_started``, ``tool_called``, ``critic_verdict``,
``plan_generated``, ``strategy_completed``) and its iteration (``jamjet.strategy.iteration``).
The runtime reads those labels (``tether.runtime.strategy_limits``), so they must stay what
the SDK writes: the shapes are compared with the SDK's own in ``tests/ir``.

Example::

    model_node("gpt-4o-mini", "Goal: x", "__draft_output__", labels={NODE: "draft_generation"})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

NODE: Final = "jamjet.strategy.node"
EVENT: Final = "jamjet.strategy.event"
ITERATION: Final = "jamjet.strategy.iteration"
LIMIT_NODE: Final = "__limit_exceeded__"
FINALIZE: Final = "__finalize__"
COST_EXCEEDED_TRUE: Final = "state.__cost_exceeded__ == true"


@dataclass(frozen=True)
class StrategyLimits:
    """An agent's limits: rounds, the cost cap in USD, and its time in seconds.

    Example::

        StrategyLimits(max_iterations=3, max_cost_usd=0.5, timeout_seconds=120).validate()
    """

    max_iterations: int
    max_cost_usd: float
    timeout_seconds: int

    def validate(self) -> None:
        """Raise ValueError naming the first limit out of range."""
        if self.max_iterations < 1:
            raise ValueError("max_iterations must be >= 1")
        if self.max_cost_usd <= 0:
            raise ValueError("max_cost_usd must be > 0")
        if self.timeout_seconds < 1:
            raise ValueError("timeout_seconds must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_iterations": self.max_iterations,
            "max_cost_usd": self.max_cost_usd,
            "timeout_seconds": self.timeout_seconds,
        }


@dataclass(frozen=True)
class StrategyInput:
    """What every strategy compiles from."""

    config: dict[str, Any]
    tools: list[str]
    model: str
    limits: StrategyLimits
    goal: str
    agent_id: str

    @property
    def tools_list(self) -> str:
        return ", ".join(self.tools) if self.tools else "none"


def model_node(
    model: str,
    prompt: str,
    output_key: str,
    *,
    system_prompt: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A model call whose answer lands under ``output_key`` (JSON parsed, else text)."""
    return {
        "kind": {
            "type": "model",
            "model_ref": model,
            "prompt_ref": prompt,
            "output_schema": output_key,
            "system_prompt": system_prompt,
        },
        "retry_policy": "llm_default",
        "node_timeout_secs": None,
        "description": prompt,
        "labels": labels or {},
    }


def condition_node(
    expression: str, branches: list[dict[str, Any]], *, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A gate: routing is on its outgoing edges' conditions (``branches`` documents them)."""
    return {
        "kind": {"type": "condition", "branches": branches, "expression": expression},
        "retry_policy": None,
        "node_timeout_secs": None,
        "description": expression,
        "labels": labels or {},
    }


def limit_exceeded_node() -> dict[str, Any]:
    """The terminal a cost guard routes to: the run ends ``limit_exceeded``."""
    return {
        "kind": {"type": "limit_exceeded", "description": "Strategy limit reached"},
        "retry_policy": None,
        "node_timeout_secs": None,
        "description": "Strategy limit exceeded — execution halted",
        "labels": {"jamjet.strategy.limit": "true"},
    }


def edge(from_: str, to: str, condition: str | None = None) -> dict[str, Any]:
    return {"from": from_, "to": to, "condition": condition}


def cost_guard(iteration: int, ok_target: str) -> dict[str, Any]:
    """A cost guard before ``ok_target``: ``__limit_exceeded__`` once the cost is spent."""
    return condition_node(
        COST_EXCEEDED_TRUE,
        [
            {"condition": "state.__cost_exceeded__", "target": LIMIT_NODE},
            {"condition": None, "target": ok_target},
        ],
        labels={NODE: "cost_guard", ITERATION: str(iteration)},
    )


def guard_edges(guard_id: str, ok_target: str) -> list[dict[str, Any]]:
    return [edge(guard_id, LIMIT_NODE, COST_EXCEEDED_TRUE), edge(guard_id, ok_target, None)]


def verdict_gate(
    nodes: dict[str, Any],
    edges: list[dict[str, Any]],
    judged: tuple[str, str],
    gate: tuple[str, str],
    otherwise: str,
    iteration: int,
) -> None:
    """The gate after a judge (``judged``: its node id and the condition that its verdict
    passed): on to the finalizer when it passed, else to ``otherwise``. ``gate``: the gate's
    node id and label. Critic, reflection and debate rounds end in it alike."""
    judge_id, passed = judged
    gate_id, label = gate
    nodes[gate_id] = condition_node(
        passed,
        [{"condition": passed, "target": FINALIZE}, {"condition": None, "target": otherwise}],
        labels={NODE: label, ITERATION: str(iteration)},
    )
    edges.append(edge(judge_id, gate_id))
    edges.append(edge(gate_id, FINALIZE, passed))
    edges.append(edge(gate_id, otherwise, None))


def finish(
    nodes: dict[str, Any], edges: list[dict[str, Any]], final_prompt: str, model: str, start: str
) -> dict[str, Any]:
    """Add the finalizer (its answer is ``result``) and the limit terminal; the compiled dict."""
    nodes[FINALIZE] = model_node(
        model, final_prompt, "result",
        labels={NODE: "finalizer", EVENT: "strategy_completed"},
    )  # fmt: skip
    edges.append(edge(FINALIZE, "end"))
    nodes[LIMIT_NODE] = limit_exceeded_node()
    edges.append(edge(LIMIT_NODE, "end"))
    return {"nodes": nodes, "edges": edges, "start_node": start}


def rounds(spec: StrategyInput) -> int:
    """The verdict rounds of a critic, reflection or debate: its ``max_rounds`` (3 by
    default) within ``max_iterations``."""
    return min(int(spec.config.get("max_rounds", 3)), spec.limits.max_iterations)
