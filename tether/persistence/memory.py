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
from tether.persistence.checks import (
    check_lease_args,
    check_projection_limit,
    check_reissued,
    check_schedule,
    check_turns,
)
from tether.persistence.contract import (
    OPEN_WORK_STATUSES,
    TERMINAL_STATUSES,
    Durability,
    ExecutionRow,
    IndexUpdate,
    Lease,
    LoadedExecution,
    ScheduleRow,
    SequenceConflict,
    Snapshot,
    StorageError,
    StoreClosed,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkflowVersionConflict,
    WorkItemRow,
)
from tether.persistence.facts import FactRow, check_fact
from tether.persistence.leases import (
    ItemState,
    grant_order,
    grantable,
    granted,
    heartbeat_problem,
    lease_of,
    list_order,
    released,
    settle_problem,
    settled,
)
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    PagePosition,
    WorkItemQuery,
    is_after,
    work_item_matches,
)
from tether.persistence.views.memory_views import MemoryViews


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
        self._items: dict[str, WorkItemRow] = {}
        self._schedules: dict[str, ScheduleRow] = {}
        self._facts: dict[str, dict[str, FactRow]] = {}
        self._facts_written = 0
        #: digest -> (bytes, info); a test may corrupt the bytes to see a read refuse them.
        self.artifacts: dict[str, tuple[bytes, ArtifactInfo]] = {}
        self._views = MemoryViews()
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
        """Lease up to ``limit`` due items of ``queue`` to ``owner``, oldest first, none of
        ``exclude``."""
        check_lease_args(ttl_ms, f"grant on queue {queue}")
        self._check_writable()
        if limit <= 0:
            return []
        await checkpoint()
        self._check_writable()
        skip = frozenset(exclude)
        due = sorted((r for r in self._items.values()
                      if grantable(r, queue, now_ms) and r.work_item_id not in skip),
                     key=grant_order)[:limit]  # fmt: skip
        leases = []
        for row in due:
            new = granted(row, owner, now_ms, ttl_ms)
            self._items[row.work_item_id] = new
            leases.append(lease_of(new))
        return leases

    async def heartbeat(self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int) -> int:
        """Extend the lease to ``now_ms + ttl_ms`` (accepted even past expiry while still
        leased with ``fence``); StaleFence otherwise."""
        check_lease_args(ttl_ms, f"heartbeat of work item {work_item_id}")
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._items.get(work_item_id)
        problem = heartbeat_problem(
            work_item_id, fence, None if row is None else ItemState(row.status, row.fence)
        )
        if problem is not None:
            raise problem
        assert row is not None
        expires = now_ms + ttl_ms
        self._items[work_item_id] = msgspec.structs.replace(
            row, lease_expires_ms=expires, updated_at_ms=max(row.updated_at_ms, now_ms)
        )
        return expires

    async def get_work_item(self, work_item_id: str) -> WorkItemRow | None:
        self._check_open()
        return self._items.get(work_item_id)

    async def release_leases(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        rows = sorted(
            (r for r in self._items.values() if r.status == "leased" and r.lease_owner == owner),
            key=list_order,
        )
        out = [released(r, now_ms) for r in rows]
        for row in out:
            self._items[row.work_item_id] = row
        return out

    async def reissue(self, rows: Sequence[WorkItemRow]) -> int:
        check_reissued(rows)
        self._check_writable()
        await checkpoint()
        self._check_writable()
        inserted = 0
        for row in rows:
            if row.work_item_id not in self._items:
                self._items[row.work_item_id] = row
                inserted += 1
        return inserted

    async def expired_leases(self, now_ms: int, limit: int = 1000) -> list[WorkItemRow]:
        self._check_open()
        rows = [
            r
            for r in self._items.values()
            if r.status == "leased" and r.lease_expires_ms is not None
            and r.lease_expires_ms <= now_ms
        ]  # fmt: skip
        rows.sort(key=lambda r: (r.lease_expires_ms, r.work_item_id))
        return rows[:limit] if limit >= 0 else rows

    async def open_work_items(self, queue: str | None = None) -> list[WorkItemRow]:
        self._check_open()
        rows = [
            r
            for r in self._items.values()
            if r.status in OPEN_WORK_STATUSES and (queue is None or r.queue == queue)
        ]
        return sorted(rows, key=list_order)

    async def list_work_items(
        self,
        status: str | None = None,
        execution_id: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkItemRow]:
        """Newest first (created_at_ms, then id, both descending)."""
        self._check_open()
        rows = [
            r
            for r in self._items.values()
            if (status is None or r.status == status)
            and (execution_id is None or r.execution_id == execution_id)
            and (queue is None or r.queue == queue)
        ]
        rows.sort(key=list_order, reverse=True)
        return rows[offset : offset + limit] if limit >= 0 else rows[offset:]

    async def page_work_items(
        self, query: WorkItemQuery, after: PagePosition | None = None, limit: int = 100
    ) -> list[WorkItemRow]:
        self._check_open()
        rows = [
            r
            for r in self._items.values()
            if work_item_matches(query, r)
            and is_after(after, r.created_at_ms, r.work_item_id, oldest_first=False)
        ]
        rows.sort(key=list_order, reverse=True)
        return rows[: max(limit, 0)]

    async def count_work_items(self) -> dict[tuple[str, str], int]:
        self._check_open()
        counts: dict[tuple[str, str], int] = {}
        for r in self._items.values():
            if r.status in QUEUE_DEPTH_STATUSES:
                counts[(r.queue, r.status)] = counts.get((r.queue, r.status), 0) + 1
        return counts

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

    # ------------------------------------------------------------------------- schedules

    async def put_schedule(self, row: ScheduleRow) -> None:
        check_schedule(row)
        self._check_writable()
        await checkpoint()
        self._check_writable()
        self._schedules[row.schedule_id] = row

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        self._check_open()
        return self._schedules.get(schedule_id)

    async def list_schedules(self) -> list[ScheduleRow]:
        self._check_open()
        return [self._schedules[k] for k in sorted(self._schedules)]

    async def delete_schedule(self, schedule_id: str) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        return self._schedules.pop(schedule_id, None) is not None

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None = None
    ) -> ScheduleRow | None:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None:
            return None
        new = msgspec.structs.replace(
            row,
            paused=paused,
            next_fire_ms=row.next_fire_ms if next_fire_ms is None else next_fire_ms,
            updated_at_ms=max(row.updated_at_ms, at_ms),
        )
        self._schedules[schedule_id] = new
        return new

    async def advance_schedule(
        self,
        schedule_id: str,
        expected_next_fire_ms: int,
        new_next_fire_ms: int,
        at_ms: int,
        last_error: str | None = None,
    ) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None or row.next_fire_ms != expected_next_fire_ms:
            return False
        self._schedules[schedule_id] = msgspec.structs.replace(
            row,
            next_fire_ms=new_next_fire_ms,
            last_error=last_error,
            updated_at_ms=max(row.updated_at_ms, at_ms),
        )
        return True

    async def set_schedule_error(self, schedule_id: str, error: str | None, at_ms: int) -> bool:
        self._check_writable()
        await checkpoint()
        self._check_writable()
        row = self._schedules.get(schedule_id)
        if row is None:
            return False
        self._schedules[schedule_id] = msgspec.structs.replace(
            row, last_error=error, updated_at_ms=max(row.updated_at_ms, at_ms)
        )
        return True

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
