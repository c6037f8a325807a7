"""Durable storage for Tether: the Store contract and its SQLite and memory backends.

Example::

    from tether.persistence import NewRecord, Turn, open_store

    store = await open_store("sqlite:///.tether/runtime.db")
    await store.append(Turn("exec_1", 1, (NewRecord("execution_started", b"{}"),)))
    records = await store.read("exec_1")
    await store.close()
"""

from tether.persistence.checks import check_lease_args, check_schedule, check_turns
from tether.persistence.contract import (
    EXECUTION_STATUSES,
    MISSED_POLICIES,
    OPEN_WORK_STATUSES,
    SETTLE_STATUSES,
    TERMINAL_STATUSES,
    TERMINAL_WORK_STATUSES,
    DatabaseLocked,
    Durability,
    ExecutionRow,
    ExecutionStatus,
    IndexUpdate,
    JournalCorruption,
    Lease,
    LoadedExecution,
    NewRecord,
    Passive,
    ScheduleRow,
    SchemaTooNew,
    SequenceConflict,
    Settle,
    Snapshot,
    SnapshotCorruption,
    StaleFence,
    StorageError,
    Store,
    StoreClosed,
    StoredRecord,
    TerminalStatus,
    Turn,
    UnknownWorkItem,
    WorkflowRow,
    WorkflowVersionConflict,
    WorkItemRow,
)
from tether.persistence.memory import MemoryStore
from tether.persistence.sqlite import SqliteStore, WriterStats
from tether.persistence.urls import open_store, store_for_url

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
    "MemoryStore",
    "NewRecord",
    "Passive",
    "ScheduleRow",
    "SchemaTooNew",
    "SequenceConflict",
    "Settle",
    "Snapshot",
    "SnapshotCorruption",
    "SqliteStore",
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
    "WriterStats",
    "check_lease_args",
    "check_schedule",
    "check_turns",
    "open_store",
    "store_for_url",
]
