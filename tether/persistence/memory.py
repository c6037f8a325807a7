"""``MemoryStore``: the Store contract in process memory, for tests and
``TETHER_STORAGE_BACKEND=memory``. Nothing survives the process.

It keeps the same semantics as the SQLite store: a turn is applied whole or not at all, the
sequence check is the same, conflicts carry the same numbers, lists have the same order and
paging. Rows cannot rot in memory, so there are no checksums to verify.

Example::

    store = MemoryStore()
    await store.open()
    await store.append(Turn("exec_1", 1, (NewRecord("execution_started", b"{}"),)))
    assert [r.seq for r in await store.read("exec_1")] == [1]
"""

from __future__ import annotations

import msgspec
from anyio.lowlevel import checkpoint

from tether.persistence.contract import (
    TERMINAL_STATUSES,
    Durability,
    ExecutionRow,
    IndexUpdate,
    SequenceConflict,
    Snapshot,
    StorageError,
    StoreClosed,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkflowVersionConflict,
    check_turns,
)


class MemoryStore:
    """A Store kept in dicts; see the module docstring."""

    def __init__(self, durability: Durability = "full", readonly: bool = False) -> None:
        self.durability: Durability = durability
        self.readonly = readonly
        self._journal: dict[str, list[StoredRecord]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._executions: dict[str, ExecutionRow] = {}
        # Insertion order of this dict is registration order ("most recently registered").
        self._workflows: dict[tuple[str, str], WorkflowRow] = {}
        self._state = "new"

    async def open(self) -> None:
        if self._state == "closed":
            raise StoreClosed("memory store is closed; create a new one")
        self._state = "open"

    async def close(self) -> None:
        self._state = "closed"

    async def append(self, turn: Turn) -> int:
        check_turns((turn,))
        self._check_writable()
        # Yield like a real commit would, so callers cannot rely on append being synchronous.
        await checkpoint()
        self._check_writable()
        rows = self._journal.get(turn.execution_id, [])
        following = len(rows) + 1
        if turn.expected_seq != following:
            raise SequenceConflict(turn.execution_id, turn.expected_seq, following)
        new = [
            StoredRecord(turn.execution_id, turn.expected_seq + i, rec.type, rec.payload)
            for i, rec in enumerate(turn.records)
        ]
        self._journal.setdefault(turn.execution_id, []).extend(new)
        last = turn.last_seq
        if turn.snapshot is not None:
            self._snapshots[turn.execution_id] = Snapshot(turn.execution_id, last, turn.snapshot)
        self._index(turn.execution_id, turn.index, last)
        return last

    def _index(self, execution_id: str, ix: IndexUpdate | None, last: int) -> None:
        old = self._executions.get(execution_id)
        if ix is None:
            if old is not None:
                self._executions[execution_id] = _replace(old, last_seq=last)
            return
        if old is None:
            self._executions[execution_id] = ExecutionRow(
                execution_id, ix.workflow_id, ix.workflow_version, ix.status,
                ix.created_at_ms, ix.updated_at_ms, last, ix.error,
            )  # fmt: skip
        else:
            self._executions[execution_id] = _replace(
                old, status=ix.status, updated_at_ms=ix.updated_at_ms, last_seq=last,
                error=ix.error,
            )  # fmt: skip

    async def read(self, execution_id: str, from_seq: int = 1) -> list[StoredRecord]:
        self._check_open()
        rows = self._journal.get(execution_id, [])
        return rows[max(from_seq, 1) - 1 :]

    async def latest_snapshot(self, execution_id: str) -> Snapshot | None:
        self._check_open()
        return self._snapshots.get(execution_id)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        self._check_open()
        return self._executions.get(execution_id)

    async def list_executions(
        self,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExecutionRow]:
        """Newest first (created_at_ms, then execution id, both descending)."""
        self._check_open()
        rows = [
            r
            for r in self._executions.values()
            if (status is None or r.status == status)
            and (workflow_id is None or r.workflow_id == workflow_id)
        ]
        rows.sort(key=lambda r: (r.created_at_ms, r.execution_id), reverse=True)
        return rows[offset : offset + limit] if limit >= 0 else rows[offset:]

    async def unfinished_executions(self) -> list[ExecutionRow]:
        self._check_open()
        rows = [r for r in self._executions.values() if r.status not in TERMINAL_STATUSES]
        return sorted(rows, key=lambda r: (r.created_at_ms, r.execution_id))

    async def put_workflow(self, workflow_id: str, version: str, ir: bytes, at_ms: int) -> None:
        self._check_writable()
        await checkpoint()
        old = self._workflows.get((workflow_id, version))
        if old is not None:
            if old.ir != ir:
                raise WorkflowVersionConflict(
                    f"workflow {workflow_id} version {version} is already registered with "
                    "different IR; register the change under a new version"
                )
            return
        self._workflows[(workflow_id, version)] = WorkflowRow(workflow_id, version, ir, at_ms)

    async def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> WorkflowRow | None:
        self._check_open()
        if version is not None:
            return self._workflows.get((workflow_id, version))
        best: tuple[int, int, WorkflowRow] | None = None
        for order, row in enumerate(self._workflows.values()):
            if row.workflow_id == workflow_id and (
                best is None or (row.created_at_ms, order) >= best[:2]
            ):
                best = (row.created_at_ms, order, row)
        return best[2] if best is not None else None

    async def list_workflows(self) -> list[WorkflowRow]:
        self._check_open()
        indexed = list(enumerate(self._workflows.values()))
        indexed.sort(key=lambda p: (p[1].workflow_id, p[1].created_at_ms, p[0]))
        return [row for _, row in indexed]

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise StorageError("memory store is open read-only; writes are refused")

    def _check_open(self) -> None:
        if self._state == "closed":
            raise StoreClosed("memory store is closed")
        if self._state != "open":
            raise StorageError("memory store is not open; call open() first")


def _replace(row: ExecutionRow, **changes: object) -> ExecutionRow:
    return msgspec.structs.replace(row, **changes)
