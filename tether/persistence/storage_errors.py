"""The errors storage raises: the base ``StorageError`` and the refusals the contract names
(a sequence conflict, a stale fence, corruption, a locked or too-new database...).

They stand apart from the ``Store`` protocol (:mod:`tether.persistence.contract`) and from
the rows (:mod:`tether.persistence.rows`) because they are neither: they are the answers every
backend and the checks it shares (``checks``, ``leases``) give, and they depend on nothing.
The contract names each of them too, so code above storage keeps one import
(``from tether.persistence.contract import StorageError``).

Example::

    try:
        await store.append(turn)
    except SequenceConflict as exc:
        print(exc.expected, exc.actual_next)
"""

from __future__ import annotations


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
