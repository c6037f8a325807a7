"""What follows in a code-first execution's turn: retries, ended waits, then the body.

Retries and the end of waits are decided as for a graph (a failed step's next attempt with
its backoff, a fired timer, an event taken from the inbox, an approval's timeout); once those
are folded, the body runs (``CodeDriver.advance``) and its new calls, or its end, are the
rest of the turn. The driver is kept by the execution's actor (``CodeSlot``) between turns.

Example (what the planner does for a code-first workflow)::

    records = decide_code(state, graph, ctx)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.runtime.code_first.calls import CodeDriver
from tether.runtime.planner import PlanContext, retry_not_before, wait_over
from tether.runtime.records import NodeScheduled, Record
from tether.runtime.state import ExecutionState

if TYPE_CHECKING:
    from tether.runtime.code_first.graph import CodeGraph


class CodeSlot:
    """Where an execution's actor keeps its body's driver between turns (a cache: dropped
    whenever a turn does not commit, and rebuilt from the state by replaying the body)."""

    def __init__(self) -> None:
        self.driver: CodeDriver | None = None

    def drop(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None


def decide_code(state: ExecutionState, graph: CodeGraph, ctx: PlanContext) -> list[Record]:
    out: list[Record] = []
    for node_id in dict.fromkeys(state.ready):  # a failed step's next attempt
        prev = state.nodes[node_id]
        attempt = prev.attempt + 1
        out.append(
            NodeScheduled(
                at_ms=ctx.now_ms, node_id=node_id, attempt=attempt, dispatch=prev.dispatch + 1,
                input=prev.input, not_before_ms=retry_not_before(graph, node_id, prev, ctx),
            )
        )  # fmt: skip
    taken: dict[str, int] = {}
    for node_id, wait in state.waits.items():
        over = wait_over(node_id, wait, state, graph, ctx, taken)
        if over is not None:
            out.append(over)
    if out:
        return out  # folded first: the body then reads their results
    slot = ctx.code
    if slot is None:
        raise RuntimeError("a code-first execution planned without its CodeSlot")
    if slot.driver is None:
        slot.driver = CodeDriver(graph.code, state, graph.ensure_step)
    driver: CodeDriver = slot.driver
    return driver.advance(state, ctx.now_ms, ctx.rng)
