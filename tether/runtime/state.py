"""Execution state and the fold that builds it: ``state = fold(apply, journal)`` (I2).

``apply`` is pure: it reads only the previous state, the record and the immutable workflow
graph; it never mutates its inputs (dicts are copied on write) and never reads a clock.
Routing after a work node is computed here from the IR and the new state; the routing of
control nodes was decided when they were journaled and is read back from their record.

Example::

    state = replay(graph, [entry.record for entry in journal])
    assert state.status == "completed"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from tether.ir.types import EndKind, HumanApprovalKind, WaitKind
from tether.persistence.contract import TERMINAL_STATUSES, ExecutionStatus, TerminalStatus
from tether.runtime import agent_fold, eval_routes, strategy_limits
from tether.runtime.code_first.fold import fold_code_record
from tether.runtime.fold_routes import (
    inbox_after_taking,
    losses_after,
    route_to,
    will_retry,
    without,
)
from tether.runtime.graph import Graph, RouteError
from tether.runtime.records import (
    ApprovalReceived,
    BudgetExceeded,
    ContinueRequested,
    EventReceived,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionLimited,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    NodeWaiting,
    PolicyViolation,
    Record,
    SegmentBoundary,
    SegmentStarted,
    StrategyLimitReached,
    TimerFired,
    WaitCompleted,
)
from tether.runtime.state_types import AgentLoop, CallResult, NodeRun, Wait
from tether.runtime.typed_state import initial_data

RUNNING: Final = "running"


class ExecutionState(msgspec.Struct, frozen=True, gc=False):
    """Everything an execution knows, rebuilt exactly by replaying its journal."""

    execution_id: str = ""
    workflow_id: str = ""
    workflow_version: str = ""
    status: ExecutionStatus = "new"
    input: dict[str, Any] = {}
    data: dict[str, Any] = {}
    nodes: dict[str, NodeRun] = {}
    ready: tuple[str, ...] = ()
    arrivals: dict[str, tuple[str, ...]] = {}
    ended: bool = False
    end_output: str | None = None
    halt: str | None = None
    halt_node: str | None = None
    result: Any = None
    error: str | None = None
    last_seq: int = 0
    started_at_ms: int = 0
    ended_at_ms: int | None = None
    completions: int = 0
    #: Work nodes handed out and not yet settled (kept so planning needs no scan of nodes).
    running: int = 0
    #: Nodes waiting (timer, event, approval), by node id: they hold no worker and no lease.
    waits: dict[str, Wait] = {}
    #: External events not yet taken by a wait, by correlation key, oldest first.
    inbox: dict[str, tuple[Any, ...]] = {}
    #: Ids of the events received (a retried send with the same id is applied once).
    event_ids: tuple[str, ...] = ()
    #: Continue-as-new: this segment's number, the first segment's id, the next segment's id
    #: once this one ended (status ``continued``), and a requested roll not yet done.
    segment: int = 1
    root_execution_id: str = ""
    #: ``(origin execution, record)`` of a run forked from another (``rt.fork``), else None.
    forked_from: tuple[str, int] | None = None
    previous_segment: str | None = None
    continued_as: str | None = None
    continue_pending: bool = False
    #: Agent nodes between their calls, by node id (see tether.runtime.agent_fold).
    loops: dict[str, AgentLoop] = {}
    #: What the run's model calls cost so far, for its workflow budget.
    spent_usd: float = 0.0
    spent_tokens: int = 0
    #: A budget breach: the run ends ``limit_exceeded`` with this reason.
    limit: str | None = None
    #: Retries each eval node spent since it last passed (see tether.runtime.eval_routes).
    eval_retries: dict[str, int] = {}
    #: A code-first body's finished calls, by chunk of positions, then node id: a turn
    #: copies one chunk, not every call so far (see tether.runtime.code_first.fold).
    calls: dict[int, dict[str, CallResult]] = {}

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def in_flight(self) -> list[tuple[str, NodeRun]]:
        """Work nodes handed out and not yet settled, in node order."""
        return [(n, r) for n, r in self.nodes.items() if r.status == "scheduled"]

    def has_in_flight(self) -> bool:
        return self.running > 0 or bool(self.waits)

    @property
    def display_status(self) -> ExecutionStatus:
        """``paused`` while a human decision is pending (the index and API show this)."""
        # ``self.waits`` first: most states have none, and this runs twice per turn.
        if self.waits and self.status == RUNNING and any(w.approval for w in self.waits.values()):
            return "paused"
        return self.status

    def pending_approvals(self) -> list[tuple[str, Wait]]:
        """The decisions it waits for: none once it has ended (a cancelled run's waits
        stay in its state, but nobody can answer them)."""
        if self.is_terminal:
            return []
        return [(n, w) for n, w in self.waits.items() if w.approval]


_replace = msgspec.structs.replace


def apply(state: ExecutionState, record: Record, graph: Graph) -> ExecutionState:
    """Fold one record into the state (pure; the input state is left untouched)."""
    seq = state.last_seq + 1
    if graph.is_code:  # calls of a code-first body: recorded by call, never routed
        folded = fold_code_record(state, record, graph, seq)
        if folded is not None:
            return folded
    if isinstance(record, NodeScheduled):
        return _scheduled(state, record, graph, seq)
    if isinstance(record, NodeCompleted):
        return _completed(state, record, graph, seq)
    if isinstance(record, NodeFailed):
        return _failed(state, record, graph, seq)
    if isinstance(record, NodeParked):
        return _parked(state, record, seq)
    if isinstance(record, NodeWaiting | TimerFired | EventReceived):
        return _waiting(state, record, seq)
    if isinstance(record, WaitCompleted):
        return _wait_completed(state, record, graph, seq)
    if isinstance(record, ApprovalReceived):
        return _approval(state, record, graph, seq)
    if isinstance(record, ExecutionStarted):
        return _started(state, record, graph, seq)
    if isinstance(record, ContinueRequested):
        return _replace(state, last_seq=seq, continue_pending=True)
    if isinstance(record, SegmentBoundary):
        # Ready nodes and waits stay as they are: they are what the next segment goes on with.
        return _replace(
            state,
            last_seq=seq,
            status="continued",
            ended_at_ms=record.at_ms,
            continued_as=record.next_execution_id,
        )
    if isinstance(record, SegmentStarted):
        return _segment_started(record, seq)
    if isinstance(record, ExecutionCompleted):
        return _ended(state, seq, "completed", record.at_ms, result=record.result)
    if isinstance(record, ExecutionFailed):
        return _ended(state, seq, "failed", record.at_ms, error=record.error)
    if isinstance(record, ExecutionCancelled):
        return _ended(state, seq, "cancelled", record.at_ms, error=record.reason or "cancelled")
    if isinstance(record, PolicyViolation):
        return agent_fold.refused(state, record, seq)
    if isinstance(record, BudgetExceeded):
        return agent_fold.over_budget(state, record, graph, seq)
    if isinstance(record, StrategyLimitReached):
        return strategy_limits.halted(state, record, graph, seq)
    if isinstance(record, ExecutionLimited):
        return _ended(state, seq, "limit_exceeded", record.at_ms, error=record.error)
    raise TypeError(f"no fold rule for record {type(record).__name__}")


def replay(
    graph: Graph, records: Iterable[Record], start: ExecutionState | None = None
) -> ExecutionState:
    """Fold ``records`` from ``start`` (a snapshot) or from the empty state."""
    state = start if start is not None else ExecutionState()
    for record in records:
        state = apply(state, record, graph)
    return state


def _ended(
    state: ExecutionState, seq: int, status: TerminalStatus, at_ms: int, **outcome: Any
) -> ExecutionState:
    return _replace(state, last_seq=seq, status=status, ended_at_ms=at_ms, ready=(), **outcome)


def _started(
    state: ExecutionState, rec: ExecutionStarted, graph: Graph, seq: int
) -> ExecutionState:
    wf = graph.workflow
    return _replace(
        state,
        last_seq=seq,
        execution_id=rec.execution_id,
        root_execution_id=rec.execution_id,
        workflow_id=rec.workflow_id,
        workflow_version=rec.workflow_version,
        status=RUNNING,
        input=rec.input,
        data=initial_data(wf.typed_schema(), rec.input),
        started_at_ms=rec.at_ms,
        ready=(wf.start_node,),
        forked_from=None if rec.forked_from is None else (rec.forked_from, rec.forked_at_seq or 0),
    )


def _segment_started(rec: SegmentStarted, seq: int) -> ExecutionState:
    return ExecutionState(
        execution_id=rec.execution_id,
        workflow_id=rec.workflow_id,
        workflow_version=rec.workflow_version,
        status=RUNNING,
        input=rec.input,
        data=rec.data,
        nodes=rec.nodes,
        ready=rec.ready,
        arrivals=rec.arrivals,
        last_seq=seq,
        started_at_ms=rec.started_at_ms,
        completions=rec.completions,
        waits=rec.waits,
        inbox=rec.inbox,
        event_ids=rec.event_ids,
        segment=rec.segment,
        root_execution_id=rec.root_execution_id,
        # A fork starts from the segment's state but follows no segment: nothing to wait for.
        previous_segment=rec.previous_execution_id if rec.forked_from is None else None,
        forked_from=None if rec.forked_from is None else (rec.forked_from, rec.forked_at_seq or 0),
        loops=rec.loops,
        spent_usd=rec.spent_usd,
        spent_tokens=rec.spent_tokens,
        eval_retries=rec.eval_retries,
    )


def _scheduled(state: ExecutionState, rec: NodeScheduled, graph: Graph, seq: int) -> ExecutionState:
    run = NodeRun("scheduled", rec.attempt, rec.dispatch, rec.not_before_ms, rec.input)
    prev = state.nodes.get(rec.node_id)
    if prev is not None and prev.losses and prev.status == "retrying":
        run = _replace(run, losses=prev.losses)  # a retry keeps its node's free lease losses
    already = prev is not None and prev.status == "scheduled"
    scheduled = _replace(
        state,
        last_seq=seq,
        ready=without(state.ready, rec.node_id),
        nodes={**state.nodes, rec.node_id: run},
        running=state.running if already else state.running + 1,
    )
    if rec.node_id in graph.agent_ids:
        return agent_fold.call_scheduled(scheduled, rec)
    return scheduled


def _completed(state: ExecutionState, rec: NodeCompleted, graph: Graph, seq: int) -> ExecutionState:
    node_id = rec.node_id
    if rec.dispatch == 0:  # a control node: its routing decision is in the record
        ready = without(state.ready, node_id)
        nodes = {**state.nodes, node_id: NodeRun("completed", 0, 0)}
        node = graph.node(node_id)
        if isinstance(node.kind, EndKind):
            return _replace(
                state,
                last_seq=seq,
                ready=ready,
                nodes=nodes,
                ended=True,
                end_output=node.kind.output,
            )
        targets = list(rec.output.get("next", [])) if isinstance(rec.output, dict) else []
        ready, arrivals, ended = route_to(state, node_id, targets, graph, ready)
        return _replace(
            state, last_seq=seq, nodes=nodes, ready=ready, arrivals=arrivals, ended=ended
        )
    current = state.nodes.get(node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)  # never journaled by the actor; kept total
    if rec.facts:
        state = agent_fold.spent(state, rec.facts)
        if graph.workflow.cost_limit_usd is not None:  # the jamjet SDK's cost guards
            state = strategy_limits.mark_cost(state, graph)
    if node_id in graph.agent_ids:
        return agent_fold.call_completed(state, rec, current, graph, seq)
    if node_id in graph.eval_ids:
        return eval_routes.eval_completed(state, rec, current, graph, seq)
    data = with_output(state.data, node_id, rec.output, graph)
    nodes = {**state.nodes, node_id: _replace(current, status="completed")}
    try:
        target = graph.route(node_id, data)
    except RouteError as exc:
        return _replace(
            state, last_seq=seq, data=data, nodes=nodes, completions=state.completions + 1,
            running=state.running - 1, halt=str(exc), halt_node=node_id,
        )  # fmt: skip
    # The step path: one replace with every change (no intermediate states, no kwargs dict).
    ready, arrivals, ended = route_to(state, node_id, (target,), graph, state.ready)
    return _replace(
        state, last_seq=seq, data=data, nodes=nodes, completions=state.completions + 1,
        running=state.running - 1, ready=ready, arrivals=arrivals, ended=ended,
    )  # fmt: skip


def with_output(data: dict[str, Any], node_id: str, output: Any, graph: Graph) -> dict[str, Any]:
    """State after a work node's output: stored under its key, or merged (whole-state steps)."""
    if node_id in graph.merge_ids and isinstance(output, dict):
        return {**data, **output}
    return {**data, graph.state_keys[node_id]: output}


def _failed(state: ExecutionState, rec: NodeFailed, graph: Graph, seq: int) -> ExecutionState:
    current = state.nodes.get(rec.node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    policy = graph.retry_policy(rec.node_id)
    retried = will_retry(policy, rec, current.losses)
    if not retried and agent_fold.is_tool_call(graph, rec.node_id, current):
        return agent_fold.tool_failed(state, rec, current, seq)  # the model is told
    if retried:
        losses = losses_after(policy, rec, current.losses)
        free = losses > current.losses
        run = _replace(current, status="retrying", error=rec.error, losses=losses, free_retry=free)
        return _replace(
            state,
            last_seq=seq,
            nodes={**state.nodes, rec.node_id: run},
            ready=(*state.ready, rec.node_id),
            running=state.running - 1,
        )
    run = _replace(current, status="failed", error=rec.error)
    why = "failed" if rec.retryable else "failed (not retryable)"
    return _replace(
        state,
        last_seq=seq,
        nodes={**state.nodes, rec.node_id: run},
        running=state.running - 1,
        halt=f"node {rec.node_id!r} {why} on attempt {rec.attempt}: {rec.error}",
        halt_node=rec.node_id,
    )


def _parked(state: ExecutionState, rec: NodeParked, seq: int) -> ExecutionState:
    current = state.nodes.get(rec.node_id)
    if current is None or current.status != "scheduled" or current.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    run = _replace(
        current, not_before_ms=rec.not_before_ms, error=rec.error, parks=current.parks + 1
    )
    return _replace(state, last_seq=seq, nodes={**state.nodes, rec.node_id: run})


def _waiting(
    state: ExecutionState, rec: NodeWaiting | TimerFired | EventReceived, seq: int
) -> ExecutionState:
    if isinstance(rec, EventReceived):
        queued = (*state.inbox.get(rec.correlation_key, ()), rec.payload)
        ids = state.event_ids if rec.event_id is None else (*state.event_ids, rec.event_id)
        return _replace(
            state, last_seq=seq, inbox={**state.inbox, rec.correlation_key: queued}, event_ids=ids
        )
    if isinstance(rec, TimerFired):
        wait = state.waits.get(rec.node_id)
        if wait is None or wait.dispatch != rec.dispatch:
            return _replace(state, last_seq=seq)
        fired = _replace(wait, fired=True)
        return _replace(state, last_seq=seq, waits={**state.waits, rec.node_id: fired})
    wait = Wait(
        rec.dispatch, rec.at_ms, rec.fire_at_ms, rec.correlation_key, rec.approval, rec.description
    )
    return _replace(
        state,
        last_seq=seq,
        ready=without(state.ready, rec.node_id),
        nodes={**state.nodes, rec.node_id: NodeRun("waiting", 1, rec.dispatch)},
        waits={**state.waits, rec.node_id: wait},
    )


def _wait_completed(
    state: ExecutionState, rec: WaitCompleted, graph: Graph, seq: int
) -> ExecutionState:
    wait = state.waits.get(rec.node_id)
    if wait is None or wait.dispatch != rec.dispatch:
        return _replace(state, last_seq=seq)
    inbox = state.inbox
    data = dict(state.data)
    if rec.by == "event" and wait.correlation_key is not None:
        inbox = inbox_after_taking(inbox, wait.correlation_key)
        if isinstance(rec.payload, dict):
            data.update(rec.payload)
    data[graph.state_keys[rec.node_id]] = {"by": rec.by, "payload": rec.payload}
    kind = graph.node(rec.node_id).kind
    target = kind.on_timeout if rec.by == "timer" and isinstance(kind, WaitKind) else None
    return _finish_wait(state, rec.node_id, graph, seq, data, inbox=inbox, target=target)


def _approval(
    state: ExecutionState, rec: ApprovalReceived, graph: Graph, seq: int
) -> ExecutionState:
    if rec.node_id in graph.agent_ids:  # a decision on one of an agent's tool calls
        return agent_fold.approval_decided(state, rec, seq)
    wait = state.waits.get(rec.node_id)
    if wait is None or wait.dispatch != rec.dispatch or not wait.approval:
        return _replace(state, last_seq=seq)
    data = {**state.data, **rec.state_patch}
    decision = {"decision": rec.decision, "user_id": rec.user_id, "comment": rec.comment}
    data[graph.state_keys[rec.node_id]] = decision
    kind = graph.node(rec.node_id).kind
    assert isinstance(kind, HumanApprovalKind)
    if rec.decision == "timed_out":
        if kind.fallback_node is None:
            why = f"approval at node {rec.node_id!r} timed out with no decision"
            return _finish_wait(state, rec.node_id, graph, seq, data, halt=why)
        return _finish_wait(state, rec.node_id, graph, seq, data, target=kind.fallback_node)
    if rec.decision == "rejected" and not graph.has_conditions(rec.node_id):
        # No edge routes on the decision: a rejection must not carry on as if approved.
        why = f"rejected at node {rec.node_id!r} by {rec.user_id}"
        why += f": {rec.comment}" if rec.comment else ""
        return _finish_wait(state, rec.node_id, graph, seq, data, halt=why)
    return _finish_wait(state, rec.node_id, graph, seq, data)


def _finish_wait(
    state: ExecutionState,
    node_id: str,
    graph: Graph,
    seq: int,
    data: dict[str, Any],
    *,
    inbox: dict[str, tuple[Any, ...]] | None = None,
    halt: str | None = None,
    target: str | None = None,
) -> ExecutionState:
    """The wait at ``node_id`` is over: the node completed, then routed (or the run halts)."""
    waits = {k: v for k, v in state.waits.items() if k != node_id}
    run = _replace(state.nodes[node_id], status="completed")
    finished = _replace(
        state,
        last_seq=seq,
        data=data,
        nodes={**state.nodes, node_id: run},
        waits=waits,
        inbox=state.inbox if inbox is None else inbox,
    )
    if halt is not None:
        return _replace(finished, halt=halt, halt_node=node_id)
    try:
        nxt = target if target is not None else graph.route(node_id, data)
    except RouteError as exc:
        return _replace(finished, halt=str(exc), halt_node=node_id)
    ready, arrivals, ended = route_to(state, node_id, (nxt,), graph, state.ready)
    return _replace(finished, ready=ready, arrivals=arrivals, ended=ended)
