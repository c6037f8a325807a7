"""The `jamjet` SDK's strategy limits in the runtime: ``state.__cost_exceeded__`` and the
``limit_exceeded`` node.

The SDK compiles an agent's ``max_cost_usd`` into cost guards: condition nodes that route to its
``__limit_exceeded__`` node when ``state.__cost_exceeded__`` holds. The fold sets that key to
true, once, at the ``node_completed`` whose recorded cost brings the run's spending
(``ExecutionState.spent_usd``, summed from the calls' journaled facts) to
``Workflow.cost_limit_usd``; until then it is absent, which conditions read as null (false).
Replay sets it at the same record (I2): nothing live-only goes into it.

Reaching a ``limit_exceeded`` node ends the run ``limit_exceeded``: the node's
``node_completed`` and an ``execution_limit_exceeded`` record, decided in one turn.

Example (what the fold and the planner do)::

    state = mark_cost(state, graph)          # after a call's facts were added to spent_usd
    records = limit_reached(node, state, graph, now_ms)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from tether.ir.types import LimitExceededKind, Node
from tether.runtime.graph import Graph
from tether.runtime.records import ExecutionLimited, NodeCompleted, Record

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState

#: The state key the SDK's cost guards read.
COST_EXCEEDED: Final = "__cost_exceeded__"


def mark_cost(state: ExecutionState, graph: Graph) -> ExecutionState:
    """``state`` with ``__cost_exceeded__`` true once its spending reached the cost limit."""
    cap = graph.workflow.cost_limit_usd
    if cap is None or state.spent_usd < cap or state.data.get(COST_EXCEEDED) is True:
        return state
    return msgspec.structs.replace(state, data={**state.data, COST_EXCEEDED: True})


def limit_reached(node: Node, state: ExecutionState, graph: Graph, now_ms: int) -> list[Record]:
    """The records of reaching the ``limit_exceeded`` node ``node``: it completes (routing
    nowhere) and the run ends ``limit_exceeded`` saying why."""
    kind = node.kind
    assert isinstance(kind, LimitExceededKind)
    why = kind.description or "limit reached"
    cap = graph.workflow.cost_limit_usd
    if cap is not None and state.data.get(COST_EXCEEDED) is True:
        why += f" (model calls cost {state.spent_usd:.6g} USD; the cost limit is {cap:g} USD)"
    return [
        NodeCompleted(at_ms=now_ms, node_id=node.id, dispatch=0, attempt=0, output={"next": []}),
        ExecutionLimited(at_ms=now_ms, error=f"node {node.id!r}: {why}", node_id=node.id),
    ]
