"""The storage contract every backend (SQLite, memory) keeps, and the rows it deals in.

The protocol is here; the rows live in :mod:`tether.persistence.rows` and the errors in
:mod:`tether.persistence.storage_errors`, and this module names them all (``__all__``), so
code above storage imports the whole contract from one place.

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
from typing import TYPE_CHECKING, Literal, Protocol

from tether.persistence.rows import (
    EXECUTION_STATUSES,
    MISSED_POLICIES,
    OPEN_WORK_STATUSES,
    SETTLE_STATUSES,
    TERMINAL_STATUSES,
    TERMINAL_WORK_STATUSES,
    ExecutionRow,
    ExecutionStatus,
    IndexUpdate,
    Lease,
    LoadedExecution,
    NewRecord,
    Passive,
    ScheduleRow,
    Settle,
    Snapshot,
    StoredRecord,
    TerminalStatus,
    Turn,
    WorkflowRow,
    WorkItemRow,
)
from tether.persistence.storage_errors import (
    DatabaseLocked,
    JournalCorruption,
    SchemaTooNew,
    SequenceConflict,
    SnapshotCorruption,
    StaleFence,
    StorageError,
    StoreClosed,
    UnknownWorkItem,
    WorkflowVersionConflict,
)

if TYPE_CHECKING:
    from tether.persistence.pages import ExecutionQuery, PagePosition, WorkItemQuery

# Explicit, so the rows and errors imported above stay exported (not unused imports).
__all__ = [
    "EXECUTION_STATUSES",
    "MISSED_POLICIES",
    "OPEN_WORK_STATUSES",
    "SETTLE_STATUSES",
    "TERMINAL_STATUSES",
    "TERMINAL_WORK_STATUSES",
    "DatabaseLocked",
    "Durability",
    "ExecutionRow",
    "ExecutionStatus",
    "IndexUpdate",
    "JournalCorruption",
    "Lease",
    "LoadedExecution",
    "NewRecord",
    "Passive",
    "ScheduleRow",
    "SchemaTooNew",
    "SequenceConflict",
    "Settle",
    "Snapshot",
    "SnapshotCorruption",
    "StaleFence",
    "StorageError",
    "Store",
    "StoreClosed",
    "StoredRecord",
    "TerminalStatus",
    "Turn",
    "UnknownWorkItem",
    "WorkItemRow",
    "WorkflowRow",
    "WorkflowVersionConflict",
]

#: "full" survives power loss (fsync at every commit); "normal" survives a process crash only.
Durability = Literal["full", "normal"]


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
