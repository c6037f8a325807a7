"""Durable storage for Tether: the Store contract and its SQLite and memory backends.

Example::

    from tether.persistence import NewRecord, Turn, open_store

    store = await open_store("sqlite:///.tether/runtime.db")
    await store.append(Turn("exec_1", 1, (NewRecord("execution_started", b"{}"),)))
    records = await store.read("exec_1")
    await store.close()
"""

from tether.persistence.contract import (
    TERMINAL_STATUSES,
    DatabaseLocked,
    Durability,
    ExecutionRow,
    IndexUpdate,
    JournalCorruption,
    NewRecord,
    SchemaTooNew,
    SequenceConflict,
    Snapshot,
    SnapshotCorruption,
    StorageError,
    Store,
    StoreClosed,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkflowVersionConflict,
    check_turns,
)
from tether.persistence.memory import MemoryStore
from tether.persistence.sqlite import SqliteStore, WriterStats
from tether.persistence.urls import open_store, store_for_url

__all__ = [
    "TERMINAL_STATUSES",
    "DatabaseLocked",
    "Durability",
    "ExecutionRow",
    "IndexUpdate",
    "JournalCorruption",
    "MemoryStore",
    "NewRecord",
    "SchemaTooNew",
    "SequenceConflict",
    "Snapshot",
    "SnapshotCorruption",
    "SqliteStore",
    "StorageError",
    "Store",
    "StoreClosed",
    "StoredRecord",
    "Turn",
    "WorkflowRow",
    "WorkflowVersionConflict",
    "WriterStats",
    "check_turns",
    "open_store",
    "store_for_url",
]
