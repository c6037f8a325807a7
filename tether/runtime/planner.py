"""Deciding a turn: which records follow from the state (I3).

``plan_turn`` starts from a committed state and the incoming record (if any), then repeatedly
asks what follows from the state — schedule ready work nodes, resolve control nodes, finish or
fail the run — applying each decision, until nothing more follows. Everything it decides is
journaled in the same turn as the incoming record, so a crash keeps all of it or none (I4).
Time and jitter come in through ``PlanContext`` and are written into the records.

Example::

    ctx = PlanContext(now_ms=..., rng=random.Random(7), bind=bind)
    new_state, records = plan_turn(state, graph, incoming, ctx)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from tether.ir.types import (
    BranchKind,
    ConditionKind,
    EndKind,
    HumanApprovalKind,
    JoinKind,
    LimitExceededKind,
    Node,
    ParallelKind,
    RetryPolicy,
    WaitKind,
)
from tether.ir.validation import until_ms
from tether.persistence.contract import NewRecord
from tether.runtime import agent_plan, eval_scores, strategy_limits
from tether.runtime.agent_plan import AgentCalls
from tether.runtime.announced_tools import ToolAwaited
from tether.runtime.graph import Graph, RouteError
from tether.runtime.records import (
    ApprovalReceived,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionLimited,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
    NodeWaiting,
    Record,
    SegmentBoundary,
    WaitCompleted,
    normalized,
)
from tether.runtime.state import RUNNING, ExecutionState, apply
from tether.runtime.state_types import NodeRun, Wait

#: Binds a work node's arguments from state; raises ValueError with a message on failure.
Binder = Callable[[Node, Mapping[str, Any]], dict[str, Any]]


class PlanContext(NamedTuple):
    """What a turn's decisions may depend on besides the state: the time, jitter, binding.

    A named tuple: built once per turn, and a frozen dataclass's construction cost a share.
    """

    now_ms: int
    rng: random.Random
    bind: Binder
    #: An agent node's calls and policy (None: the runtime has no node-kind plug-in).
    agents: AgentCalls | None = None
    #: A code-first execution's body driver (``tether.runtime.code_first.plan.CodeSlot``).
    code: Any = None
    #: Told of a node held because no worker has announced its tool yet (node id, why).
    held: Callable[[str, ToolAwaited], None] | None = None


def plan_turn(
    state: ExecutionState, graph: Graph, incoming: Record | None, ctx: PlanContext
) -> tuple[ExecutionState, list[Record], list[NewRecord]]:
    """The state after the turn, the records to commit for it (incoming first) and their rows.

    Every record is folded in its decoded form (see ``normalized``), so the live state is
    exactly what replaying the rows gives.
    """
    records: list[Record] = []
    rows: list[NewRecord] = []
    # A module function rather than a closure made per turn: this runs on every step.
    if incoming is not None:
        state = _take(state, graph, incoming, records, rows)
    # Bounded: each pass settles every ready node; a graph cannot loop through control nodes
    # alone more often than it has nodes without a work node in between, which schedules.
    for _ in range(4 * len(graph.nodes) + 8):
        decided = decide(state, graph, ctx)
        if not decided:
            return state, records, rows
        for record in decided:
            state = _take(state, graph, record, records, rows)
    failed = ExecutionFailed(at_ms=ctx.now_ms, error="control nodes loop without doing work")
    state = _take(state, graph, failed, records, rows)
    return state, records, rows


def _take(
    state: ExecutionState,
    graph: Graph,
    record: Record,
    records: list[Record],
    rows: list[NewRecord],
) -> ExecutionState:
    """Fold ``record`` as replay will see it; collect it and its row."""
    decoded, row = normalized(record)
    records.append(decoded)
    rows.append(row)
    return apply(state, decoded, graph)


#: What ``decide`` returns when nothing follows (shared: the common second pass of a turn).
_NOTHING: tuple[Record, ...] = ()


def decide(state: ExecutionState, graph: Graph, ctx: PlanContext) -> Sequence[Record]:
    """What follows from ``state`` now (empty when nothing does)."""
    if state.status != RUNNING:
        return _NOTHING
    if graph.is_code:  # a code-first body decides what follows (tether.runtime.code_first)
        return graph.decide(state, ctx)
    if state.halt is not None:
        return [ExecutionFailed(at_ms=ctx.now_ms, error=state.halt, node_id=state.halt_node)]
    if state.limit is not None:
        return [ExecutionLimited(at_ms=ctx.now_ms, error=state.limit, node_id=state.halt_node)]
    if state.ended:
        return [ExecutionCompleted(at_ms=ctx.now_ms, result=_result(state))]
    if state.running == 0 and _roll_due(state, graph):
        # Nothing in flight: the next segment starts from this state, waits included (I9).
        nxt = segment_id(state.root_execution_id, state.segment + 1, state.last_seq + 1)
        return [SegmentBoundary(at_ms=ctx.now_ms, next_execution_id=nxt)]
    if not state.ready and not state.waits:
        if state.running > 0:
            return _NOTHING  # work in flight, nothing else to do: the common second pass
        return [ExecutionFailed(at_ms=ctx.now_ms, error=_stall_reason(state))]
    out: list[Record] = []
    ready = state.ready
    for i, node_id in enumerate(ready):
        if ready.index(node_id) != i:
            continue  # listed twice (two routes into it): decided once
        node = graph.node(node_id)
        if graph.is_control(node_id):
            if isinstance(node.kind, LimitExceededKind):  # the run ends here
                return strategy_limits.limit_reached(node, state, graph, ctx.now_ms)
            try:
                out.append(_resolve_control(node, state, graph, ctx))
            except RouteError as exc:
                return [ExecutionFailed(at_ms=ctx.now_ms, error=str(exc), node_id=node_id)]
        elif isinstance(node.kind, WaitKind | HumanApprovalKind):
            out.append(_start_wait(node, state, graph, ctx))
        elif node_id in graph.agent_ids:
            out.extend(agent_plan.decide_agent(node, state, graph, ctx))
        else:
            out.extend(_schedule(node, state, graph, ctx))
    if state.waits:
        # Waits on one key take its queued events in turn: each event goes to one wait only
        # (the fold takes the inbox's first entry per completion, in this same order).
        taken: dict[str, int] = {}
        for node_id, wait in state.waits.items():
            over = wait_over(node_id, wait, state, graph, ctx, taken)
            if over is not None:
                out.append(over)
    if not out and not state.has_in_flight():
        if _holding(state, graph, ctx):
            return _NOTHING  # a worker serving its tool will join: the run waits for it
        return [ExecutionFailed(at_ms=ctx.now_ms, error=_stall_reason(state))]
    return out


def _holding(state: ExecutionState, graph: Graph, ctx: PlanContext) -> bool:
    """Is a ready node held for a tool no worker has announced yet? (Asked only when
    nothing else follows: off the common step's path.)"""
    for node_id in state.ready:
        if graph.is_control(node_id):
            continue
        try:
            ctx.bind(graph.node(node_id), state.data)
        except ToolAwaited:
            return True
        except (ValueError, LookupError):
            continue
    return False


def _roll_due(state: ExecutionState, graph: Graph) -> bool:
    policy = graph.workflow.continue_as_new
    return state.continue_pending or (policy is not None and state.last_seq >= policy.max_records)


#: Joins an execution's first id and a segment's number; refused in ids given by users.
SEGMENT_MARK = "~"


def segment_id(root_execution_id: str, segment: int, boundary_seq: int) -> str:
    """The id of a continued segment: the first segment's id, its number, and the sequence of
    the boundary that opened it. A roll retried after a crash at the same point gets the same
    id (its first turn is then there already); a roll from anywhere else gets another one."""
    return f"{root_execution_id}{SEGMENT_MARK}{segment}.{boundary_seq}"


def _result(state: ExecutionState) -> Any:
    if state.end_output is not None:
        return state.data.get(state.end_output)
    return state.data


def _resolve_control(node: Node, state: ExecutionState, graph: Graph, ctx: PlanContext) -> Record:
    kind = node.kind
    targets: list[str]
    if isinstance(kind, BranchKind):
        targets = [graph.choose_branch(node.id, state.data)]
    elif isinstance(kind, ParallelKind):
        targets = graph.parallel_targets(node.id)
    elif isinstance(kind, JoinKind | ConditionKind):
        targets = [graph.route(node.id, state.data)]
    elif isinstance(kind, EndKind):
        targets = []
    else:  # pragma: no cover - CONTROL_KINDS and this function change together
        raise RouteError(f"node {node.id!r}: no rule for control kind {type(kind).__name__}")
    return NodeCompleted(
        at_ms=ctx.now_ms, node_id=node.id, dispatch=0, attempt=0, output={"next": targets}
    )


def _schedule(node: Node, state: ExecutionState, graph: Graph, ctx: PlanContext) -> list[Record]:
    prev = state.nodes.get(node.id)
    retrying = prev is not None and prev.status == "retrying"
    attempt = prev.attempt + 1 if retrying and prev is not None else 1
    dispatch = (prev.dispatch if prev is not None else 0) + 1
    not_before = retry_not_before(graph, node.id, prev, ctx) if retrying and prev else None
    try:
        args = ctx.bind(node, state.data)
    except ToolAwaited as exc:  # nothing journaled: planned again when a worker announces it
        if ctx.held is not None:
            ctx.held(node.id, exc)
        return []
    except (ValueError, LookupError) as exc:
        scheduled = NodeScheduled(
            at_ms=ctx.now_ms, node_id=node.id, attempt=attempt, dispatch=dispatch
        )
        failed = NodeFailed(
            at_ms=ctx.now_ms,
            node_id=node.id,
            dispatch=dispatch,
            attempt=attempt,
            error=str(exc),
            error_type=type(exc).__name__,
            retryable=False,
        )
        return [scheduled, failed]
    if node.id in graph.eval_ids:  # its deterministic scores, journaled with the hand-out
        args = eval_scores.with_scores(node, args, state, ctx.now_ms)
    if graph.strategy is not None:  # a strategy's limits, checked before its calls
        halt = strategy_limits.before_call(node, state, graph, args, ctx.now_ms)
        if halt:
            return halt
    if graph.workflow.budget is not None and "projected_cost_usd" in args:
        breach = agent_plan.model_node_breach(node, state, graph, args, ctx.now_ms)
        if breach is not None:
            return [breach]
    return [
        NodeScheduled(
            at_ms=ctx.now_ms,
            node_id=node.id,
            attempt=attempt,
            dispatch=dispatch,
            input=args,
            not_before_ms=not_before,
        )
    ]


def _start_wait(node: Node, state: ExecutionState, graph: Graph, ctx: PlanContext) -> Record:
    prev = state.nodes.get(node.id)
    dispatch = (prev.dispatch if prev is not None else 0) + 1
    kind = node.kind
    fire_at: int | None = None
    if isinstance(kind, WaitKind):
        if kind.duration_secs is not None:
            fire_at = ctx.now_ms + int(kind.duration_secs * 1000)
        elif kind.until is not None:
            fire_at = until_ms(kind.until)  # checked when the workflow was registered
        return NodeWaiting(
            at_ms=ctx.now_ms, node_id=node.id, dispatch=dispatch, fire_at_ms=fire_at,
            correlation_key=kind.correlation_key,
        )  # fmt: skip
    assert isinstance(kind, HumanApprovalKind)
    timeout = kind.timeout_secs or graph.workflow.timeouts.approval_timeout
    if timeout:
        fire_at = ctx.now_ms + int(timeout * 1000)
    return NodeWaiting(
        at_ms=ctx.now_ms, node_id=node.id, dispatch=dispatch, fire_at_ms=fire_at, approval=True,
        description=kind.description,
    )  # fmt: skip


#: An approval's ``on_timeout`` (without a fallback node) -> the decision recorded for it.
_TIMEOUT_DECISION = {"approve": "approved", "reject": "rejected", "fail": "timed_out"}


def wait_over(
    node_id: str,
    wait: Wait,
    state: ExecutionState,
    graph: Graph,
    ctx: PlanContext,
    taken: dict[str, int],
) -> Record | None:
    """What ends a wait now: its fired timer, or the first event in the inbox for its key."""
    if wait.approval:
        if not wait.fired:
            return None
        kind = graph.node(node_id).kind
        if isinstance(kind, HumanApprovalKind):
            timeout = _TIMEOUT_DECISION[kind.on_timeout]
            decision = "timed_out" if kind.fallback_node else timeout
        else:  # an agent's tool call: the model is told no decision came
            decision = "timed_out"
        return ApprovalReceived(
            at_ms=ctx.now_ms, node_id=node_id, dispatch=wait.dispatch, decision=decision,
            user_id=TIMEOUT_USER, comment="no decision within the approval timeout",
        )  # fmt: skip
    key = wait.correlation_key
    queued = state.inbox.get(key, ()) if key else ()
    if wait.fired:
        lost = "event" if wait.correlation_key else None
        return WaitCompleted(
            at_ms=ctx.now_ms, node_id=node_id, dispatch=wait.dispatch, by="timer", cancelled=lost
        )
    first = taken.get(key, 0) if key else 0
    if key and len(queued) > first:
        taken[key] = first + 1
        lost = "timer" if wait.fire_at_ms is not None else None
        return WaitCompleted(
            at_ms=ctx.now_ms, node_id=node_id, dispatch=wait.dispatch, by="event",
            payload=queued[first], cancelled=lost,
        )  # fmt: skip
    return None


#: The ``user_id`` of a decision made by an approval's timeout.
TIMEOUT_USER = "tether:timeout"


def retry_not_before(graph: Graph, node_id: str, prev: NodeRun, ctx: PlanContext) -> int | None:
    """When the retry of ``node_id`` after ``prev`` (its ``retrying`` hand-out) may start.

    At once after a free lease loss (a dead or silent worker: nothing was wrong with the step,
    and waiting only slows the run); otherwise now plus the policy's backoff for the attempts
    spent, which leave out the free losses (``prev.losses``), so losses never lengthen a later
    backoff."""
    if prev.free_retry:
        return None
    spent = prev.attempt + 1 - prev.losses
    delay = backoff_secs(graph.retry_policy(node_id), spent, ctx.rng)
    return ctx.now_ms + int(delay * 1000)


def backoff_secs(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """Delay before ``attempt`` (2 = first retry): exponential, capped, with +/- jitter."""
    base = policy.backoff_initial_secs * policy.backoff_multiplier ** max(0, attempt - 2)
    base = min(base, policy.backoff_max_secs)
    spread = base * policy.jitter
    return max(0.0, base + rng.uniform(-spread, spread))


def _stall_reason(state: ExecutionState) -> str:
    waiting = ", ".join(f"join {j!r} has {sorted(a)}" for j, a in state.arrivals.items())
    detail = f" ({waiting})" if waiting else ""
    return f"execution stalled: nothing is running and no end was reached{detail}"
