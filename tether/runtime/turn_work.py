"""The work-item side of a turn: the items it creates and the items it settles (I4, I5).

Derived from the turn's records and the states before and after it, so recovery re-derives
the same rows (I3); the execution actor commits them with the records, except the rows of
items leased to the in-process pool, which are written only if their outcome needs them
(``tether.runtime.pool_items``); recovery writes pending rows for those still in flight
(``reissued_items``).

Example (what ExecutionActor._turn does)::

    items = created_items(services, graph, execution_id, after, records, now_ms)
    settles = turn_settles(execution_id, before, after, records, incoming, settle, now_ms)
"""

from __future__ import annotations

from typing import Any

import msgspec

from tether.clock import now_ms
from tether.ir.types import Node
from tether.persistence.contract import IndexUpdate, NewRecord, Settle, Turn, WorkItemRow
from tether.runtime.executor import work_item_id
from tether.runtime.graph import Graph
from tether.runtime.records import NodeCompleted, NodeFailed, NodeScheduled, Record
from tether.runtime.services import Services
from tether.runtime.snapshots import encode_state
from tether.runtime.state import ExecutionState
from tether.runtime.work import WorkSpec, encode_spec


def created_items(
    s: Services,
    graph: Graph,
    execution_id: str,
    after: ExecutionState,
    records: list[Record],
    at: int,
) -> list[WorkItemRow]:
    """A work item for each hand-out the turn scheduled and left in flight: leased at once to
    a worker with credit when it is due (one commit per step), else pending. (The caller
    writes the row of one leased to the in-process pool only if its outcome needs it.)"""
    items = []
    for record in records:
        if not isinstance(record, NodeScheduled):
            continue
        run = after.nodes.get(record.node_id)
        if run is None or run.status != "scheduled" or run.dispatch != record.dispatch:
            continue  # settled in the same turn (its arguments did not bind)
        items.append(created_item(s, graph, execution_id, record, at))
    return items


def created_item(
    s: Services, graph: Graph, execution_id: str, record: NodeScheduled, at: int
) -> WorkItemRow:
    """The work item of the hand-out ``record`` schedules (see ``created_items``)."""
    node = graph.node(record.node_id)  # a code-first graph makes its nodes from their ids
    queue, tool, tool_input = s.hand_out_of(node, record.input)
    not_before = record.not_before_ms or 0
    worker = s.ledger.take(queue) if not_before <= at else None
    return _item(
        s, execution_id, node, record.attempt, record.dispatch,
        _payload(graph, node, tool, tool_input), not_before, at, queue,
        # Leased at creation: fence 1 and the lease's expiry, in the same row.
        owner=worker.owner if worker is not None else None,
    )  # fmt: skip


def reissued_items(
    s: Services, graph: Graph, execution_id: str, state: ExecutionState, at: int
) -> list[WorkItemRow]:
    """A pending item for each hand-out in flight, built from the state as ``created_items``
    builds it from the record: for recovery, which writes those that have no row (the
    in-process pool's items that were running when the engine stopped)."""
    items = []
    for node_id, run in state.in_flight():
        node = graph.node(node_id)
        queue, tool, tool_input = s.hand_out_of(node, run.input)
        items.append(
            _item(
                s, execution_id, node, run.attempt, run.dispatch,
                _payload(graph, node, tool, tool_input), run.not_before_ms or 0, at, queue,
                # The lease it replaces had fence 1 (the pool's, never written): the next
                # grant is 2, so nothing that held fence 1 could settle the new lease.
                pending_fence=1,
            )
        )  # fmt: skip
    return items


def _item(
    s: Services,
    execution_id: str,
    node: Node,
    attempt: int,
    dispatch: int,
    payload: bytes,
    not_before_ms: int,
    at: int,
    queue: str,
    *,
    owner: str | None = None,
    pending_fence: int = 0,
) -> WorkItemRow:
    """The work item of one hand-out of ``node``: pending, or leased to ``owner`` (fence 1)."""
    leased = owner is not None
    return WorkItemRow(
        work_item_id=work_item_id(execution_id, node.id, dispatch),
        execution_id=execution_id,
        node_id=node.id,
        queue=queue,
        attempt=attempt,
        dispatch=dispatch,
        payload=payload,
        status="leased" if leased else "pending",
        not_before_ms=not_before_ms,
        lease_owner=owner,
        lease_expires_ms=at + s.lease_ttl_ms if leased else None,
        fence=1 if leased else pending_fence,
        created_at_ms=at,
        updated_at_ms=at,
    )


def _payload(graph: Graph, node: Node, tool: str, tool_input: dict[str, Any]) -> bytes:
    timeout = node.node_timeout_secs or graph.workflow.timeouts.node_timeout
    return encode_spec(WorkSpec(tool, tool_input, timeout, node.id in graph.merge_ids))


def turn_settles(
    execution_id: str,
    before: ExecutionState,
    after: ExecutionState,
    records: list[Record],
    incoming: Record | None,
    settle: Settle | None,
    at: int,
) -> list[Settle]:
    """The outcome's fenced settle (``dead`` when it was the last attempt); a hand-out that a
    new one of its node replaced while in flight, cancelled; at the end every item still
    open, cancelled."""
    out = []
    if settle is not None:
        if settle.status == "failed" and isinstance(incoming, NodeFailed):
            run = after.nodes.get(incoming.node_id)
            if run is not None and run.status == "failed":
                settle = msgspec.structs.replace(settle, status="dead")
        out.append(settle)
    for wid in _superseded(execution_id, before, records):
        out.append(Settle(wid, "cancelled", None, error="superseded", at_ms=at))
    if after.is_terminal:
        for node_id, run in after.in_flight():
            wid = work_item_id(execution_id, node_id, run.dispatch)
            why = f"execution {after.status}"
            out.append(Settle(wid, "cancelled", None, error=why, at_ms=at))
    return out


def _superseded(execution_id: str, before: ExecutionState, records: list[Record]) -> list[str]:
    """Items of hand-outs rescheduled while in flight. Registration refuses the shapes that
    would do it (branches meeting at a work node); this keeps a miss from leaving an item open
    and its tool running for nothing."""
    if not _reschedules(before, records):
        return []  # the common turn: nothing it schedules was in flight (no scan of the nodes)
    flying = {node_id: run.dispatch for node_id, run in before.in_flight()}
    out = []
    for rec in records:
        if isinstance(rec, NodeScheduled):
            old = flying.get(rec.node_id)
            if old is not None and old != rec.dispatch:
                out.append(work_item_id(execution_id, rec.node_id, old))
            flying[rec.node_id] = rec.dispatch
        elif isinstance(rec, NodeCompleted | NodeFailed) and rec.dispatch > 0:
            flying.pop(rec.node_id, None)
    return out


def _reschedules(before: ExecutionState, records: list[Record]) -> bool:
    """Could the turn replace a hand-out in flight: it schedules more than one hand-out, or
    one of a node that was in flight? (A loop, not comprehensions: it runs every step.)"""
    scheduled = 0
    for rec in records:
        if isinstance(rec, NodeScheduled):
            scheduled += 1
            run = before.nodes.get(rec.node_id)
            if scheduled > 1 or (run is not None and run.status == "scheduled"):
                return True
    return False


def make_turn(
    s: Services,
    execution_id: str,
    before: ExecutionState,
    after: ExecutionState,
    rows: list[NewRecord],
    items: list[WorkItemRow],
    settles: list[Settle],
) -> Turn:
    """The turn to commit: its records, a snapshot when the state crossed a multiple of
    ``snapshot_every``, the index row when the shown status changed, items and settles."""
    every = s.snapshot_every
    snapshot = None
    if every > 0 and after.last_seq // every > before.last_seq // every:
        snapshot = encode_state(after)
    index = None
    if after.display_status != before.display_status:
        index = IndexUpdate(
            status=after.display_status,
            updated_at_ms=now_ms(s.clock),
            workflow_id=after.workflow_id,
            workflow_version=after.workflow_version,
            created_at_ms=after.started_at_ms,
            error=after.error,
        )
    return Turn(
        execution_id, before.last_seq + 1, tuple(rows), snapshot, index, tuple(items),
        tuple(settles),
    )  # fmt: skip
