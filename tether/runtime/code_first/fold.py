"""The fold rules of a code-first execution's calls (I2): no routing, results by call.

A code-first workflow has no edges: what runs next is its body's business. So where a graph's
fold routes after a node, this fold only records. A call in flight (a step handed out or
retrying, a wait) is in ``state.nodes`` and ``state.waits`` as a graph node is; once it has
finished it leaves them for ``state.calls``: its value (a step's output, a person's decision,
how a wait ended, a recorded value) or, for a step that failed for good, its error (the body
gets a ``StepFailed`` and may handle it; the run does not halt). ``state.calls`` is chunked by
position, so a long body's turn copies one chunk rather than every call it ever made.
Records with nothing code-specific (hand-outs, parks, waits starting, timers, events, the
run's end) fold by the common rules.

Example (what ``tether.runtime.state.apply`` does for a code-first workflow)::

    new_state = fold_code_record(state, record, graph, seq) or common_rules(...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zlib import crc32

import msgspec

from tether.runtime.fold_routes import inbox_after_taking, losses_after, will_retry
from tether.runtime.records import (
    ApprovalReceived,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    Record,
    WaitCompleted,
)
from tether.runtime.state_types import CallResult

if TYPE_CHECKING:
    from tether.runtime.graph import Graph
    from tether.runtime.state import ExecutionState

_replace = msgspec.structs.replace
# Sorted keys and sets: an input's digest is the same in every process (dict and set order
# is not: sets of strings follow the process's hash seed).
_encoder = msgspec.msgpack.Encoder(order="deterministic")
#: Positions per chunk of ``state.calls``.
CHUNK = 512


def position_of(node_id: str) -> int | None:
    """The position in a call's node id (``analyze#3`` -> 3); None for other ids."""
    _, sep, tail = node_id.rpartition("#")
    return int(tail) if sep and tail.isdigit() else None


def finished_call(state: ExecutionState, node_id: str) -> CallResult | None:
    pos = position_of(node_id)
    return None if pos is None else state.calls.get(pos // CHUNK, {}).get(node_id)


def input_digest(args: Any) -> int:
    """A digest of a step's input as the journal holds it (decoded), to compare a replay's."""
    return crc32(_encoder.encode(args))


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
            forked_from=None if record.forked_from is None
            else (record.forked_from, record.forked_at_seq or 0),
        )  # fmt: skip
    return None


def _finished(
    state: ExecutionState, node_id: str, result: CallResult, seq: int, **changes: Any
) -> ExecutionState:
    """``node_id`` leaves the calls in flight for the finished ones."""
    pos = position_of(node_id)
    assert pos is not None  # the driver names every call with its position
    result = _replace(result, seq=seq)
    chunk = {**state.calls.get(pos // CHUNK, {}), node_id: result}
    nodes = state.nodes
    if node_id in nodes:
        nodes = {k: v for k, v in nodes.items() if k != node_id}
    return _replace(
        state, last_seq=seq, nodes=nodes, calls={**state.calls, pos // CHUNK: chunk}, **changes
    )


def _completed(state: ExecutionState, rec: NodeCompleted, seq: int) -> ExecutionState:
    if rec.dispatch == 0:  # a recorded value (a time, an id, a patch marker)
        return _finished(state, rec.node_id, CallResult(False, rec.output), seq)
    current = state.nodes.get(rec.node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)  # never journaled by the actor; kept total
    result = CallResult(False, rec.output, input_digest(current.input))
    return _finished(
        state, rec.node_id, result, seq, completions=state.completions + 1,
        running=state.running - 1,
    )  # fmt: skip


def _failed(state: ExecutionState, rec: NodeFailed, graph: Graph, seq: int) -> ExecutionState:
    current = state.nodes.get(rec.node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    policy = graph.retry_policy(rec.node_id)
    if will_retry(policy, rec, current.losses):
        losses = losses_after(policy, rec, current.losses)
        free = losses > current.losses
        run = _replace(current, status="retrying", error=rec.error, losses=losses, free_retry=free)
        return _replace(
            state, last_seq=seq, nodes={**state.nodes, rec.node_id: run},
            ready=(*state.ready, rec.node_id), running=state.running - 1,
        )  # fmt: skip
    why = "" if rec.retryable else " (not retryable)"
    error = f"{rec.error}{why}, attempt {rec.attempt}"
    result = CallResult(True, error, input_digest(current.input))
    return _finished(state, rec.node_id, result, seq, running=state.running - 1)


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
            inbox = inbox_after_taking(inbox, key)
    waits = {k: v for k, v in state.waits.items() if k != rec.node_id}
    return _finished(state, rec.node_id, CallResult(False, value), seq, waits=waits, inbox=inbox)
