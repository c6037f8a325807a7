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

import dataclasses
from collections.abc import Collection, Sequence

import msgspec
from anyio.lowlevel import checkpoint

from tether.persistence.artifacts.contract import ArtifactInfo, check_digest, keyed, verified
from tether.persistence.checks import check_projection_limit, check_turns
from tether.persistence.contract import (
    TERMINAL_STATUSES,
    ExecutionRow,
    IndexUpdate,
    LoadedExecution,
    SequenceConflict,
    Snapshot,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkflowVersionConflict,
    WorkItemRow,
)
from tether.persistence.facts import FactRow, check_fact
from tether.persistence.leases import ItemState, settle_problem, settled
from tether.persistence.memory_schedules import MemorySchedules
from tether.persistence.memory_work_items import MemoryWorkItems
from tether.persistence.pages import ExecutionQuery, PagePosition


class MemoryStore(MemoryWorkItems, MemorySchedules):
    """A Store kept in dicts; see the module docstring.

    The dicts and the open/closed checks are ``MemoryTables``'s; the work-item and schedule
    methods come from the two bases, a module each (``memory_work_items``,
    ``memory_schedules``). The journal, index, views, registry, facts and artifacts are here.
    """

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
        items = self._turn_items(turn) if turn.work_items or turn.settles else None
        new = [
            StoredRecord(turn.execution_id, turn.expected_seq + i, rec.type, rec.payload)
            for i, rec in enumerate(turn.records)
        ]
        self._journal.setdefault(turn.execution_id, []).extend(new)
        last = turn.last_seq
        if turn.snapshot is not None:
            self._snapshots[turn.execution_id] = Snapshot(turn.execution_id, last, turn.snapshot)
        self._index(turn.execution_id, turn.index, last)
        if turn.index is not None:
            self._views.feed(turn.execution_id, last)
        old = self._executions.get(turn.execution_id)
        if turn.passive is not None and old is not None:
            self._executions[turn.execution_id] = _replace(
                old, passivated=True, wake_at_ms=turn.passive.wake_at_ms
            )
        if items:
            self._items.update(items)
        return last

    def _turn_items(self, turn: Turn) -> dict[str, WorkItemRow]:
        """The rows ``turn`` creates or settles (nothing applied yet), or StaleFence /
        UnknownWorkItem refusing the whole turn."""
        local: dict[str, WorkItemRow] = {}
        for row in turn.work_items:
            if row.work_item_id not in local and row.work_item_id not in self._items:
                local[row.work_item_id] = row
        for settle in turn.settles:
            current = local.get(settle.work_item_id) or self._items.get(settle.work_item_id)
            state = None if current is None else ItemState(current.status, current.fence)
            problem = settle_problem(settle, state)
            if problem is not None:
                raise problem
            assert current is not None
            local[settle.work_item_id] = settled(current, settle)
        return local

    def _index(self, execution_id: str, ix: IndexUpdate | None, last: int) -> None:
        old = self._executions.get(execution_id)
        if ix is None:
            if old is not None:  # a later turn ends a passivation (see Passive)
                self._executions[execution_id] = _replace(
                    old, last_seq=last, passivated=False, wake_at_ms=None
                )
            return
        if old is None:
            self._executions[execution_id] = ExecutionRow(
                execution_id, ix.workflow_id, ix.workflow_version, ix.status,
                ix.created_at_ms, ix.updated_at_ms, last, ix.error,
            )  # fmt: skip
        else:
            self._executions[execution_id] = _replace(
                old, status=ix.status, updated_at_ms=ix.updated_at_ms, last_seq=last,
                error=ix.error, passivated=False, wake_at_ms=None,
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

    async def load_executions(self, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
        self._check_open()
        loaded = {}
        for eid in execution_ids:
            row = self._executions.get(eid)
            if row is not None:
                snapshot = self._snapshots.get(eid)
                records = self._journal.get(eid, [])[snapshot.seq if snapshot else 0 :]
                loaded[eid] = LoadedExecution(row, snapshot, records)
        return loaded

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

    async def page_executions(
        self,
        query: ExecutionQuery,
        after: PagePosition | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[ExecutionRow]:
        """A keyset page of the run views, newest first (see :mod:`tether.persistence.pages`)."""
        self._check_open()
        return self._views.page(self._executions, query, after, limit, oldest_first)

    async def count_executions(self, query: ExecutionQuery) -> dict[str, int]:
        self._check_open()
        return self._views.count(query)

    async def project_views(self, limit: int = 1000) -> int:
        check_projection_limit(limit)
        self._check_writable()
        await checkpoint()  # a transaction of the writer's in the other stores
        return self._views.project(self._executions, limit)

    async def views_behind(self) -> int:
        self._check_open()
        return self._views.behind()

    async def unfinished_executions(self) -> list[ExecutionRow]:
        self._check_open()
        rows = [
            r
            for r in self._executions.values()
            if r.status not in TERMINAL_STATUSES and not r.passivated
        ]
        return sorted(rows, key=lambda r: (r.created_at_ms, r.execution_id))

    async def passive_wakes(self) -> list[tuple[str, int]]:
        self._check_open()
        wakes = [
            (r.execution_id, r.wake_at_ms)
            for r in self._executions.values()
            if r.passivated and r.wake_at_ms is not None
        ]
        return sorted(wakes, key=lambda w: (w[1], w[0]))

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

    # ------------------------------------------------------------------------- memory facts

    async def write_fact(self, row: FactRow) -> bool:
        check_fact(row)
        self._check_writable()
        await checkpoint()
        self._check_writable()
        scope = self._facts.setdefault(row.scope, {})
        if row.fact_id in scope:
            return False
        self._facts_written += 1
        scope[row.fact_id] = dataclasses.replace(row, written=self._facts_written)
        return True

    async def read_facts(self, scope: str) -> list[FactRow]:
        self._check_open()
        rows = self._facts.get(scope, {}).values()
        return sorted(rows, key=lambda r: (r.at_ms, r.written, r.fact_id))

    # ------------------------------------------------------------------------- artifacts

    async def put_artifacts(self, blobs: Sequence[bytes], at_ms: int) -> list[str]:
        rows = keyed(blobs)
        self._check_writable()
        await checkpoint()
        self._check_writable()
        for digest, data in rows:
            old = self.artifacts.get(digest)
            if old is None:
                self.artifacts[digest] = (data, ArtifactInfo(digest, len(data), at_ms, at_ms))
            else:  # never overwritten: only the last put moves on
                info = old[1]
                touched = max(info.touched_at_ms, at_ms)
                self.artifacts[digest] = (
                    old[0],
                    ArtifactInfo(digest, info.size, info.created_at_ms, touched),
                )
        return [digest for digest, _ in rows]

    async def get_artifact(self, digest: str) -> bytes | None:
        self._check_open()
        digest = check_digest(digest)
        found = self.artifacts.get(digest)
        return None if found is None else verified(digest, found[0])

    async def list_artifacts(self) -> list[ArtifactInfo]:
        self._check_open()
        return [self.artifacts[d][1] for d in sorted(self.artifacts)]

    async def artifact_references(self, marker: bytes) -> list[bytes]:
        self._check_open()
        rows = [r.payload for rows in self._journal.values() for r in rows]
        rows += [s.payload for s in self._snapshots.values()]
        return [p for p in rows if marker in p]

    async def delete_artifacts(self, digests: Collection[str], touched_before_ms: int) -> list[str]:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        deleted = []
        for digest in digests:
            found = self.artifacts.get(digest)
            if found is not None and found[1].touched_at_ms < touched_before_ms:
                del self.artifacts[digest]
                deleted.append(digest)
        return deleted


def _replace(row: ExecutionRow, **changes: object) -> ExecutionRow:
    return msgspec.structs.replace(row, **changes)
