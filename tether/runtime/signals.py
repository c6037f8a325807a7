"""Signals from outside a run (external events, human decisions) and the checks that accept
them. An accepted signal becomes one journal record in one turn (I1); a refused one changes
nothing and says why.

Example (what ``Runtime.approve`` sends its execution actor)::

    record = approval_record(state, graph, Approve("approved", "alice@example.com"), now_ms)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec

from tether.errors import AmbiguousApproval, ApprovalNotPending, ApproverNotAllowed, InvalidInput
from tether.ir.approvers import comment_problem, may_approve, user_id_problem
from tether.ir.types import AgentKind, HumanApprovalKind
from tether.persistence.contract import Store
from tether.persistence.pages import ExecutionQuery, PagePosition, position_of
from tether.runtime.graph import Graph
from tether.runtime.planner import TIMEOUT_USER
from tether.runtime.records import ApprovalReceived, EventReceived, SegmentBoundary, decode_rows
from tether.runtime.state import ExecutionState
from tether.runtime.typed_state import type_problem

#: What a person may decide (a timeout records ``timed_out`` itself).
DECISIONS: Final = ("approved", "rejected")


class SendEvent(msgspec.Struct, frozen=True, gc=False):
    correlation_key: str
    payload: Any = None
    event_id: str | None = None


class Approve(msgspec.Struct, frozen=True, gc=False):
    decision: str
    user_id: str
    comment: str = ""
    state_patch: dict[str, Any] = {}
    node_id: str | None = None
    #: The decider's roles, as whoever authenticated them says (``role:NAME`` approvers).
    roles: tuple[str, ...] = ()


class ContinueAsNew(msgspec.Struct, frozen=True, gc=False):
    reason: str = ""


class PendingApproval(msgspec.Struct, frozen=True, gc=False):
    """A decision some execution waits for (``Runtime.pending_approvals``)."""

    execution_id: str
    node_id: str
    description: str
    requested_at_ms: int
    timeout_at_ms: int | None = None


def check_approve(msg: Approve) -> None:
    """Refuse what no execution could accept, before asking one (I10)."""
    if not isinstance(msg.decision, str) or msg.decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {msg.decision!r}")
    problem = user_id_problem(msg.user_id) or comment_problem(msg.comment)
    if problem is not None:
        raise InvalidInput(problem)
    if msg.user_id == TIMEOUT_USER:
        raise InvalidInput(f"user_id {TIMEOUT_USER!r} is the approval timeout's, not a person's")
    if msg.node_id is not None and not isinstance(msg.node_id, str):
        raise InvalidInput(f"node_id must be a node's id, got {msg.node_id!r}")
    if not all(isinstance(k, str) for k in msg.state_patch):
        raise InvalidInput("state_patch keys must be state key names (strings)")
    _storable(msg.state_patch, "state_patch")


#: Event keys the runtime sends itself (``tether.child:...``), refused from anyone else.
RESERVED_EVENT_PREFIX = "tether."


def check_event(msg: SendEvent) -> None:
    """Refuse an event no execution could journal (I10)."""
    key = msg.correlation_key
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"correlation_key must be a non-empty string, got {key!r}")
    if key.startswith(RESERVED_EVENT_PREFIX):  # only the runtime sends these (a child's end)
        raise InvalidInput(
            f"correlation_key {key!r}: keys starting with 'tether.' are the runtime's"
        )
    if msg.event_id is not None and (not isinstance(msg.event_id, str) or not msg.event_id):
        raise InvalidInput(f"event_id must be a non-empty string, got {msg.event_id!r}")
    if msg.event_id is not None and msg.event_id.startswith(RESERVED_EVENT_PREFIX):
        # Spending a child's own event id first would make its parent deaf to its end.
        raise InvalidInput(
            f"event_id {msg.event_id!r}: ids starting with 'tether.' are the runtime's"
        )
    _storable(msg.payload, "payload")


def _storable(value: Any, what: str) -> None:
    try:
        _encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidInput(f"{what} cannot be stored in the journal: {exc}") from None


_encoder = msgspec.msgpack.Encoder()


def approval_record(
    state: ExecutionState, graph: Graph, msg: Approve, now_ms: int
) -> ApprovalReceived:
    """The record for a decision on a running execution, or the error refusing it."""
    pending = state.pending_approvals()
    eid = state.execution_id
    if not pending:
        raise ApprovalNotPending(f"execution {eid}: no approval is pending")
    if msg.node_id is None:
        if len(pending) > 1:
            names = ", ".join(repr(n) for n, _ in pending)
            raise AmbiguousApproval(
                f"execution {eid}: approvals are pending at {names}; say which node (node_id)"
            )
        node_id, wait = pending[0]
    else:
        found = [(n, w) for n, w in pending if n == msg.node_id]
        if not found:
            names = ", ".join(repr(n) for n, _ in pending)
            raise ApprovalNotPending(
                f"execution {eid}: no approval is pending at node {msg.node_id!r} "
                f"(pending: {names})"
            )
        node_id, wait = found[0]
    kind = graph.node(node_id).kind
    assert isinstance(kind, HumanApprovalKind | AgentKind)
    if not may_approve(kind.approvers, msg.user_id, msg.roles):
        raise ApproverNotAllowed(
            f"execution {eid}: {msg.user_id!r} may not decide the approval at node "
            f"{node_id!r} (its approvers: {', '.join(kind.approvers or ())})"
        )
    patchable = kind.patchable if isinstance(kind, HumanApprovalKind) else []
    refused = sorted(set(msg.state_patch) - set(patchable))
    if refused:
        allowed = ", ".join(patchable) or "none: the node has no patchable list"
        raise InvalidInput(
            f"state_patch: node {node_id!r} does not let a decision set "
            f"{', '.join(map(repr, refused))} (patchable keys: {allowed})"
        )
    schema = graph.workflow.typed_schema()
    for key, value in msg.state_patch.items():
        problem = type_problem(schema, key, value)
        if problem is not None:
            raise InvalidInput(f"state_patch: {problem}")
    return ApprovalReceived(
        at_ms=now_ms,
        node_id=node_id,
        dispatch=wait.dispatch,
        decision=msg.decision,
        user_id=msg.user_id,
        comment=msg.comment,
        state_patch=msg.state_patch,
    )


def event_record(
    state: ExecutionState, graph: Graph, msg: SendEvent, now_ms: int
) -> EventReceived | None:
    """The record for an event, None for a repeat of an event id already received, or the
    error refusing it (a key no wait node of the workflow waits for)."""
    if msg.event_id is not None and msg.event_id in state.event_ids:
        return None
    keys = graph.event_keys
    if msg.correlation_key not in keys:
        known = ", ".join(repr(k) for k in sorted(keys)) or "none"
        raise InvalidInput(
            f"execution {state.execution_id}: no wait node of workflow {graph.workflow.ref} "
            f"waits for event {msg.correlation_key!r} (its event keys: {known})"
        )
    return EventReceived(
        at_ms=now_ms,
        correlation_key=msg.correlation_key,
        payload=msg.payload,
        event_id=msg.event_id,
    )


async def current_segment(store: Store, is_live: Callable[[str], bool], execution_id: str) -> str:
    """The live segment of an execution that may have continued as new ones: follow the
    boundary records of ``continued`` segments."""
    eid = execution_id
    while not is_live(eid):
        row = await store.get_execution(eid)
        if row is None or row.status != "continued":
            return eid
        [last] = decode_rows(await store.read(eid, row.last_seq))
        assert isinstance(last.record, SegmentBoundary)
        eid = last.record.next_execution_id
    return eid


class ApprovalsPage(msgspec.Struct, frozen=True, gc=False):
    """One page of :func:`pending_approvals_page`: the decisions its paused runs wait for, and
    where the next page starts (None: this was the last)."""

    approvals: tuple[PendingApproval, ...]
    next: PagePosition | None = None


async def pending_approvals_page(
    store: Store,
    live_state: Callable[[str], Awaitable[ExecutionState | None]],
    after: PagePosition | None = None,
    runs: int = 100,
) -> ApprovalsPage:
    """The decisions up to ``runs`` paused runs wait for, runs oldest first, starting after
    ``after`` (a keyset page of the index: every paused run once, however many start while
    someone pages); within a run, its requests oldest first."""
    rows = await store.page_executions(
        ExecutionQuery(status="paused"), after, runs + 1, oldest_first=True
    )
    page, more = rows[:runs], len(rows) > runs
    out: list[PendingApproval] = []
    for row in page:
        state = await live_state(row.execution_id)
        if state is None:
            continue
        out += sorted(
            (
                PendingApproval(
                    row.execution_id, node, wait.description, wait.since_ms, wait.fire_at_ms
                )
                for node, wait in state.pending_approvals()
            ),
            key=lambda p: (p.requested_at_ms, p.node_id),
        )
    return ApprovalsPage(tuple(out), position_of(page[-1]) if more else None)


async def pending_approvals(
    store: Store,
    live_state: Callable[[str], Awaitable[ExecutionState | None]],
    page_runs: int = 500,
) -> list[PendingApproval]:
    """Every decision paused runs wait for (from their live states), oldest request first:
    all of them, read page by page (this once stopped at the first 10,000 paused runs)."""
    out: list[PendingApproval] = []
    after: PagePosition | None = None
    while True:
        page = await pending_approvals_page(store, live_state, after, runs=page_runs)
        out += page.approvals
        if page.next is None:
            break
        after = page.next
    return sorted(out, key=lambda p: (p.requested_at_ms, p.execution_id, p.node_id))
