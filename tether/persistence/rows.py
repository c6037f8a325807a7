"""The rows the storage contract deals in: records, turns, snapshots, the execution index,
work items and leases, the workflow registry and schedules, with the statuses they take.

They stand apart from the ``Store`` protocol (:mod:`tether.persistence.contract`) because
they are data, not behaviour: every layer above storage builds or reads them, while only the
backends implement the protocol. The contract names each of them too, so code above storage
keeps one import (``from tether.persistence.contract import Turn``).

Example::

    turn = Turn("exec_1", expected_seq=1, records=(NewRecord("execution_started", b"..."),))
    assert turn.last_seq == 1
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec

#: Statuses after which an execution never changes again (``limit_exceeded``: a budget or
#: limit stopped it; ``continued``: the segment rolled into a new one by continue-as-new).
TerminalStatus = Literal["completed", "failed", "cancelled", "limit_exceeded", "continued"]
#: Every status of an execution; ``paused`` is ``running`` with a human decision pending, as
#: the index and the API show it.
ExecutionStatus = Literal["new", "running", "paused"] | TerminalStatus
#: The one set of terminal statuses, used by the store, the runtime, the server and the CLI.
TERMINAL_STATUSES: frozenset[str] = frozenset(get_args(TerminalStatus))
#: Every status, in a fixed order (what a status filter may ask for).
EXECUTION_STATUSES: tuple[str, ...] = (
    *get_args(get_args(ExecutionStatus)[0]),
    *get_args(TerminalStatus),
)

#: Work-item statuses a grant, heartbeat or settle can still change.
OPEN_WORK_STATUSES = frozenset({"pending", "leased", "parked"})
#: Work-item statuses after which the row never changes again.
TERMINAL_WORK_STATUSES = frozenset({"completed", "failed", "dead", "cancelled"})
#: What a :class:`Settle` may set.
SETTLE_STATUSES = TERMINAL_WORK_STATUSES | {"parked"}


class NewRecord(msgspec.Struct, frozen=True, gc=False):
    """A record to append: its type name and encoded payload."""

    type: str
    payload: bytes


class StoredRecord(msgspec.Struct, frozen=True, gc=False):
    """A committed journal row whose checksum has been verified."""

    execution_id: str
    seq: int
    type: str
    payload: bytes


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """Encoded execution state as of ``seq`` (every record up to and including it applied)."""

    execution_id: str
    seq: int
    payload: bytes


class IndexUpdate(msgspec.Struct, frozen=True, gc=False):
    """Create or update an execution's row in the execution index, in the same transaction.

    ``workflow_id`` / ``workflow_version`` / ``created_at_ms`` are used when the row is created
    (the turn with ``expected_seq == 1``) and ignored afterwards.
    """

    status: ExecutionStatus
    updated_at_ms: int
    workflow_id: str = ""
    workflow_version: str = ""
    created_at_ms: int = 0
    error: str | None = None


class Passive(msgspec.Struct, frozen=True, gc=False):
    """Marks a turn after which its execution is passivated: nothing of it runs or is
    scheduled, it only waits (a signal, or a timer at ``wake_at_ms``), its state is the turn's
    snapshot, and its actor stops. The mark lasts until the execution's next turn; recovery
    leaves a passivated execution on disk and only arms its wake-up (I9).
    """

    #: The earliest timer the execution waits for (None: it waits for a signal only).
    wake_at_ms: int | None = None


class WorkItemRow(msgspec.Struct, frozen=True, gc=False):
    """One hand-out of a workflow node (id ``execution/node/dispatch``, chosen by the runtime).

    ``fence`` is bumped by every grant and never decreases (I5); ``parks`` counts the times the
    item was parked (rate limited) without spending an attempt. Insert one through
    ``Turn.work_items``: pending without a lease, or already leased (fence >= 1; see ``Turn``).
    """

    work_item_id: str
    execution_id: str
    node_id: str
    queue: str
    attempt: int
    dispatch: int
    payload: bytes
    status: str = "pending"
    not_before_ms: int = 0
    lease_owner: str | None = None
    lease_expires_ms: int | None = None
    fence: int = 0
    parks: int = 0
    last_error: str | None = None
    created_at_ms: int = 0
    updated_at_ms: int = 0


class Lease(msgspec.Struct, frozen=True, gc=False):
    """A granted work item: present ``fence`` to heartbeat or settle it."""

    work_item_id: str
    fence: int
    owner: str
    expires_ms: int
    item: WorkItemRow


class Settle(msgspec.Struct, frozen=True, gc=False):
    """A change to a work item committed inside a Turn (I4).

    ``status`` is completed, failed, dead, cancelled (terminal) or parked (granted again from
    ``not_before_ms`` on, lease cleared, fence kept, ``parks + 1``). With a ``fence`` the row
    must be ``leased`` with exactly that fence; with ``fence=None`` (an engine-side settle such
    as a cancel) it may be pending, leased or parked. Otherwise the whole turn is refused with
    :class:`StaleFence`. ``error``, when given, becomes the row's ``last_error``; ``at_ms``,
    when later than the row's ``updated_at_ms``, becomes it.

    Example::

        Turn("exec_1", 7, (NewRecord("node_completed", b"..."),),
             settles=(Settle("exec_1/fetch/1", "completed", fence=lease.fence),))
    """

    work_item_id: str
    status: str
    fence: int | None = None
    not_before_ms: int = 0
    error: str | None = None
    at_ms: int = 0


class Turn(msgspec.Struct, frozen=True, gc=False):
    """The records one actor turn commits together (I4), with an optional snapshot and index
    update, the work items it creates and the settles of work items it records.

    ``expected_seq`` is the sequence number the first record gets; it must be exactly one more
    than the execution's last committed sequence (1 for a new execution), else the append is
    refused with :class:`SequenceConflict` and nothing of the turn is written.
    ``snapshot``, when present, is the state after the last record of this turn.
    ``work_items`` are inserted in the same transaction, pending, or already leased to a worker
    the engine picked (fence >= 1); an id that already exists is left as it is (allowed, but
    the SQLite writer presumes created ids are new and pays a rollback and a retry per item
    when one is not: recovery uses ``reissue`` instead). The engine may leave out the row of an
    item it runs in-process, and insert it only in the turn that settles it (failed, dead,
    parked). ``settles`` are applied after the inserts, in order; a stale fence refuses the
    whole turn with :class:`StaleFence`, an unknown item with :class:`UnknownWorkItem`, and
    nothing of the turn is written. ``passive`` (with a ``snapshot``) marks the execution
    passivated as of this turn (see :class:`Passive`).
    """

    execution_id: str
    expected_seq: int
    records: tuple[NewRecord, ...]
    snapshot: bytes | None = None
    index: IndexUpdate | None = None
    work_items: tuple[WorkItemRow, ...] = ()
    settles: tuple[Settle, ...] = ()
    passive: Passive | None = None

    @property
    def last_seq(self) -> int:
        return self.expected_seq + len(self.records) - 1


class ExecutionRow(msgspec.Struct, frozen=True, gc=False):
    """One execution in the index (a projection kept in step with the journal).

    ``passivated``: its last turn passivated it (see :class:`Passive`), so no actor holds it;
    ``wake_at_ms``: then, the earliest timer it waits for.
    """

    execution_id: str
    workflow_id: str
    workflow_version: str
    status: ExecutionStatus
    created_at_ms: int
    updated_at_ms: int
    last_seq: int
    error: str | None = None
    passivated: bool = False
    wake_at_ms: int | None = None


class LoadedExecution(msgspec.Struct, frozen=True, gc=False):
    """An execution as recovery loads it: its index row, its latest snapshot, and the
    verified records after that snapshot (all of them without one)."""

    row: ExecutionRow
    snapshot: Snapshot | None
    records: list[StoredRecord]


class WorkflowRow(msgspec.Struct, frozen=True, gc=False):
    workflow_id: str
    version: str
    ir: bytes
    created_at_ms: int


#: What a schedule does with fires that came due while no engine ran (see ``ScheduleRow``).
MISSED_POLICIES = frozenset({"skip", "run_once"})


class ScheduleRow(msgspec.Struct, frozen=True, gc=False):
    """A cron schedule: every fire starts one execution of a workflow version.

    ``next_fire_ms`` is the earliest fire not yet started; the engine moves it on with
    ``advance_schedule`` (a compare-and-set) after starting that fire's execution, whose id is
    derived from the schedule and the fire time, so a fire started twice is started once.
    ``input`` is the execution input, msgpack-encoded. ``missed`` is ``"skip"`` (fires that
    came due while no engine ran start nothing) or ``"run_once"`` (the latest of them starts
    once). ``last_error`` says why the last fire started nothing (None when it started).
    """

    schedule_id: str
    cron: str
    timezone: str
    workflow_id: str
    workflow_version: str
    input: bytes
    missed: str
    paused: bool
    next_fire_ms: int
    created_at_ms: int
    updated_at_ms: int
    last_error: str | None = None
