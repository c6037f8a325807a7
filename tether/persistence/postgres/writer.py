"""The Postgres writer (I4, I6): one task owning the write connection, committing in groups.

Appends, heartbeats and grants that arrive while a commit is in flight wait in ``_pending``
and go into the next transaction together; each caller's future is resolved only after that
transaction commits. A commit costs ~0.5 ms here (the WAL flush), so a group of N turns costs
one flush instead of N (``python -m benchmarks.postgres``: ~30k turns/s grouped against
~1k one per commit). Within a group the heartbeats apply first, then the turns in arrival
order, then the grants. The journal rows, snapshots and index changes, whose results nobody
reads, go in one pipeline with the commit: one round trip for all of them.

Checks run per batch against fresh reads (``batch.look_up``): a conflicting turn or a stale
heartbeat fails alone and the rest of its group commits. If the group's transaction fails
anyway, it is rolled back and each item is tried again in its own transaction, so only the bad
one fails. Other writes (workflows, schedules, releases, reissues) are jobs, each in its own
transaction, after the group.

Example::

    writer = GroupWriter(conn, where="postgresql://db/tether")
    writer.start()
    last = await writer.append(turn)
    await writer.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from tether.persistence.audit_chain import ChainHead
from tether.persistence.contract import StorageError, StoreClosed, Turn, WorkItemRow
from tether.persistence.ownership import EngineFences
from tether.persistence.postgres import batch, lease_ops
from tether.persistence.postgres.connection import Conn
from tether.persistence.write_requests import (
    Grant,
    Heartbeat,
    fail,
    fail_all,
    job_error,
    storage_error,
)

log = logging.getLogger(__name__)

#: A write that is not grouped: runs alone in its own transaction; its return value
#: resolves the submitter's future.
Job = Callable[[Conn], Awaitable[Any]]

#: Upper bound on items per transaction, so one burst cannot make a commit unbounded.
MAX_BATCH = 4096


@dataclass(slots=True)
class _Append:
    prepared: batch.PreparedTurn
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Job:
    job: Job
    future: asyncio.Future[Any]


_Grouped = _Append | Heartbeat | Grant
_Queued = _Grouped | _Job
_G = TypeVar("_G", _Append, Heartbeat)


@dataclass
class WriterStats:
    """Counters for benchmarks: transactions committed by groups, and turns in them."""

    commits: int = 0
    turns: int = 0
    rows: int = 0  # journal records
    leases: int = 0  # work items granted


class GroupWriter:
    """Owns ``conn`` for writing; see the module docstring."""

    def __init__(
        self, conn: Conn, where: str, audit: bool = True, fences: EngineFences | None = None
    ) -> None:
        self._conn = conn
        #: Set when several engines share the schema: every turn's execution must be owned
        #: by this engine with the fence held here (tether.persistence.ownership).
        self._fences = fences
        self._where = where
        #: Chain every journal row (tether.persistence.audit_chain) as its turn is accepted.
        self._audit = audit
        #: Chain heads committed since a signer last took them (None: no signer follows).
        self._new_heads: dict[str, ChainHead] | None = None
        self._pending: list[_Queued] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: str | None = None
        self.stats = WriterStats()

    def take_heads(self) -> list[ChainHead]:
        """The chain heads committed since the last call (the first call starts the
        following: it returns nothing). For the audit signer, which signs them in batches."""
        heads = self._new_heads
        self._new_heads = {}
        return [] if heads is None else list(heads.values())

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"tether-postgres-writer:{self._where}"
        )

    def append(self, turn: Turn) -> asyncio.Future[int]:
        """Queue ``turn``; the future gets its last seq once its group has committed. The
        rows are built and checksummed here, in the caller, while a commit is in flight."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(_Append(batch.prepare(turn), future))
        return future

    def heartbeat(
        self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int
    ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(Heartbeat(work_item_id, fence, now_ms, now_ms + ttl_ms, future))
        return future

    def grant(
        self, queue: str, owner: str, now_ms: int, ttl_ms: int, limit: int,
        exclude: tuple[str, ...],
    ) -> asyncio.Future[list[WorkItemRow]]:  # fmt: skip
        future: asyncio.Future[list[WorkItemRow]] = asyncio.get_running_loop().create_future()
        self._enqueue(Grant(queue, owner, now_ms, ttl_ms, limit, future, exclude))
        return future

    async def submit(self, job: Job) -> Any:
        """Run ``job`` in its own transaction on the writer connection; return its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(_Job(job, future))
        return await future

    async def close(self) -> None:
        """Finish everything queued so far, then stop the task."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await self._task
            except BaseException as exc:
                task = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) and task and task.cancelling():
                    raise
                log.warning("postgres writer for %s had stopped: %r", self._where, exc)

    async def abandon(self) -> None:
        """Stop where it is, as a killed process stops (crash tests): nothing queued is
        written; callers still waiting get StorageError."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])

    def _enqueue(self, item: _Queued) -> None:
        if self._closing:
            raise StoreClosed(f"{self._where}: store is closed")
        if self._failure is not None:
            raise StorageError(f"{self._where}: writer stopped: {self._failure}")
        self._pending.append(item)
        self._wakeup.set()

    # ----------------------------------------------------------------------------- the loop

    async def _run(self) -> None:
        group: list[_Queued] = []
        try:
            while self._pending or not self._closing:
                if not self._pending:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                group = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                grouped = [g for g in group if not isinstance(g, _Job) and not g.future.done()]
                if grouped:
                    await self._commit_group(grouped, retry=True)
                for job in group:
                    if isinstance(job, _Job) and not job.future.done():
                        await self._run_job(job)
                group = []
        except BaseException as exc:
            # A lost connection, a bug or a cancellation: never leave a caller waiting.
            self._failure = repr(exc)
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("postgres writer for %s stopped", self._where)
            fail_all((*group, *self._pending), f"{self._where}: writer stopped: {exc!r}")
            self._pending.clear()
            raise

    async def _commit_group(self, group: list[_Grouped], retry: bool) -> None:
        appends = [g for g in group if isinstance(g, _Append)]
        beats = [g for g in group if isinstance(g, Heartbeat)]
        grants = [g for g in group if isinstance(g, Grant)]
        try:
            view = await batch.look_up(
                self._conn, [a.prepared for a in appends], (b.work_item_id for b in beats),
                self._audit, shared=self._fences is not None,
            )  # fmt: skip
        except psycopg.Error as exc:
            await self._rollback()
            self._stop_if_broken(exc)
            fail_all(group, f"{self._where}: cannot read sequences or fences: {exc}")
            return
        beats = _accepted(beats, batch.check_heartbeats(
            [(b.work_item_id, b.fence) for b in beats], view))  # fmt: skip
        prepared = [a.prepared for a in appends]
        appends = _accepted(appends, batch.check_turns(prepared, view, self._audit, self._fences))
        if not (appends or beats or grants):
            await self._rollback()  # end the read-only transaction of the look-up
            return
        try:
            granted = await self._write(appends, beats, grants, view)
            async with self._conn.pipeline():
                engine = self._fences.engine_id if self._fences is not None else None
                await batch.write_rows(self._conn, [a.prepared for a in appends], view, engine)
                await self._conn.commit()
        except (psycopg.Error, batch.CheckMismatch) as exc:
            await self._rollback()
            self._stop_if_broken(exc)
            tried: list[_Grouped] = [*beats, *appends, *grants]
            if retry and len(tried) > 1:
                log.warning("postgres writer for %s: group of %d failed (%s); one by one",
                            self._where, len(tried), exc)  # fmt: skip
                for one in tried:
                    await self._commit_group([one], retry=False)
                return
            for one in tried:
                fail(one, storage_error(self._where, one, exc))
            return
        if self._fences is not None:
            for eid in view.new_owners:
                self._fences.held[eid] = 1
        self._acknowledge(appends, beats, grants, granted)

    async def _write(
        self,
        appends: list[_Append],
        beats: list[Heartbeat],
        grants: list[Grant],
        view: batch.BatchView,
    ) -> list[list[WorkItemRow]]:
        conn = self._conn
        if beats:
            rows = [(b.expires_ms, b.now_ms, b.work_item_id, b.fence) for b in beats]
            if await lease_ops.apply_heartbeats(conn, rows) != len(rows):
                raise batch.CheckMismatch("a heartbeat's fence check failed in SQL")
        if appends:
            await batch.write_items(conn, [a.prepared for a in appends], view)
        engine = self._fences.engine_id if self._fences is not None else None
        return [
            await lease_ops.grant(
                conn, g.queue, g.owner, g.now_ms, g.ttl_ms, g.limit, g.exclude, engine
            )
            for g in grants
        ]

    def _acknowledge(
        self,
        appends: list[_Append],
        beats: list[Heartbeat],
        grants: list[Grant],
        granted: list[list[WorkItemRow]],
    ) -> None:
        self.stats.commits += 1
        self.stats.turns += len(appends)
        self.stats.rows += sum(len(a.prepared.turn.records) for a in appends)
        self.stats.leases += sum(len(rows) for rows in granted)
        heads = self._new_heads
        for a in appends:
            links = a.prepared.links
            if heads is not None and links:
                eid = a.prepared.turn.execution_id
                heads[eid] = ChainHead(eid, a.prepared.last_seq, links[-1])
            if not a.future.done():
                a.future.set_result(a.prepared.last_seq)
        for b in beats:
            if not b.future.done():
                b.future.set_result(b.expires_ms)
        for g, rows in zip(grants, granted, strict=True):
            # A grant whose caller went away still committed: its leases expire and are
            # reclaimed like those of a crashed worker.
            if not g.future.done():
                g.future.set_result(rows)

    async def _run_job(self, item: _Job) -> None:
        try:
            result = await item.job(self._conn)
            await self._conn.commit()
        except Exception as exc:
            await self._rollback()
            if not isinstance(exc, StorageError):
                log.error("postgres writer for %s: write failed: %s", self._where, exc)
            error = job_error(self._where, exc)
            fail(item, error)
            self._stop_if_broken(error)
            return
        if not item.future.done():
            item.future.set_result(result)

    async def _rollback(self) -> None:
        try:
            await self._conn.rollback()
        except psycopg.Error:
            log.exception("postgres writer for %s: rollback failed", self._where)

    def _stop_if_broken(self, exc: BaseException) -> None:
        """A lost connection also lost the writer lock: stop rather than write without it."""
        if self._conn.broken:
            message = f"{self._where}: connection to the database lost: {exc}"
            raise StorageError(message, transient=True)


def _accepted(items: list[_G], problems: list[StorageError | None]) -> list[_G]:
    for item, problem in zip(items, problems, strict=True):
        if problem is not None:
            fail(item, problem)
    return [item for item, problem in zip(items, problems, strict=True) if problem is None]
