"""The storage contract every backend (SQLite, memory) keeps, and the rows it deals in.

Rows are opaque to storage: a record is an execution id, a sequence number, a type name and
payload bytes (the runtime encodes them). Storage adds and checks a checksum per row, detects
sequence gaps, and commits a whole :class:`Turn` (records, snapshot, index update) atomically.

Example::

    store = await open_store("sqlite:///.tether/runtime.db")
    last = await store.append(Turn("exec_1", expected_seq=1,
                                   records=(NewRecord("execution_started", b"..."),)))
    rows = await store.read("exec_1")
    await store.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

#: "full" survives power loss (fsync at every commit); "normal" survives a process crash only.
Durability = Literal["full", "normal"]

#: Statuses after which an execution never changes again.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "limit_exceeded"})


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

    status: str
    updated_at_ms: int
    workflow_id: str = ""
    workflow_version: str = ""
    created_at_ms: int = 0
    error: str | None = None


class Turn(msgspec.Struct, frozen=True, gc=False):
    """The records one actor turn commits together (I4), with an optional snapshot and index update.

    ``expected_seq`` is the sequence number the first record gets; it must be exactly one more
    than the execution's last committed sequence (1 for a new execution), else the append is
    refused with :class:`SequenceConflict` and nothing of the turn is written.
    ``snapshot``, when present, is the state after the last record of this turn.
    """

    execution_id: str
    expected_seq: int
    records: tuple[NewRecord, ...]
    snapshot: bytes | None = None
    index: IndexUpdate | None = None

    @property
    def last_seq(self) -> int:
        return self.expected_seq + len(self.records) - 1


class ExecutionRow(msgspec.Struct, frozen=True, gc=False):
    """One execution in the index (a projection kept in step with the journal)."""

    execution_id: str
    workflow_id: str
    workflow_version: str
    status: str
    created_at_ms: int
    updated_at_ms: int
    last_seq: int
    error: str | None = None


class WorkflowRow(msgspec.Struct, frozen=True, gc=False):
    workflow_id: str
    version: str
    ir: bytes
    created_at_ms: int


class StorageError(Exception):
    """Base of every storage error; the message says what and where."""


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

    async def unfinished_executions(self) -> list[ExecutionRow]:
        """Executions whose status is not terminal, oldest first (recovery order)."""
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


def check_turns(turns: Sequence[Turn]) -> None:
    """Reject malformed turns before they reach a backend (shared by both backends)."""
    for turn in turns:
        if turn.expected_seq < 1:
            raise StorageError(f"execution {turn.execution_id}: expected_seq must be >= 1")
        if not turn.records:
            raise StorageError(f"execution {turn.execution_id}: a turn needs at least one record")
