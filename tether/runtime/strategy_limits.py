"""The `jamjet` SDK's strategy limits in the runtime: the ``limit_exceeded`` node.

The SDK compiles an agent's limits into guards: condition nodes that route to its
``__limit_exceeded__`` node. Reaching a ``limit_exceeded`` node ends the run
``limit_exceeded``: the node's ``node_completed`` and an ``execution_limit_exceeded`` record,
decided in one turn (replay folds the same two records).

Example (what the planner does for a ready ``limit_exceeded`` node)::

    records = limit_reached(node, state, graph, now_ms)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.ir.types import LimitExceededKind, Node
from tether.runtime.graph import Graph
from tether.runtime.records import ExecutionLimited, NodeCompleted, Record

if TYPE_CHECKING:
    from tether.runtime.state import ExecutionState


def limit_reached(node: Node, state: ExecutionState, graph: Graph, now_ms: int) -> list[Record]:
    """The records of reaching the ``limit_exceeded`` node ``node``: it completes (routing
    nowhere) and the run ends ``limit_exceeded`` saying why."""
    kind = node.kind
    assert isinstance(kind, LimitExceededKind)
    why = kind.description or "limit reached"
    return [
        NodeCompleted(at_ms=now_ms, node_id=node.id, dispatch=0, attempt=0, output={"next": []}),
        ExecutionLimited(at_ms=now_ms, error=f"node {node.id!r}: {why}", node_id=node.id),
    ]
