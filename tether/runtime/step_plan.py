"""The common step's turn planned in one pass: a plain work node completed, and its only way
out is another plain work node, which is handed out.

``plan_turn`` is general: it folds each record with ``apply`` and asks ``decide`` what follows
until nothing does, which is what every kind of node, wait, join, budget and segment needs.
Most turns of most runs are this one shape, and for it the general path's dispatching is most
of the planning's cost. ``plan_step`` gives the same records, rows and state for that shape
(``plan_turn``'s ``_completed``, ``decide``/``_schedule`` and ``_scheduled`` for it, as one
replace), and None for anything else, which then goes the general way. That they agree is a
property test over generated chains, loops and outputs (tests/runtime/test_step_plan.py);
the fold (I2) stays ``apply``: replay never comes here.

Example (what ExecutionActor._turn does)::

    planned = plan_step(before, graph, incoming, now, services.bind)
    if planned is None:
        planned = plan_turn(before, graph, incoming, ctx)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from tether.ir.types import Node
from tether.persistence.contract import NewRecord
from tether.runtime.graph import Graph
from tether.runtime.records import NodeCompleted, NodeScheduled, Record, normalized
from tether.runtime.state import RUNNING, ExecutionState, with_output
from tether.runtime.state_types import NodeRun

_replace = msgspec.structs.replace


def plan_step(
    before: ExecutionState,
    graph: Graph,
    incoming: Record | None,
    now_ms: int,
    bind: Callable[[Node, Mapping[str, Any]], dict[str, Any]],
) -> tuple[ExecutionState, list[Record], list[NewRecord]] | None:
    """What ``plan_turn`` gives for a plain step's completion, or None for any other turn."""
    if not isinstance(incoming, NodeCompleted):
        return None
    node_id = incoming.node_id
    target = graph.step_next.get(node_id)
    if target is None or not _nothing_else_follows(before) or incoming.facts:
        return None
    current = before.nodes.get(node_id)
    if current is None or current.status != "scheduled" or current.dispatch != incoming.dispatch:
        return None  # the general path keeps the fold total for a record it would not plan
    done, done_row = normalized(incoming)
    assert isinstance(done, NodeCompleted)
    data = with_output(before.data, node_id, done.output, graph)
    finished = _replace(current, status="completed")
    prev = finished if target == node_id else before.nodes.get(target)
    if prev is not None and prev.status != "completed":
        return None  # in flight (superseded), retrying or failed: the general path's to plan
    try:
        args = bind(graph.node(target), data)
    except Exception:  # unbound arguments or an awaited tool: the general path records (or
        return None  # holds) it, and raises again whatever else this was
    dispatch = (prev.dispatch if prev is not None else 0) + 1
    scheduled, scheduled_row = normalized(
        NodeScheduled(
            at_ms=now_ms, node_id=target, attempt=1, dispatch=dispatch, input=args,
            not_before_ms=None,
        )
    )  # fmt: skip
    assert isinstance(scheduled, NodeScheduled)
    run = NodeRun("scheduled", 1, dispatch, None, scheduled.input)
    after = _replace(
        before, last_seq=before.last_seq + 2, data=data,
        nodes={**before.nodes, node_id: finished, target: run},
        completions=before.completions + 1,
    )  # fmt: skip
    return after, [done, scheduled], [done_row, scheduled_row]


def _nothing_else_follows(state: ExecutionState) -> bool:
    """Is nothing ready, waiting, halted or due to end or roll, so that what follows the
    completion is its successor's hand-out and nothing else? (Other hand-outs in flight, a
    parallel block's other branches, change nothing: the general path's second pass finds
    work in flight and stops, and the successor, if in flight itself, is refused below.)"""
    return (
        state.status == RUNNING
        and not state.ready
        and not state.waits
        and state.halt is None
        and state.limit is None
        and not state.ended
        and not state.continue_pending
    )
