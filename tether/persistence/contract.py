"""The storage contract every backend (SQLite, memory) keeps, and the rows it deals in.

Rows are opaque to storage: a record is an execution id, a sequence number, a type name and
payload bytes (the runtime encodes them). Storage adds and checks a checksum per row, detects
sequence gaps, and commits a whole :class:`Turn` (records, snapshot, index update, the work
items it creates and settles) atomically. Work items are leased with fences that only grow (I5).

Example::

    store = await open_store("sqlite:///.tether/runtime.db")
    last = await store.append(Turn("exec_1", expected_seq=1,
                                   records=(NewRecord("execution_started", b"..."),)))
    rows = await store.read("exec_1")
    await store.close()
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, get_args

import msgspec

if TYPE_CHECKING:
    from tether.persistence.pages import ExecutionQuery, PagePosition, WorkItemQuery

#: "full" survives power loss (fsync at every commit); "normal" survives a process crash only.
Durability = Literal["full", "normal"]

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


class StorageError(Exception):
    """Base of every storage error; the message says what and where.

    ``transient``: the store could not write for now (no room on the disk, an I/O error, a
    lost connection; see ``persistence.storage_faults``), so the same write may succeed once
    that is over. Other failures to write are taken as lasting.
    """

    def __init__(self, *args: object, transient: bool = False) -> None:
        super().__init__(*args)
        self.transient = transient


class SequenceConflict(StorageError):
    """An append whose ``expected_seq`` is not the next sequence number of that execution."""

    def __init__(self, execution_id: str, expected: int, actual_next: int) -> None:
        super().__init__(
            f"execution {execution_id}: append expected sequence {expected}, "
            f"but the next sequence is {actual_next}"
        )
        self.execution_id = execution_id
        self.expected = expected
        self.actual_next = actual_next


class JournalCorruption(StorageError):
    """A row failed its checksum, or sequence numbers have a gap. Rows are left in place."""

    def __init__(self, execution_id: str, seq: int, problem: str) -> None:
        super().__init__(f"execution {execution_id}: journal row {seq} {problem}")
        self.execution_id = execution_id
        self.seq = seq
        self.problem = problem


class SnapshotCorruption(JournalCorruption):
    """A snapshot row failed its checksum. Journal rows are untouched; replay from seq 1 works."""

    def __init__(self, execution_id: str, seq: int) -> None:
        StorageError.__init__(
            self, f"execution {execution_id}: snapshot at seq {seq} failed its checksum"
        )
        self.execution_id = execution_id
        self.seq = seq
        self.problem = "snapshot failed its checksum"


class StaleFence(StorageError):
    """A settle or heartbeat whose fence is not the current lease of its work item (I5).

    ``presented`` is None for a fence-less settle of an item that is already terminal.
    """

    def __init__(self, work_item_id: str, presented: int | None, current: int, status: str) -> None:
        what = "a settle without a fence" if presented is None else f"fence {presented}"
        super().__init__(
            f"work item {work_item_id}: {what} is refused as stale "
            f"(current fence {current}, status {status})"
        )
        self.work_item_id = work_item_id
        self.presented = presented
        self.current = current
        self.status = status


class UnknownWorkItem(StorageError):
    """A settle or heartbeat names a work item that was never created."""

    def __init__(self, work_item_id: str) -> None:
        super().__init__(f"work item {work_item_id}: no such work item")
        self.work_item_id = work_item_id


class DatabaseLocked(StorageError):
    """Another process already has this database file open for writing (I6)."""


class SchemaTooNew(StorageError):
    """The database was migrated by a newer Tether than this one; refusing to touch it."""


class WorkflowVersionConflict(StorageError):
    """A workflow id and version registered again with different IR."""


class StoreClosed(StorageError):
    """The store was used after ``close()``."""


class Store(Protocol):
    """What the runtime needs from storage.

    Both backends pass ``tests/persistence/test_store_contract.py``.
    """

    durability: Durability

    async def open(self) -> None:
        """Create or migrate the schema and take the writer lock."""
        ...

    async def close(self) -> None:
        """Flush pending appends, release the lock, close connections. Idempotent."""
        ...

    async def append(self, turn: Turn) -> int:
        """Commit ``turn`` atomically (group-committed with others); return its last seq.

        Returns only once the turn is durable at the store's durability level.
        Raises SequenceConflict (nothing written) or StorageError.
        """
        ...

    async def read(self, execution_id: str, from_seq: int = 1) -> list[StoredRecord]:
        """Committed records with ``seq >= from_seq`` in order; checksums and gaps verified.

        Raises JournalCorruption naming the first bad row.
        """
        ...

    async def latest_snapshot(self, execution_id: str) -> Snapshot | None:
        """The newest snapshot (checksum verified), or None."""
        ...

    async def get_execution(self, execution_id: str) -> ExecutionRow | None: ...

    async def list_executions(
        self,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExecutionRow]:
        """Newest first."""
        ...

    async def page_executions(
        self,
        query: ExecutionQuery,
        after: PagePosition | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[ExecutionRow]:
        """Up to ``limit`` executions ``query`` matches, newest first (``oldest_first``: the
        other way) by ``(created_at_ms, execution_id)``, starting strictly after ``after``
        (a keyset page: see :mod:`tether.persistence.pages`). Read from the run views: a
        status change shows once ``project_views`` has passed it (its ``last_seq`` and
        passive mark are the index's, as they are now)."""
        ...

    async def count_executions(self, query: ExecutionQuery) -> dict[str, int]:
        """How many executions ``query`` matches, per status (its ``status`` left out), only
        the statuses with any. Read from the run views' counters, as ``page_executions``."""
        ...

    async def project_views(self, limit: int = 1000) -> int:
        """Move the run views on by up to ``limit`` status changes committed since the last
        projection, in one transaction with the projector's position; return how many (fewer
        than ``limit``: caught up with what was committed when it read). See
        :mod:`tether.persistence.views`."""
        ...

    async def views_behind(self) -> int:
        """How many committed status changes the run views have not taken yet."""
        ...

    async def unfinished_executions(self) -> list[ExecutionRow]:
        """Executions whose status is not terminal and that are not passivated, oldest first
        (recovery order: these get an actor at once)."""
        ...

    async def passive_wakes(self) -> list[tuple[str, int]]:
        """``(execution_id, wake_at_ms)`` of each passivated execution that waits for a
        timer, earliest first: recovery arms these without loading the executions."""
        ...

    async def load_executions(self, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
        """For recovery: many executions in a constant number of reads, each with its index
        row, latest snapshot and the records after it. Ids without an index row, and
        executions whose snapshot or records do not verify, are left out: loading those one
        at a time (``latest_snapshot``, ``read``) reports the problem."""
        ...

    async def put_workflow(self, workflow_id: str, version: str, ir: bytes, at_ms: int) -> None:
        """Register IR. Same bytes again: no-op. Different bytes: WorkflowVersionConflict."""
        ...

    async def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> WorkflowRow | None:
        """A version, or the most recently registered one when ``version`` is None."""
        ...

    async def list_workflows(self) -> list[WorkflowRow]: ...

    # ------------------------------------------------------------------ work items (I5)

    async def grant(
        self,
        queue: str,
        owner: str,
        now_ms: int,
        ttl_ms: int,
        limit: int,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        """Lease up to ``limit`` grantable items of ``queue`` to ``owner``, oldest first.

        Grantable: pending or parked with ``not_before_ms <= now_ms``, and not one of the
        ``exclude`` ids (items this worker declined); order ``(not_before_ms, created_at_ms,
        work_item_id)``. Each becomes leased until ``now_ms + ttl_ms`` with ``fence + 1``. One
        transaction, group-committed.
        """
        ...

    async def heartbeat(self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int) -> int:
        """Extend a lease to ``now_ms + ttl_ms`` and return that expiry.

        Accepted while the item is still ``leased`` with ``fence``, even past its expiry (until
        someone settles it, the lease is the worker's). StaleFence otherwise, UnknownWorkItem
        for an id never created.
        """
        ...

    async def release_leases(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        """Put every item leased to ``owner`` back to pending (fence kept, so the next grant
        still outbids the old lease; attempt unchanged) and return the released rows.

        For owners that died with the engine (its in-process pool): their work was lost to the
        engine's crash, not to the work, so it costs no attempt.
        """
        ...

    async def reissue(self, rows: Sequence[WorkItemRow]) -> int:
        """Insert pending work items whose ids do not exist yet, with no journal records;
        existing ids are left as they are. Returns how many were inserted.

        For recovery: the in-process pool's items get no row while they run (the engine
        re-derives them from the journal), so an engine restarting writes a pending row for
        each hand-out it finds in flight without one. Rows must be pending without a lease
        (StorageError otherwise, nothing written).
        """
        ...

    async def expired_leases(self, now_ms: int, limit: int = 1000) -> list[WorkItemRow]:
        """Leased items with ``lease_expires_ms <= now_ms``, earliest expiry first."""
        ...

    async def open_work_items(self, queue: str | None = None) -> list[WorkItemRow]:
        """Pending, parked and leased items (scheduler recovery), oldest first."""
        ...

    async def list_work_items(
        self,
        status: str | None = None,
        execution_id: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkItemRow]:
        """Newest first (``status="dead"`` is the dead-letter view)."""
        ...

    async def page_work_items(
        self, query: WorkItemQuery, after: PagePosition | None = None, limit: int = 100
    ) -> list[WorkItemRow]:
        """Up to ``limit`` work items ``query`` matches, newest first by ``(created_at_ms,
        work_item_id)``, starting strictly after ``after`` (a keyset page)."""
        ...

    async def count_work_items(self) -> dict[tuple[str, str], int]:
        """``(queue, status) -> count`` of the items pending, leased, parked and dead (the
        queues' depths and dead letters), only the pairs with any."""
        ...

    async def get_work_item(self, work_item_id: str) -> WorkItemRow | None: ...

    # ------------------------------------------------------------------------- schedules

    async def put_schedule(self, row: ScheduleRow) -> None:
        """Create the schedule, or replace every field of the one with that id.

        A malformed row (empty id, unknown missed policy...) is refused with StorageError.
        """
        ...

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None: ...

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, paused or not, by schedule id."""
        ...

    async def delete_schedule(self, schedule_id: str) -> bool:
        """Remove the schedule; False when there was none."""
        ...

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None = None
    ) -> ScheduleRow | None:
        """Pause or resume; ``next_fire_ms``, when given, replaces the next fire (a resumed
        schedule starts from the future). The updated row, or None when there is none."""
        ...

    async def advance_schedule(
        self,
        schedule_id: str,
        expected_next_fire_ms: int,
        new_next_fire_ms: int,
        at_ms: int,
        last_error: str | None = None,
    ) -> bool:
        """Compare-and-set: move ``next_fire_ms`` from ``expected_next_fire_ms`` to
        ``new_next_fire_ms`` and set ``last_error`` (None: the fire started). False, and
        nothing changed, when the row is gone or its next fire is no longer the expected one
        (someone else advanced, redefined or resumed it first)."""
        ...

    async def set_schedule_error(self, schedule_id: str, error: str | None, at_ms: int) -> bool:
        """Record why the schedule's next fire could not start yet; False when there is none."""
        ...
