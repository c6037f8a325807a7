"""The fold rules of a code-first execution's calls (I2): no routing, results by call.

A code-first workflow has no edges: what runs next is its body's business. So where a graph's
fold routes after a node, this fold only records: a call's result (or a person's decision, or
how a wait ended) goes to ``state.data`` under the call's node id, where the driver reads it;
a step that failed for good is marked failed (the body gets a ``StepFailed`` and may handle
it) instead of halting the run. Records with nothing code-specific (hand-outs, parks, waits
starting, timers, events, the run's end) fold by the common rules.

Example (what ``tether.runtime.state.apply`` does for a code-first workflow)::

    new_state = fold_code_record(state, record, graph, seq) or common_rules(...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from tether.runtime.records import (
    ApprovalReceived,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    Record,
    WaitCompleted,
)
from tether.runtime.state_types import NodeRun

if TYPE_CHECKING:
    from tether.runtime.graph import Graph
    from tether.runtime.state import ExecutionState

_replace = msgspec.structs.replace


def fold_code_record(
    state: ExecutionState, record: Record, graph: Graph, seq: int
) -> ExecutionState | None:
    """The state after ``record`` if a code-first rule applies to it, else None."""
    if isinstance(record, NodeCompleted):
        return _completed(state, record, seq)
    if isinstance(record, NodeFailed):
        return _failed(state, record, graph, seq)
    if isinstance(record, WaitCompleted | ApprovalReceived):
        return _wait_over(state, record, seq)
    if isinstance(record, ExecutionStarted):
        return _replace(
            state, last_seq=seq, execution_id=record.execution_id,
            root_execution_id=record.execution_id, workflow_id=record.workflow_id,
            workflow_version=record.workflow_version, status="running", input=record.input,
            started_at_ms=record.at_ms,
        )  # fmt: skip
    return None


def _completed(state: ExecutionState, rec: NodeCompleted, seq: int) -> ExecutionState:
    node_id = rec.node_id
    data = {**state.data, node_id: rec.output}
    if rec.dispatch == 0:  # a recorded value (a time, an id, a patch marker)
        nodes = {**state.nodes, node_id: NodeRun("completed", 0, 0)}
        return _replace(state, last_seq=seq, data=data, nodes=nodes)
    current = state.nodes.get(node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)  # never journaled by the actor; kept total
    nodes = {**state.nodes, node_id: _replace(current, status="completed")}
    return _replace(
        state, last_seq=seq, data=data, nodes=nodes, completions=state.completions + 1,
        running=state.running - 1,
    )  # fmt: skip


def _failed(state: ExecutionState, rec: NodeFailed, graph: Graph, seq: int) -> ExecutionState:
    current = state.nodes.get(rec.node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    policy = graph.retry_policy(rec.node_id)
    retry_ok = rec.retryable and (not policy.retry_on or rec.error_type in policy.retry_on)
    if retry_ok and rec.attempt < policy.max_attempts:
        run = _replace(current, status="retrying", error=rec.error)
        ready = (*state.ready, rec.node_id)
    else:
        why = "" if rec.retryable else " (not retryable)"
        run = _replace(current, status="failed", error=f"{rec.error}{why}, attempt {rec.attempt}")
        ready = state.ready
    return _replace(
        state, last_seq=seq, nodes={**state.nodes, rec.node_id: run}, ready=ready,
        running=state.running - 1,
    )  # fmt: skip


def _wait_over(
    state: ExecutionState, rec: WaitCompleted | ApprovalReceived, seq: int
) -> ExecutionState:
    wait = state.waits.get(rec.node_id)
    if wait is None or wait.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    inbox = state.inbox
    value: dict[str, Any]
    if isinstance(rec, ApprovalReceived):
        if not wait.approval:
            return _replace(state, last_seq=seq)
        value = {"decision": rec.decision, "user_id": rec.user_id, "comment": rec.comment}
    else:
        value = {"by": rec.by, "payload": rec.payload}
        key = wait.correlation_key
        if rec.by == "event" and key is not None:  # the event it took leaves the inbox
            rest = inbox.get(key, ())[1:]
            inbox = {k: v for k, v in inbox.items() if k != key}
            if rest:
                inbox[key] = rest
    return _replace(
        state, last_seq=seq, data={**state.data, rec.node_id: value},
        nodes={**state.nodes, rec.node_id: _replace(state.nodes[rec.node_id], status="completed")},
        waits={k: v for k, v in state.waits.items() if k != rec.node_id}, inbox=inbox,
    )  # fmt: skip
