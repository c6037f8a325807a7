"""Continue-as-new: the next segment's first turn, written before this segment's boundary.

Example (what ExecutionActor._turn does when a turn ends with a SegmentBoundary)::

    await open_segment(services, graph, execution_id, state_after, boundary)
"""

from __future__ import annotations

import contextlib

from tether.persistence.contract import IndexUpdate, SequenceConflict, Turn
from tether.runtime.code_first.fold import position_of
from tether.runtime.graph import Graph
from tether.runtime.records import SegmentBoundary, SegmentStarted, normalized
from tether.runtime.services import Services
from tether.runtime.signals import RESERVED_EVENT_PREFIX
from tether.runtime.state import ExecutionState, replay


async def open_segment(
    s: Services,
    graph: Graph | None,
    execution_id: str,
    state: ExecutionState,
    boundary: SegmentBoundary,
) -> None:
    """Write the next segment's first turn before this one's boundary: a crash between the
    two leaves this segment running, and its recovery reaches the same boundary with the same
    next id, whose first turn then exists already (I3, I4)."""
    nxt = boundary.next_execution_id
    if graph is not None and graph.is_code:
        started = _code_segment(execution_id, state, boundary)
    else:
        started = _graph_segment(execution_id, state, boundary)
    decoded, row = normalized(started)
    seeded = replay(graph, [decoded]) if graph is not None else ExecutionState()
    index = IndexUpdate(
        status=seeded.display_status,
        updated_at_ms=boundary.at_ms,
        workflow_id=state.workflow_id,
        workflow_version=state.workflow_version,
        created_at_ms=boundary.at_ms,
    )
    # Already there: written before a crash that cut this segment's boundary off.
    with contextlib.suppress(SequenceConflict):
        await s.append(Turn(nxt, 1, (row,), None, index))


def _graph_segment(
    execution_id: str, state: ExecutionState, boundary: SegmentBoundary
) -> SegmentStarted:
    """A graph goes on from where it stood: its state, waits and ready nodes included."""
    nxt = boundary.next_execution_id
    return SegmentStarted(
        at_ms=boundary.at_ms,
        execution_id=nxt,
        root_execution_id=state.root_execution_id or execution_id,
        segment=state.segment + 1,
        previous_execution_id=execution_id,
        workflow_id=state.workflow_id,
        workflow_version=state.workflow_version,
        input=state.input,
        data=state.data,
        nodes=state.nodes,
        ready=state.ready,
        arrivals=state.arrivals,
        waits=state.waits,
        inbox=state.inbox,
        event_ids=state.event_ids,
        completions=state.completions,
        started_at_ms=state.started_at_ms,
        loops=state.loops,
        spent_usd=state.spent_usd,
        spent_tokens=state.spent_tokens,
        eval_retries=state.eval_retries,
    )


def _code_segment(
    execution_id: str, state: ExecutionState, boundary: SegmentBoundary
) -> SegmentStarted:
    """A code-first body starts again from the top with the input its last call gave
    (``ctx.continue_as_new``) and nothing else of this segment."""
    node_id, result = max(
        (item for chunk in state.calls.values() for item in chunk.items()),
        key=lambda item: position_of(item[0]) or 0,
    )
    assert node_id.startswith("@continue_as_new#"), node_id
    return SegmentStarted(
        at_ms=boundary.at_ms,
        execution_id=boundary.next_execution_id,
        root_execution_id=state.root_execution_id or execution_id,
        segment=state.segment + 1,
        previous_execution_id=execution_id,
        workflow_id=state.workflow_id,
        workflow_version=state.workflow_version,
        input=result.value,
        started_at_ms=state.started_at_ms,
        # Events not taken yet go on, except the runtime's own (a child's end nobody waits for
        # any more): a body may wait for any key, and those would pile up segment after segment.
        inbox={k: v for k, v in state.inbox.items() if not k.startswith(RESERVED_EVENT_PREFIX)},
        event_ids=state.event_ids,
        spent_usd=state.spent_usd,
        spent_tokens=state.spent_tokens,
    )
