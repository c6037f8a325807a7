"""``SqliteStore``: the :class:`~tether.persistence.contract.Store` on one SQLite file.

Writes go through one :class:`GroupCommitWriter` on its own connection (I6); reads use a
separate connection in autocommit mode, so a read never shares the writer's transaction and
never holds a read transaction open between calls (which would stall WAL checkpoints).

Durability:

* ``"full"``: ``synchronous=FULL``; an acknowledged append survives power loss (an fsync of
  the WAL at every commit).
* ``"normal"``: ``synchronous=NORMAL``; an acknowledged append survives a crash of the
  process, but the last commits before a power loss or OS crash may be lost (the WAL is
  fsynced only at checkpoints). Faster on slow disks.

Example::

    store = SqliteStore(Path(".tether/runtime.db"))
    await store.open()
    await store.append(Turn("exec_1", 1, (NewRecord("execution_started", b"{}"),)))
    records = await store.read("exec_1")
    await store.close()
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from types import TracebackType

import aiosqlite

from tether.persistence.artifacts.contract import ArtifactInfo, check_digest, keyed, verified
from tether.persistence.checks import (
    check_lease_args,
    check_projection_limit,
    check_reissued,
    check_schedule,
    check_turns,
)
from tether.persistence.contract import (
    ExecutionRow,
    Lease,
    LoadedExecution,
    ScheduleRow,
    Snapshot,
    StorageError,
    StoreClosed,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkItemRow,
)
from tether.persistence.facts import FactRow, check_fact
from tether.persistence.leases import lease_of
from tether.persistence.pages import ExecutionQuery, PagePosition, WorkItemQuery
from tether.persistence.sqlite import (
    artifact_ops,
    execution_reads,
    fact_ops,
    lease_ops,
    page_reads,
    schedule_ops,
    view_ops,
    workflow_ops,
)
from tether.persistence.sqlite.audit_log import SqliteAuditLog
from tether.persistence.sqlite.connections import SqliteConnections
from tether.persistence.sqlite.settings import ConnectionSettings, read_settings
from tether.persistence.sqlite.writer import GroupCommitWriter, WriterStats


class SqliteStore(SqliteConnections):
    """A Store on the SQLite file at ``path``; see the module docstring.

    ``readonly=True`` takes no writer lock, opens the file read-only and refuses writes with
    StorageError; use it to inspect a database another engine is running on. ``audit=False``
    writes journal rows without their audit chain links (``audit_chain``; on by default).
    Opening and closing the lock, the connections and the writer are ``SqliteConnections``'s
    (:mod:`tether.persistence.sqlite.connections`); the contract's methods are here.
    """

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def stats(self) -> WriterStats:
        """Commit counters of the writer (zeros for a read-only store)."""
        return self._writer.stats if self._writer is not None else WriterStats()

    async def connection_settings(self) -> dict[str, ConnectionSettings]:
        """What the store's live connections are set to: ``"reader"`` and, unless read-only,
        ``"writer"`` (read on the writer's own connection, as a job between its batches).

        Example::

            assert (await store.connection_settings())["writer"].journal_mode == "wal"
        """
        settings = {"reader": await read_settings(self._reading())}
        if self._writer is not None:
            settings["writer"] = await self._writer.submit(read_settings)
        return settings

    def audit_log(self) -> SqliteAuditLog:
        """The audit log over this store's journal (chained rows, signed heads).

        Example::

            rows = await store.audit_log().read_chained("exec_1")
        """
        return SqliteAuditLog(self._reading, self._writing, self.audit and not self.readonly)

    # -------------------------------------------------------------------------------- writes

    async def append(self, turn: Turn) -> int:
        """Commit ``turn`` with whatever else is queued; return its last seq once durable."""
        check_turns((turn,))
        return await self._writing().append(turn)

    async def put_workflow(self, workflow_id: str, version: str, ir: bytes, at_ms: int) -> None:
        """Register IR. Same bytes again: no-op. Different bytes: WorkflowVersionConflict."""
        job = functools.partial(
            workflow_ops.put_workflow, workflow_id=workflow_id, version=version, ir=ir, at_ms=at_ms
        )
        await self._writing().submit(job)

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
        ``exclude`` (items this worker declined).

        Group-committed with appends and heartbeats; a grant sees the items created or parked
        by turns committed in the same batch.

        Example::

            for lease in await store.grant("default", "worker-1", now_ms, 30_000, limit=8):
                run(lease.item.payload, fence=lease.fence)
        """
        check_lease_args(ttl_ms, f"{self.path}: grant on queue {queue}")
        writer = self._writing()
        if limit <= 0:
            return []
        rows = await writer.grant(queue, owner, now_ms, ttl_ms, limit, tuple(exclude))
        return [lease_of(row) for row in rows]

    async def heartbeat(self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int) -> int:
        """Extend the lease to ``now_ms + ttl_ms``; return that expiry once durable.

        Accepted while the item is leased with ``fence``, even past its expiry; StaleFence
        otherwise. Heartbeats share group commits (one statement for all of a batch).

        Example::

            expires = await store.heartbeat(lease.work_item_id, lease.fence, now_ms, 30_000)
        """
        check_lease_args(ttl_ms, f"{self.path}: heartbeat of work item {work_item_id}")
        return await self._writing().heartbeat(work_item_id, fence, now_ms, ttl_ms)

    async def put_schedule(self, row: ScheduleRow) -> None:
        """Create or replace a schedule (a job of its own on the single writer, I6)."""
        check_schedule(row)
        await self._writing().submit(functools.partial(schedule_ops.put_schedule, row=row))

    async def delete_schedule(self, schedule_id: str) -> bool:
        job = functools.partial(schedule_ops.delete_schedule, schedule_id=schedule_id)
        return bool(await self._writing().submit(job))

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None = None
    ) -> ScheduleRow | None:
        job = functools.partial(
            schedule_ops.set_schedule_paused,
            schedule_id=schedule_id, paused=paused, at_ms=at_ms, next_fire_ms=next_fire_ms,
        )  # fmt: skip
        row: ScheduleRow | None = await self._writing().submit(job)
        return row

    async def advance_schedule(
        self,
        schedule_id: str,
        expected_next_fire_ms: int,
        new_next_fire_ms: int,
        at_ms: int,
        last_error: str | None = None,
    ) -> bool:
        """Compare-and-set the next fire; see the Store contract.

        Example::

            if await store.advance_schedule("daily", fire_ms, following_ms, now_ms):
                ...  # this engine moved the schedule on; nobody else will start fire_ms
        """
        job = functools.partial(
            schedule_ops.advance_schedule, schedule_id=schedule_id,
            expected_next_fire_ms=expected_next_fire_ms, new_next_fire_ms=new_next_fire_ms,
            at_ms=at_ms, last_error=last_error,
        )  # fmt: skip
        return bool(await self._writing().submit(job))

    async def set_schedule_error(self, schedule_id: str, error: str | None, at_ms: int) -> bool:
        job = functools.partial(
            schedule_ops.set_schedule_error, schedule_id=schedule_id, error=error, at_ms=at_ms
        )
        return bool(await self._writing().submit(job))

    async def write_fact(self, row: FactRow) -> bool:
        """Insert a memory fact once per ``(scope, fact_id)`` (a job of the single writer)."""
        check_fact(row)
        return bool(await self._writing().submit(functools.partial(fact_ops.write_fact, row=row)))

    async def read_facts(self, scope: str) -> list[FactRow]:
        """Every fact of ``scope``, oldest first."""
        return await fact_ops.read_facts(self._reading(), scope)

    async def put_artifacts(self, blobs: Sequence[bytes], at_ms: int) -> list[str]:
        """Keep each blob under its SHA-256, once, in one transaction (a writer job)."""
        rows = keyed(blobs)
        if rows:
            job = functools.partial(artifact_ops.put_artifacts, blobs=rows, at_ms=at_ms)
            await self._writing().submit(job)
        return [digest for digest, _ in rows]

    async def get_artifact(self, digest: str) -> bytes | None:
        """The artifact's bytes, verified against ``digest``; None when unknown."""
        digest = check_digest(digest)
        data = await artifact_ops.get_artifact(self._reading(), digest)
        return None if data is None else verified(digest, data)

    async def list_artifacts(self) -> list[ArtifactInfo]:
        return await artifact_ops.list_artifacts(self._reading())

    async def artifact_references(self, marker: bytes) -> list[bytes]:
        return await artifact_ops.artifact_references(self._reading(), marker)

    async def delete_artifacts(self, digests: Collection[str], touched_before_ms: int) -> list[str]:
        """Remove those of ``digests`` last put before ``touched_before_ms`` (a writer job)."""
        if not digests:
            return []
        job = functools.partial(
            artifact_ops.delete_artifacts,
            digests=list(digests),
            touched_before_ms=touched_before_ms,
        )
        deleted: list[str] = await self._writing().submit(job)
        return deleted

    def _writing(self) -> GroupCommitWriter:
        self._check_open()
        if self._writer is None:
            raise StorageError(f"{self.path}: store is open read-only; writes are refused")
        return self._writer

    # --------------------------------------------------------------------------------- reads

    async def read(self, execution_id: str, from_seq: int = 1) -> list[StoredRecord]:
        """Records with seq >= from_seq in order; raises JournalCorruption on a bad row."""
        return await execution_reads.read_journal(self._reading(), execution_id, max(from_seq, 1))

    async def latest_snapshot(self, execution_id: str) -> Snapshot | None:
        return await execution_reads.latest_snapshot(self._reading(), execution_id)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        return await execution_reads.get_execution(self._reading(), execution_id)

    async def load_executions(self, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
        """Index rows, latest snapshots and the records after them; two reads for all."""
        if not execution_ids:
            return {}
        return await execution_reads.load_executions(self._reading(), execution_ids)

    async def list_executions(
        self,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExecutionRow]:
        """Newest first."""
        return await execution_reads.list_executions(
            self._reading(), status, workflow_id, limit, offset
        )

    async def page_executions(
        self,
        query: ExecutionQuery,
        after: PagePosition | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[ExecutionRow]:
        """A keyset page of the run views, newest first (see :mod:`tether.persistence.pages`
        and :mod:`tether.persistence.views`)."""
        return await view_ops.page_executions(self._reading(), query, after, limit, oldest_first)

    async def count_executions(self, query: ExecutionQuery) -> dict[str, int]:
        return await view_ops.count_executions(self._reading(), query)

    async def project_views(self, limit: int = 1000) -> int:
        """Move the run views on by up to ``limit`` status changes (a job of the writer)."""
        check_projection_limit(limit)
        return int(await self._writing().submit(functools.partial(view_ops.project, limit=limit)))

    async def views_behind(self) -> int:
        return await view_ops.views_behind(self._reading())

    async def page_work_items(
        self, query: WorkItemQuery, after: PagePosition | None = None, limit: int = 100
    ) -> list[WorkItemRow]:
        return await page_reads.page_work_items(self._reading(), query, after, limit)

    async def count_work_items(self) -> dict[tuple[str, str], int]:
        return await page_reads.count_work_items(self._reading())

    async def unfinished_executions(self) -> list[ExecutionRow]:
        """Non-terminal executions not passivated, oldest first."""
        return await execution_reads.unfinished_executions(self._reading())

    async def passive_wakes(self) -> list[tuple[str, int]]:
        """Passivated executions waiting for a timer and when, earliest first."""
        return await execution_reads.passive_wakes(self._reading())

    async def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> WorkflowRow | None:
        return await workflow_ops.get_workflow(self._reading(), workflow_id, version)

    async def list_workflows(self) -> list[WorkflowRow]:
        return await workflow_ops.list_workflows(self._reading())

    async def get_work_item(self, work_item_id: str) -> WorkItemRow | None:
        return await lease_ops.get_work_item(self._reading(), work_item_id)

    async def expired_leases(self, now_ms: int, limit: int = 1000) -> list[WorkItemRow]:
        """Leased items whose lease ran out by ``now_ms``, earliest expiry first.

        Example::

            for row in await store.expired_leases(now_ms):
                reclaim(row.work_item_id, row.fence)   # settle failed with that fence
        """
        return await lease_ops.expired_leases(self._reading(), now_ms, limit)

    async def release_leases(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        """Leases of ``owner`` back to pending, fence and attempt kept (see the contract)."""
        return await self._writing().release(owner, now_ms)

    async def reissue(self, rows: Sequence[WorkItemRow]) -> int:
        """Pending rows for ids that have none, through the writer (see the contract)."""
        check_reissued(rows)
        if not rows:
            return 0
        return await self._writing().reissue(rows)

    async def open_work_items(self, queue: str | None = None) -> list[WorkItemRow]:
        """Pending, parked and leased items, oldest first (scheduler recovery)."""
        return await lease_ops.open_work_items(self._reading(), queue)

    async def list_work_items(
        self,
        status: str | None = None,
        execution_id: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkItemRow]:
        """Newest first; ``status="dead"`` is the dead-letter view.

        Example::

            dead = await store.list_work_items(status="dead", limit=50)
        """
        return await lease_ops.list_work_items(
            self._reading(), status, execution_id, queue, limit, offset
        )

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        return await schedule_ops.get_schedule(self._reading(), schedule_id)

    async def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by id."""
        return await schedule_ops.list_schedules(self._reading())

    def _reading(self) -> aiosqlite.Connection:
        self._check_open()
        assert self._reader is not None
        return self._reader

    def _check_open(self) -> None:
        if self._state != "open":
            if self._state == "closed":
                raise StoreClosed(f"{self.path}: store is closed")
            raise StorageError(f"{self.path}: store is not open; call open() first")
