"""Journal records: every message an execution acts on, as a frozen msgspec struct.

A record's payload is its msgpack encoding (tag included); the journal row's ``type`` column
repeats the tag so a row can be checked against its payload. Time enters only as ``at_ms``
fields, so folding records never reads a clock (I2).

Example::

    rec = NodeCompleted(node_id="inc", dispatch=1, attempt=1, output=1, duration_ms=3, at_ms=0)
    decoded, row = normalized(rec)
    assert decode_record(row.type, row.payload) == decoded == rec
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tether.persistence.contract import NewRecord, StoredRecord
from tether.runtime.state_types import AgentLoop, NodeRun, Wait


class _Record(msgspec.Struct, frozen=True, gc=False, tag_field="type", omit_defaults=True):
    at_ms: int

    @property
    def type(self) -> str:
        return str(type(self).__struct_config__.tag)


class ExecutionStarted(_Record, frozen=True, tag="execution_started"):
    """A new execution of ``workflow_id@workflow_version`` with ``input``."""

    execution_id: str
    workflow_id: str
    workflow_version: str
    input: dict[str, Any] = {}
    #: A fork's origin: the execution and the record whose state it started from (the
    #: records before this one's next are copies of the origin's; see runtime.time_travel).
    forked_from: str | None = None
    forked_at_seq: int | None = None


class NodeScheduled(_Record, frozen=True, tag="node_scheduled"):
    """A work node handed to the executor: ``dispatch`` counts every hand-out of this node."""

    node_id: str
    attempt: int
    dispatch: int
    input: dict[str, Any] = {}
    not_before_ms: int | None = None


class NodeCompleted(_Record, frozen=True, tag="node_completed"):
    """A node finished. Control nodes (branch, parallel, join, end) use dispatch 0 and record
    their routing decision in ``output`` (``{"next": [...]}``)."""

    node_id: str
    dispatch: int
    attempt: int
    output: Any = None
    duration_ms: int = 0
    #: What an I/O node's call reported besides its output, under OpenTelemetry GenAI's
    #: names where they apply (``gen_ai_system``, ``gen_ai_model``, ``input_tokens``,
    #: ``output_tokens``, ``finish_reason``, ``cost_usd``); empty for plain tools.
    facts: dict[str, Any] = {}
    #: Who ran it, a fleet or HTTP worker's id; "" for the engine's own pool (left out of
    #: the record: the common step writes no worker id) and in records written before it
    #: was kept. With ``duration_ms`` it dates the step's start.
    worker_id: str = ""


class NodeFailed(_Record, frozen=True, tag="node_failed"):
    """A node attempt failed; ``retryable`` says whether the error type allows another try.

    ``traceback``: where a tool that raised failed, bounded (``tether.runtime.tracebacks``);
    empty for other failures, and in records written before it was kept.
    """

    node_id: str
    dispatch: int
    attempt: int
    error: str
    error_type: str = "Exception"
    retryable: bool = True
    duration_ms: int = 0
    traceback: str = ""
    worker_id: str = ""
    #: Why it failed: "" the work itself (the tool raised, timed out, ...; records from before
    #: the field fold so), CAUSE_LEASE_LOST its worker died or went silent holding the lease.
    cause: str = ""


#: NodeFailed.cause of a lease reclaimed from a dead or silent worker: up to the retry
#: policy's ``max_lease_losses`` such failures spend no attempt (fold_routes.will_retry).
CAUSE_LEASE_LOST: Final = "lease_lost"


class NodeParked(_Record, frozen=True, tag="node_parked"):
    """A provider rate-limited the node: its hand-out waits until ``not_before_ms`` and runs
    again under the same dispatch and attempt (no attempt is spent)."""

    node_id: str
    dispatch: int
    attempt: int
    not_before_ms: int
    error: str = ""


class NodeWaiting(_Record, frozen=True, tag="node_waiting"):
    """A wait or human-approval node started waiting. It holds no worker and no lease.

    ``fire_at_ms``: when its timer fires (a wait's duration or ``until``, an approval's
    timeout); ``correlation_key``: the external event it waits for.
    """

    node_id: str
    dispatch: int
    fire_at_ms: int | None = None
    correlation_key: str | None = None
    approval: bool = False
    description: str = ""


class TimerFired(_Record, frozen=True, tag="timer_fired"):
    """The timer of a waiting node fired (journaled before anything follows from it, I1)."""

    node_id: str
    dispatch: int


class EventReceived(_Record, frozen=True, tag="event_received"):
    """An external event arrived; it waits in the inbox until a node waiting on its key takes
    it (an event that comes before its wait is kept, not lost)."""

    correlation_key: str
    payload: Any = None
    event_id: str | None = None


class WaitCompleted(_Record, frozen=True, tag="wait_completed"):
    """A wait node is over: ``by`` is ``"timer"`` or ``"event"`` (then the inbox's first event
    for its key is taken and its payload merged into state); the first of the two wins."""

    node_id: str
    dispatch: int
    by: str
    payload: Any = None
    #: What lost the race (``"timer"`` or ``"event"``), for a wait on both.
    cancelled: str | None = None


class ApprovalReceived(_Record, frozen=True, tag="approval_received"):
    """A decision on a human-approval node: who, when (``at_ms``), what, and a state patch.

    ``decision`` is ``approved``, ``rejected`` or ``timed_out`` (no decision came in time).
    """

    node_id: str
    dispatch: int
    decision: str
    user_id: str
    comment: str = ""
    state_patch: dict[str, Any] = {}


class ContinueRequested(_Record, frozen=True, tag="continue_requested"):
    """Roll into a new segment at the next point with no work node in flight."""

    reason: str = ""


class SegmentBoundary(_Record, frozen=True, tag="segment_boundary"):
    """This segment ends here; the execution goes on as ``next_execution_id`` (I9)."""

    next_execution_id: str


class SegmentStarted(_Record, frozen=True, tag="segment_started"):
    """The first record of a continued segment: the state it goes on from, waits included."""

    execution_id: str
    root_execution_id: str
    segment: int
    previous_execution_id: str
    workflow_id: str
    workflow_version: str
    input: dict[str, Any] = {}
    data: dict[str, Any] = {}
    nodes: dict[str, NodeRun] = {}
    ready: tuple[str, ...] = ()
    arrivals: dict[str, tuple[str, ...]] = {}
    waits: dict[str, Wait] = {}
    inbox: dict[str, tuple[Any, ...]] = {}
    event_ids: tuple[str, ...] = ()
    completions: int = 0
    started_at_ms: int = 0
    loops: dict[str, AgentLoop] = {}
    spent_usd: float = 0.0
    spent_tokens: int = 0
    eval_retries: dict[str, int] = {}
    #: A fork of a continued segment (``rt.fork``): the segment and the record whose state
    #: this run starts from. A fork is a run of its own: its ``root_execution_id`` is itself,
    #: ``segment`` is 1 and it has no previous segment to wait for.
    forked_from: str | None = None
    forked_at_seq: int | None = None


class PolicyViolation(_Record, frozen=True, tag="policy_violation"):
    """A tool call an agent's model asked for was refused before it ran: ``rule`` says which
    (not on the allow-list, a secret in its arguments); the model is told the tool is
    unavailable. ``arguments_sha256`` identifies the arguments without journaling them."""

    node_id: str
    tool: str
    call_id: str
    rule: str
    arguments_sha256: str = ""


class BudgetExceeded(_Record, frozen=True, tag="budget_exceeded"):
    """A call would pass a budget (checked before the call, with its projected cost): the
    run ends ``limit_exceeded`` with the best answer so far in state. ``limit`` is one of
    ``cost_usd``, ``tokens``, ``iterations``, ``wall_clock_secs``; ``scope`` ``node`` or
    ``workflow``."""

    node_id: str
    limit: str
    spent: float
    cap: float
    projected: float = 0.0
    scope: str = "node"


class StrategyLimitReached(_Record, frozen=True, tag="limit_reached"):
    """A strategy agent stopped at one of its limits before ``node_id`` was called: ``limit``
    is ``iterations`` (its rounds ran out unresolved), ``cost_usd`` (what was ``spent`` plus
    the call's ``projected`` cost passes ``cap``) or ``timeout_secs`` (``spent`` seconds since
    the run started reached ``cap``). ``best`` is the best answer so far (from the state key
    ``best_from``, with its verdict's ``score`` if one scored it): the run ends
    ``limit_exceeded`` with it as the strategy's ``result`` (tether.runtime.strategy_limits)."""

    node_id: str
    limit: str
    spent: float
    cap: float
    reason: str
    projected: float = 0.0
    best: Any = None
    best_from: str | None = None
    score: float | None = None


class ExecutionCompleted(_Record, frozen=True, tag="execution_completed"):
    result: Any = None


class ExecutionFailed(_Record, frozen=True, tag="execution_failed"):
    error: str
    node_id: str | None = None


class ExecutionCancelled(_Record, frozen=True, tag="execution_cancelled"):
    reason: str = ""


class ExecutionLimited(_Record, frozen=True, tag="execution_limit_exceeded"):
    """The run ended on a budget breach (status ``limit_exceeded``)."""

    error: str
    node_id: str | None = None


Record = (
    ExecutionStarted
    | NodeScheduled
    | NodeCompleted
    | NodeFailed
    | NodeParked
    | NodeWaiting
    | TimerFired
    | EventReceived
    | WaitCompleted
    | ApprovalReceived
    | ContinueRequested
    | SegmentBoundary
    | SegmentStarted
    | ExecutionCompleted
    | ExecutionFailed
    | ExecutionCancelled
    | PolicyViolation
    | BudgetExceeded
    | StrategyLimitReached
    | ExecutionLimited
)

RECORD_TYPES: frozenset[str] = frozenset(
    {
        "execution_started",
        "node_scheduled",
        "node_completed",
        "node_failed",
        "node_parked",
        "node_waiting",
        "timer_fired",
        "event_received",
        "wait_completed",
        "approval_received",
        "continue_requested",
        "segment_boundary",
        "segment_started",
        "execution_completed",
        "execution_failed",
        "execution_cancelled",
        "policy_violation",
        "budget_exceeded",
        "limit_reached",
        "execution_limit_exceeded",
    }
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Record)


class UnknownRecordType(Exception):
    """A journal row whose type this version of Tether does not know (I7)."""


class MalformedRecord(Exception):
    """A journal row whose payload does not decode as its declared type (I7)."""


def normalized(record: Record) -> tuple[Record, NewRecord]:
    """The record exactly as replay will see it (decoded from its own payload), and its row.

    The live fold must see what the journal holds: a tuple a tool returned is a list after a
    round trip, and an object the tool still references must not change live state later.
    """
    payload = _encoder.encode(record)
    decoded: Record = _decoder.decode(payload)
    return decoded, NewRecord(type=record.type, payload=payload)


def private_copy(value: Any) -> Any:
    """A deep copy through the journal's encoding, for values handed to user code."""
    return msgspec.msgpack.decode(_encoder.encode(value))


def decode_record(type_name: str, payload: bytes) -> Record:
    """Decode a payload, refusing unknown types and a payload that disagrees with its row type."""
    if type_name not in RECORD_TYPES:
        raise UnknownRecordType(f"unknown record type {type_name!r}")
    try:
        record: Record = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise MalformedRecord(f"{type_name} payload does not decode: {exc}") from exc
    if record.type != type_name:
        raise MalformedRecord(f"row says {type_name!r} but its payload is {record.type!r}")
    return record


class JournalEntry(msgspec.Struct, frozen=True, gc=False):
    """A decoded journal row, as ``Runtime.journal`` returns it."""

    seq: int
    record: Record

    @property
    def type(self) -> str:
        return self.record.type


def decode_rows(rows: list[StoredRecord]) -> list[JournalEntry]:
    """Decode stored rows; the error names the execution and sequence of a bad row."""
    out: list[JournalEntry] = []
    for row in rows:
        try:
            out.append(JournalEntry(seq=row.seq, record=decode_record(row.type, row.payload)))
        except (UnknownRecordType, MalformedRecord) as exc:
            raise type(exc)(f"execution {row.execution_id}: journal row {row.seq}: {exc}") from exc
    return out
