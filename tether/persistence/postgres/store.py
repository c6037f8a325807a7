"""``PostgresStore``: the :class:`~tether.persistence.contract.Store` on a Postgres schema.

Writes go through one :class:`GroupWriter` on a connection that holds the schema's writer
lock (I6): turns, heartbeats and grants that arrive together commit in one transaction.
Reads use a second connection in autocommit mode, so a read never waits for a group commit and
never holds a transaction open between calls. Tables go in the connection's current schema
(set ``search_path`` with ``?options=-csearch_path%3Dname`` in the URL to pick another).

Durability: ``"full"`` commits with ``synchronous_commit=on`` (an acknowledged append is on
the server's disk); ``"normal"`` with ``off``: it survives a crash of the engine, but a crash
of the database server may lose the last commits (at most ~3 x ``wal_writer_delay``).

Example::

    store = PostgresStore("postgresql://tether@localhost/tether")
    await store.open()
    await store.append(Turn("exec_1", 1, (NewRecord("execution_started", b"{}"),)))
    records = await store.read("exec_1")
    await store.close()
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Collection, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg

from tether.persistence.artifacts.contract import ArtifactInfo, check_digest, keyed, verified
from tether.persistence.checks import (
    check_lease_args,
    check_projection_limit,
    check_reissued,
    check_schedule,
    check_turns,
)
from tether.persistence.contract import (
    Durability,
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
from tether.persistence.ownership import EngineFences
from tether.persistence.pages import ExecutionQuery, PagePosition, WorkItemQuery
from tether.persistence.postgres import (
    artifact_ops,
    execution_reads,
    fact_ops,
    lease_ops,
    page_reads,
    schedule_ops,
    schema,
    view_ops,
    workflow_ops,
)
from tether.persistence.postgres.audit_log import PostgresAuditLog
from tether.persistence.postgres.connection import (
    Conn,
    connect,
    migration_lock,
    take_writer_lock,
)
from tether.persistence.postgres.ownership_store import PostgresOwnership
from tether.persistence.postgres.writer import GroupWriter, WriterStats
from tether.persistence.urls import display_url

P = ParamSpec("P")
T = TypeVar("T")


class PostgresStore:
    """A Store on the Postgres database ``url`` names; see the module docstring.

    ``readonly=True`` takes no writer lock and refuses writes with StorageError (inspect a
    schema another engine runs on). ``lock_wait_ms``: how long ``open`` waits for the writer
    lock before DatabaseLocked (a killed engine's lock goes within milliseconds).

    ``engine_id`` makes this store one of several engines sharing the schema: the writer lock
    is taken shared (an engine opened without one still excludes them all), every append
    must be for an execution this engine owns (``self.ownership``,
    :mod:`tether.persistence.ownership`), and grants, recovery's reads and released leases
    are those of the executions it owns.
    """

    def __init__(
        self,
        url: str,
        durability: Durability = "full",
        readonly: bool = False,
        lock_wait_ms: int = 5_000,
        audit: bool = True,
        engine_id: str | None = None,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.url = url
        self.where = display_url(url)
        self.durability: Durability = durability
        self.readonly = readonly
        #: Chain every journal row (``audit_chain``); False writes rows without links.
        self.audit = audit
        self._lock_wait_ms = lock_wait_ms
        self._writer_conn: Conn | None = None
        self._reader: Conn | None = None
        self._writer: GroupWriter | None = None
        self._state = "new"
        self._closing: asyncio.Future[None] | None = None
        #: Engines sharing the schema: the executions this one owns (None: the only engine).
        self.fences = EngineFences(engine_id) if engine_id is not None else None

    # ---------------------------------------------------------------------------- lifecycle

    async def open(self) -> None:
        """Connect, take the writer lock, create or migrate the schema. Idempotent."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise StoreClosed(f"{self.where}: store is closed; create a new one")
        try:
            if not self.readonly:
                await self._open_writer()
            self._reader = await connect(self.url, self.where, autocommit=True)
            await self._reader.execute("SET default_transaction_read_only = on")
            if self.readonly:
                await schema.check_version(self._reader, self.where)
        except BaseException as exc:
            await self._teardown()
            if isinstance(exc, psycopg.Error):
                raise StorageError(f"{self.where}: cannot open: {exc}") from exc
            raise
        self._state = "open"

    async def _open_writer(self) -> None:
        conn = self._writer_conn = await connect(self.url, self.where, autocommit=False)
        shared = self.fences is not None
        await take_writer_lock(conn, self.where, self._lock_wait_ms, shared=shared)
        sync = "on" if self.durability == "full" else "off"
        await conn.execute(f"SET synchronous_commit = {sync}")
        await conn.commit()
        if shared:
            async with migration_lock(conn):  # engines starting together migrate once
                await schema.migrate(conn, self.where)
        else:
            await schema.migrate(conn, self.where)
        self._writer = GroupWriter(conn, self.where, audit=self.audit, fences=self.fences)
        self._writer.start()

    async def close(self) -> None:
        """Flush pending writes, close the connections (the lock goes with the writer's).
        Idempotent; afterwards every method raises StoreClosed."""
        if self._state == "closed":
            if self._closing is not None:  # a concurrent close: finish with the first one
                await asyncio.shield(self._closing)
            return
        self._state = "closed"
        self._closing = asyncio.ensure_future(self._teardown())
        await asyncio.shield(self._closing)

    async def abandon(self) -> None:
        """Let go as a killed process does (crash tests): queued writes are lost, an
        uncommitted transaction rolls back when its connection closes. Closed afterwards."""
        if self._state == "closed":
            if self._closing is not None:
                await asyncio.shield(self._closing)
            return
        self._state = "closed"
        writer, self._writer = self._writer, None
        if writer is not None:
            await writer.abandon()
        await self._close_connections()

    async def _teardown(self) -> None:
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                await writer.close()
        finally:
            await self._close_connections()

    async def _close_connections(self) -> None:
        for conn in (self._reader, self._writer_conn):
            if conn is not None:
                await conn.close()
        self._reader = self._writer_conn = None

    async def __aenter__(self) -> PostgresStore:
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
        """Group-commit counters of the writer (zeros for a read-only store)."""
        return self._writer.stats if self._writer is not None else WriterStats()

    # -------------------------------------------------------------------------------- writes

    async def append(self, turn: Turn) -> int:
        """Commit ``turn`` with whatever else is queued; return its last seq once durable."""
        check_turns((turn,))
        return await self._writing().append(turn)

    async def put_workflow(self, workflow_id: str, version: str, ir: bytes, at_ms: int) -> None:
        """Register IR. Same bytes again: no-op. Different bytes: WorkflowVersionConflict."""
        await self._job(workflow_ops.put_workflow, workflow_id, version, ir, at_ms)

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
        ``exclude``; group-committed with appends (it sees the items they create).

        Example::

            for lease in await store.grant("default", "worker-1", now_ms, 30_000, limit=8):
                run(lease.item.payload, fence=lease.fence)
        """
        check_lease_args(ttl_ms, f"{self.where}: grant on queue {queue}")
        writer = self._writing()
        if limit <= 0:
            return []
        rows = await writer.grant(queue, owner, now_ms, ttl_ms, limit, tuple(exclude))
        return [lease_of(row) for row in rows]

    async def heartbeat(self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int) -> int:
        """Extend the lease to ``now_ms + ttl_ms``; StaleFence unless leased with ``fence``."""
        check_lease_args(ttl_ms, f"{self.where}: heartbeat of work item {work_item_id}")
        return await self._writing().heartbeat(work_item_id, fence, now_ms, ttl_ms)

    async def release_leases(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        """Leases of ``owner`` back to pending, fence and attempt kept (see the contract);
        an engine sharing the schema releases those of the executions it owns only."""
        if self.fences is not None:
            return await self.ownership.release_leases(owner, now_ms)
        rows: list[WorkItemRow] = await self._job(lease_ops.release_leases, owner, now_ms)
        return rows

    async def reissue(self, rows: Sequence[WorkItemRow]) -> int:
        """Pending rows for ids that have none (see the contract)."""
        check_reissued(rows)
        if not rows:
            self._writing()
            return 0
        params = [lease_ops.insert_params(r) for r in rows]
        inserted: int = await self._job(lease_ops.insert_work_items, params)
        return inserted

    async def put_schedule(self, row: ScheduleRow) -> None:
        check_schedule(row)
        await self._job(schedule_ops.put_schedule, row)

    async def delete_schedule(self, schedule_id: str) -> bool:
        return bool(await self._job(schedule_ops.delete_schedule, schedule_id))

    async def set_schedule_paused(
        self, schedule_id: str, paused: bool, at_ms: int, next_fire_ms: int | None = None
    ) -> ScheduleRow | None:
        row: ScheduleRow | None = await self._job(
            schedule_ops.set_schedule_paused, schedule_id, paused, at_ms, next_fire_ms
        )
        return row

    async def advance_schedule(
        self,
        schedule_id: str,
        expected_next_fire_ms: int,
        new_next_fire_ms: int,
        at_ms: int,
        last_error: str | None = None,
    ) -> bool:
        """Compare-and-set the next fire; see the Store contract."""
        return bool(await self._job(schedule_ops.advance_schedule, schedule_id,
                                    expected_next_fire_ms, new_next_fire_ms, at_ms,
                                    last_error))  # fmt: skip

    async def set_schedule_error(self, schedule_id: str, error: str | None, at_ms: int) -> bool:
        return bool(await self._job(schedule_ops.set_schedule_error, schedule_id, error, at_ms))

    async def write_fact(self, row: FactRow) -> bool:
        """Insert a memory fact once per ``(scope, fact_id)`` (a job of the writer)."""
        check_fact(row)
        return bool(await self._job(fact_ops.write_fact, row))

    async def read_facts(self, scope: str) -> list[FactRow]:
        """Every fact of ``scope``, oldest first."""
        return await self._read(fact_ops.read_facts, scope)

    async def put_artifacts(self, blobs: Sequence[bytes], at_ms: int) -> list[str]:
        """Keep each blob under its SHA-256, once, in one transaction (a writer job)."""
        rows = keyed(blobs)
        if rows:
            await self._job(artifact_ops.put_artifacts, rows, at_ms)
        return [digest for digest, _ in rows]

    async def get_artifact(self, digest: str) -> bytes | None:
        """The artifact's bytes, verified against ``digest``; None when unknown."""
        digest = check_digest(digest)
        data = await self._read(artifact_ops.get_artifact, digest)
        return None if data is None else verified(digest, data)

    async def list_artifacts(self) -> list[ArtifactInfo]:
        return await self._read(artifact_ops.list_artifacts)

    async def artifact_references(self, marker: bytes) -> list[bytes]:
        return await self._read(artifact_ops.artifact_references, marker)

    async def delete_artifacts(self, digests: Collection[str], touched_before_ms: int) -> list[str]:
        """Remove those of ``digests`` last put before ``touched_before_ms`` (a writer job)."""
        if not digests:
            return []
        deleted: list[str] = await self._job(
            artifact_ops.delete_artifacts, list(digests), touched_before_ms
        )
        return deleted

    async def _job(self, op: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``op(conn, *args)`` as a job of the writer: its own transaction."""
        return await self._writing().submit(functools.partial(_call, op, args))

    @property
    def ownership(self) -> PostgresOwnership:
        """Engine liveness, execution owners and the inbox (an engine sharing the schema)."""
        if self.fences is None:
            raise StorageError(f"{self.where}: opened for a single engine (no engine_id)")
        return PostgresOwnership(self.fences, self._read, self._job)

    def audit_log(self) -> PostgresAuditLog:
        """The audit log over this store's journal (chained rows, signed heads)."""
        return PostgresAuditLog(
            self._read, self._job, self._writing, self.audit and not self.readonly
        )

    def _writing(self) -> GroupWriter:
        self._check_open()
        if self._writer is None:
            raise StorageError(f"{self.where}: store is open read-only; writes are refused")
        return self._writer

    # --------------------------------------------------------------------------------- reads

    async def read(self, execution_id: str, from_seq: int = 1) -> list[StoredRecord]:
        """Records with seq >= from_seq in order; JournalCorruption names a bad row."""
        return await self._read(execution_reads.read_journal, execution_id, max(from_seq, 1))

    async def latest_snapshot(self, execution_id: str) -> Snapshot | None:
        return await self._read(execution_reads.latest_snapshot, execution_id)

    async def get_execution(self, execution_id: str) -> ExecutionRow | None:
        return await self._read(execution_reads.get_execution, execution_id)

    async def load_executions(self, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
        """Index rows, latest snapshots and the records after them; two reads for all."""
        if not execution_ids:
            self._check_open()
            return {}
        return await self._read(execution_reads.load_executions, execution_ids)

    async def list_executions(
        self,
        status: str | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[ExecutionRow]:
        """Newest first."""
        return await self._read(execution_reads.list_executions, status, workflow_id, limit, offset)

    async def page_executions(
        self,
        query: ExecutionQuery,
        after: PagePosition | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[ExecutionRow]:
        """A keyset page of the run views, newest first (see :mod:`tether.persistence.pages`
        and :mod:`tether.persistence.views`)."""
        return await self._read(view_ops.page_executions, query, after, limit, oldest_first)

    async def count_executions(self, query: ExecutionQuery) -> dict[str, int]:
        return await self._read(view_ops.count_executions, query)

    async def project_views(self, limit: int = 1000) -> int:
        """Move the run views on by up to ``limit`` status changes (a job of the writer)."""
        check_projection_limit(limit)
        return int(await self._job(view_ops.project, limit))

    async def views_behind(self) -> int:
        return await self._read(view_ops.views_behind)

    async def page_work_items(
        self, query: WorkItemQuery, after: PagePosition | None = None, limit: int = 100
    ) -> list[WorkItemRow]:
        return await self._read(page_reads.page_work_items, query, after, limit)

    async def count_work_items(self) -> dict[tuple[str, str], int]:
        return await self._read(page_reads.count_work_items)

    async def unfinished_executions(self) -> list[ExecutionRow]:
        rows = await self._read(execution_reads.unfinished_executions)
        return [r for r in rows if self._mine(r.execution_id)]

    async def passive_wakes(self) -> list[tuple[str, int]]:
        wakes = await self._read(execution_reads.passive_wakes)
        return [w for w in wakes if self._mine(w[0])]

    def _mine(self, execution_id: str) -> bool:
        """Recovery's reads, for an engine sharing the schema: what it owns only."""
        return self.fences is None or execution_id in self.fences.held

    async def get_workflow(
        self, workflow_id: str, version: str | None = None
    ) -> WorkflowRow | None:
        return await self._read(workflow_ops.get_workflow, workflow_id, version)

    async def list_workflows(self) -> list[WorkflowRow]:
        return await self._read(workflow_ops.list_workflows)

    async def get_work_item(self, work_item_id: str) -> WorkItemRow | None:
        return await self._read(lease_ops.get_work_item, work_item_id)

    async def expired_leases(self, now_ms: int, limit: int = 1000) -> list[WorkItemRow]:
        return await self._read(lease_ops.expired_leases, now_ms, limit)

    async def open_work_items(self, queue: str | None = None) -> list[WorkItemRow]:
        rows = await self._read(lease_ops.open_work_items, queue)
        return [r for r in rows if self._mine(r.execution_id)]

    async def list_work_items(
        self,
        status: str | None = None,
        execution_id: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkItemRow]:
        """Newest first; ``status="dead"`` is the dead-letter view."""
        return await self._read(
            lease_ops.list_work_items, status, execution_id, queue, limit, offset
        )

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        return await self._read(schedule_ops.get_schedule, schedule_id)

    async def list_schedules(self) -> list[ScheduleRow]:
        return await self._read(schedule_ops.list_schedules)

    async def _read(
        self, op: Callable[Concatenate[Conn, P], Awaitable[T]], *args: P.args, **kw: P.kwargs
    ) -> T:
        """``op`` on the reader connection; a driver error becomes a StorageError."""
        self._check_open()
        assert self._reader is not None
        try:
            return await op(self._reader, *args, **kw)
        except psycopg.Error as exc:
            raise StorageError(f"{self.where}: read failed: {exc}") from exc

    def _check_open(self) -> None:
        if self._state != "open":
            if self._state == "closed":
                raise StoreClosed(f"{self.where}: store is closed")
            raise StorageError(f"{self.where}: store is not open; call open() first")


async def _call(op: Callable[..., Awaitable[Any]], args: tuple[Any, ...], conn: Conn) -> Any:
    return await op(conn, *args)
