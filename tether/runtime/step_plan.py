"""The common turns planned in one pass: a run's start that hands out its first step, a
plain step's completion that hands out the next, and the last step's completion that ends
the run.

``plan_turn`` is general: it folds each record with ``apply`` and asks ``decide`` what follows
until nothing does, which is what every kind of node, wait, join, budget and segment needs.
Most turns of most runs have one of these three shapes, and for them the general path's
dispatching is most of the planning's cost. ``plan_step`` gives the same state, records and
rows for them (what ``_completed``, ``decide``/``_schedule``, ``_scheduled`` and ``_ended``
do for these shapes, as one replace), and None for anything else, which then goes the
general way. That they agree is a property test over drawn graphs, outcomes and states
(tests/runtime/test_step_plan.py); the fold (I2) stays ``apply``: replay never comes here.

Example (what ExecutionActor._turn does)::

    planned = plan_step(before, graph, incoming, now, services.bind)
    if planned is None:
        planned = plan_turn(before, graph, incoming, ctx)
"""

from __future__ import annotations

from typing import Any

import msgspec

from tether.persistence.contract import NewRecord
from tether.runtime.graph import Graph
from tether.runtime.planner import Binder
from tether.runtime.records import (
    ExecutionCompleted,
    ExecutionStarted,
    NodeCompleted,
    NodeScheduled,
    Record,
    normalized,
)
from tether.runtime.state import RUNNING, ExecutionState, apply, with_output
from tether.runtime.state_types import NodeRun

Planned = tuple[ExecutionState, list[Record], list[NewRecord]]

_replace = msgspec.structs.replace


def plan_step(
    before: ExecutionState, graph: Graph, incoming: Record | None, now_ms: int, bind: Binder
) -> Planned | None:
    """What ``plan_turn`` gives for one of the common turns, or None for any other turn."""
    if isinstance(incoming, NodeCompleted):
        return _after_step(before, graph, incoming, now_ms, bind)
    if isinstance(incoming, ExecutionStarted):
        return _first_step(before, graph, incoming, now_ms, bind)
    return None


def _first_step(
    before: ExecutionState, graph: Graph, incoming: ExecutionStarted, now_ms: int, bind: Binder
) -> Planned | None:
    start = graph.step_start
    if start is None or before.status != "new" or incoming.forked_from is not None:
        return None
    started, started_row = normalized(incoming)
    # The start's fold is _started's, not copied here: running, with the start node ready.
    state = apply(before, started, graph)
    handed = _hand_out(state.data, graph, start, None, now_ms, bind)
    if handed is None:
        return None
    scheduled, scheduled_row, run = handed
    after = _replace(
        state, last_seq=state.last_seq + 1, ready=(), nodes={**state.nodes, start: run},
        running=state.running + 1,
    )  # fmt: skip
    return after, [started, scheduled], [started_row, scheduled_row]


def _after_step(
    before: ExecutionState, graph: Graph, incoming: NodeCompleted, now_ms: int, bind: Binder
) -> Planned | None:
    node_id = incoming.node_id
    target = graph.step_next.get(node_id)
    last = target is None and node_id in graph.step_ends
    if (target is None and not last) or not _nothing_else_follows(before) or incoming.facts:
        return None
    current = before.nodes.get(node_id)
    if current is None or current.status != "scheduled" or current.dispatch != incoming.dispatch:
        return None  # the general path keeps the fold total for a record it would not plan
    if last and before.running != 1:
        return None  # ending with other work in flight cancels it: the general path's turn
    done, done_row = normalized(incoming)
    assert isinstance(done, NodeCompleted)
    data = with_output(before.data, node_id, done.output, graph)
    finished = _replace(current, status="completed")
    if target is None:
        return _last_step(before, data, finished, done, done_row, now_ms)
    prev = finished if target == node_id else before.nodes.get(target)
    if prev is not None and prev.status != "completed":
        return None  # in flight (superseded), retrying or failed: the general path's to plan
    handed = _hand_out(data, graph, target, prev, now_ms, bind)
    if handed is None:
        return None
    scheduled, scheduled_row, run = handed
    after = _replace(
        before, last_seq=before.last_seq + 2, data=data,
        nodes={**before.nodes, node_id: finished, target: run},
        completions=before.completions + 1,
    )  # fmt: skip
    return after, [done, scheduled], [done_row, scheduled_row]


def _last_step(
    before: ExecutionState,
    data: dict[str, Any],
    finished: NodeRun,
    done: NodeCompleted,
    done_row: NewRecord,
    now_ms: int,
) -> Planned:
    """The run's end after its last step: the result is the whole state (no end node)."""
    completed, completed_row = normalized(ExecutionCompleted(at_ms=now_ms, result=data))
    assert isinstance(completed, ExecutionCompleted)
    after = _replace(
        before, last_seq=before.last_seq + 2, data=data,
        nodes={**before.nodes, done.node_id: finished}, completions=before.completions + 1,
        running=before.running - 1, ended=True, status="completed", ended_at_ms=now_ms,
        result=completed.result,
    )  # fmt: skip
    return after, [done, completed], [done_row, completed_row]


def _hand_out(
    data: dict[str, Any],
    graph: Graph,
    node_id: str,
    prev: NodeRun | None,
    now_ms: int,
    bind: Binder,
) -> tuple[NodeScheduled, NewRecord, NodeRun] | None:
    """The first attempt of ``node_id``'s next hand-out, its arguments bound from ``data``,
    its row and its run; None when they do not bind (the general path records that, or holds
    the node for a tool no worker has announced, and raises again whatever else it was)."""
    try:
        args = bind(graph.node(node_id), data)
    except Exception:
        return None
    dispatch = (prev.dispatch if prev is not None else 0) + 1
    scheduled, row = normalized(
        NodeScheduled(
            at_ms=now_ms, node_id=node_id, attempt=1, dispatch=dispatch, input=args,
            not_before_ms=None,
        )
    )  # fmt: skip
    assert isinstance(scheduled, NodeScheduled)
    return scheduled, row, NodeRun("scheduled", 1, dispatch, None, scheduled.input)


def _nothing_else_follows(state: ExecutionState) -> bool:
    """Is nothing ready, waiting, halted or due to end or roll, so that what follows the
    completion is its successor's hand-out (or the run's end) and nothing else? (Other
    hand-outs in flight, a parallel block's other branches, change nothing for a hand-out:
    the general path's second pass finds work in flight and stops, and the successor, if in
    flight itself, is refused by the caller.)"""
    return (
        state.status == RUNNING
        and not state.ready
        and not state.waits
        and state.halt is None
        and state.limit is None
        and not state.ended
        and state.end_output is None
        and not state.continue_pending
    )
