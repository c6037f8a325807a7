"""The journal writer (I6): one task owning the one write connection, committing in groups.

Appends, heartbeats and grants that arrive while a commit is in flight wait in ``_pending`` and
go into the next transaction together; each caller's future is resolved only after that
transaction commits. Reissued work items (recovery) commit together after the group, in a
transaction of their own, before any submitted job. A batch costs a constant number of awaits:
one lookup for executions and one for work items not seen before, then one round trip to the
connection's thread that runs every write of the group (up to seven ``executemany`` calls, one
statement per grant) and the commit. The items a batch creates are not looked up
(their ids are new by construction): the insert count confirms it, and a batch where it does
not is retried one item per transaction, with lookups. Within a batch the heartbeats apply
first, then the turns in arrival order, then the grants (a grant sees the items the batch's
turns created or parked).

Sequence and fence checks happen here, in Python, against ``_last_seq`` and the
:class:`FenceBook`, authoritative because this is the only writer. A conflicting turn or a
stale heartbeat fails alone; the rest of its batch commits. If the batch transaction fails
anyway (a constraint, disk full, the table refusing a fence), it is rolled back and retried
one item per transaction so only the bad one fails.

The queue's entries and how their callers are failed are in
:mod:`tether.persistence.sqlite.writer_queue`; jobs and reissues, off the append path, are
``WriterJobs``'s (:mod:`tether.persistence.sqlite.writer_jobs`), which this class extends.

Example::

    writer = GroupCommitWriter(conn, where="runtime.db")
    writer.start()
    last = await writer.append(turn)      # a future
    await writer.close()
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import TypeVar

import aiosqlite

from tether.persistence.audit_chain import ChainHead, chain_link, genesis
from tether.persistence.contract import (
    TERMINAL_STATUSES,
    SequenceConflict,
    StorageError,
    StoreClosed,
    Turn,
    WorkItemRow,
)
from tether.persistence.leases import ItemState
from tether.persistence.sqlite import lease_ops, ops
from tether.persistence.sqlite.blobs import blob
from tether.persistence.sqlite.connection_thread import in_connection_thread
from tether.persistence.sqlite.fences import FenceBook
from tether.persistence.sqlite.writer_jobs import WriterJobs
from tether.persistence.sqlite.writer_queue import (
    Append,
    Grouped,
    Queued,
    Reissue,
    SubmittedJob,
)
from tether.persistence.write_requests import (
    Grant,
    Heartbeat,
    describe,
    fail,
    fail_all,
    storage_error,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Upper bound on turns per transaction, so one huge burst cannot make a commit unbounded.
MAX_BATCH = 4096


@dataclass
class WriterStats:
    """Counters for benchmarks and metrics."""

    commits: int = 0
    turns: int = 0
    rows: int = 0
    heartbeats: int = 0
    leases: int = 0  # work items granted


class GroupCommitWriter(WriterJobs):
    """Owns ``conn`` for writing; see the module docstring."""

    def __init__(self, conn: aiosqlite.Connection, where: str, audit: bool = True) -> None:
        self._conn = conn
        self._where = where
        #: Chain every journal row (tether.persistence.audit_chain) as its turn is accepted.
        self._audit = audit
        #: Each cached execution's last link (None: its rows so far are unchained).
        self._last_link: dict[str, bytes | None] = {}
        #: Chain heads committed since a signer last took them; None while no signer follows
        #: the journal, so nothing accumulates for nobody.
        self._new_heads: dict[str, ChainHead] | None = None
        self._pending: list[Queued] = []
        self._wakeup = asyncio.Event()
        self._last_seq: dict[str, int] = {}
        self._indexed: set[str] = set()  # executions known to have an index row
        self._fences = FenceBook()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._failure: str | None = None
        self.stats = WriterStats()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"tether-journal-writer:{self._where}"
        )

    def append(self, turn: Turn) -> asyncio.Future[int]:
        """Queue ``turn``; the future gets its last seq once its batch is durable.

        A plain function returning the future (not a coroutine) saves a frame per append; the
        rows are built and checksummed here, in the caller, while a commit is in flight.
        """
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(Append(ops.prepare(turn), future))
        return future

    def heartbeat(
        self, work_item_id: str, fence: int, now_ms: int, ttl_ms: int
    ) -> asyncio.Future[int]:
        """Queue a lease extension; the future gets the new expiry once it is durable."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._enqueue(Heartbeat(work_item_id, fence, now_ms, now_ms + ttl_ms, future))
        return future

    def grant(
        self,
        queue: str,
        owner: str,
        now_ms: int,
        ttl_ms: int,
        limit: int,
        exclude: tuple[str, ...] = (),
    ) -> asyncio.Future[list[WorkItemRow]]:
        """Queue a grant; the future gets the granted rows once they are durable."""
        future: asyncio.Future[list[WorkItemRow]] = asyncio.get_running_loop().create_future()
        self._enqueue(Grant(queue, owner, now_ms, ttl_ms, limit, future, exclude))
        return future

    @property
    def audit(self) -> bool:
        """Whether journal rows are chained (see ``tether.persistence.audit_chain``)."""
        return self._audit

    def take_heads(self) -> list[ChainHead]:
        """The chain heads committed since the last call (the first call starts the
        following: it returns nothing). For the audit signer, which signs them in batches."""
        heads = self._new_heads
        self._new_heads = {}
        return [] if heads is None else list(heads.values())

    async def close(self) -> None:
        """Finish everything queued so far, then stop the task.

        A writer that had already failed was reported when it failed (and its callers were
        answered); closing it must still let the store close its connections.
        """
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await self._task
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                    raise
                log.warning("journal writer for %s had stopped: %r", self._where, exc)

    async def abandon(self) -> None:
        """Stop where it is, as a killed process stops (crash tests): nothing queued is
        written and a batch in flight is not committed unless its commit had already reached
        the connection. Callers still waiting get StorageError."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # no raise: the caller may be cancelled itself

    def _enqueue(self, item: Queued) -> None:
        if self._closing:
            raise StoreClosed(f"{self._where}: store is closed")
        if self._failure is not None:
            raise StorageError(f"{self._where}: journal writer stopped: {self._failure}")
        self._pending.append(item)
        self._wakeup.set()

    # ----------------------------------------------------------------------------- the loop

    async def _run(self) -> None:
        batch: list[Queued] = []
        try:
            while self._pending or not self._closing:
                if not self._pending:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._process(batch)
                batch = []
        except BaseException as exc:
            # A bug or a cancellation (event loop shutting down without close()): never leave
            # a caller waiting forever, including those of the batch that was in flight.
            self._failure = repr(exc)
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("journal writer for %s stopped", self._where)
            stranded = [i for i in (*batch, *self._pending) if not i.future.done()]
            fail_all(stranded, f"{self._where}: journal writer stopped: {exc!r}")
            self._pending.clear()
            raise

    async def _process(self, batch: list[Queued]) -> None:
        # Skip callers that were cancelled before their item was picked up: not acknowledged,
        # not written.
        group: list[Grouped] = []
        reissues: list[Reissue] = []
        jobs: list[SubmittedJob] = []
        for item in batch:  # one pass: this runs for every batch of appends
            if isinstance(item, SubmittedJob):
                jobs.append(item)
            elif isinstance(item, Reissue):
                reissues.append(item)
            elif not item.future.done():
                group.append(item)
        if group:
            await self._commit_group(group, retry=True)
        live = [r for r in reissues if not r.future.done()]
        if live:
            await self._reissue_all(live)
        for job in jobs:
            if not job.future.done():
                await self._run_job(job)

    async def _commit_group(self, group: list[Grouped], retry: bool) -> None:
        """Check and commit ``group`` in one transaction. If that fails, with ``retry`` each
        item is tried again in its own transaction; without, the items fail."""
        appends: list[Append] = []
        beats: list[Heartbeat] = []
        grants: list[Grant] = []
        with_items: list[Turn] = []  # turns that create or settle work items (the rare kind)
        for g in group:
            if isinstance(g, Append):
                appends.append(g)
                if g.prepared.leases is not None:
                    with_items.append(g.prepared.turn)
            elif isinstance(g, Heartbeat):
                beats.append(g)
            else:
                grants.append(g)
        try:
            # The first try presumes new items absent; the one-by-one retry looks them up.
            await self._load_unknown(appends, with_items, beats, presume=retry)
        except Exception as exc:
            log.error("journal writer for %s: lookup failed: %s", self._where, exc)
            fail_all(group, f"{self._where}: cannot read sequences or fences: {exc}")
            return
        beats = self._check_heartbeats(beats)
        accepted, changes = self._validate(appends)
        if not (accepted or beats or grants):
            return
        try:
            # The whole group in one round trip to the connection's thread, its commit too.
            prepared = [a.prepared for a in accepted]
            statements = []
            if prepared:
                statements = ops.turn_statements(prepared, self._indexed, self._audit)
            if beats or grants or with_items:
                leases = self._lease_writes(prepared, beats, grants)
                write = functools.partial(
                    ops.write_group_and_commit, statements=statements, leases=leases
                )
                granted = await in_connection_thread(self._conn, write)
            else:  # the common batch: turns that touch no work item
                execute = functools.partial(ops.execute_and_commit, statements=statements)
                await in_connection_thread(self._conn, execute)
                granted = []
        except Exception as exc:
            await self._rollback()
            tried: list[Grouped] = [*beats, *accepted, *grants]  # the batch's order
            if isinstance(exc, ops.FenceMismatch):
                # The table is the truth: reload these items before anything else uses them.
                self._fences.forget(changes)
                self._fences.forget(b.work_item_id for b in beats)
            if retry:
                log.warning(
                    "journal writer for %s: batch of %d failed (%s); retrying one by one",
                    self._where, len(tried), exc,
                )  # fmt: skip
                for one in tried:
                    await self._commit_group([one], retry=False)
                return
            for one in tried:
                log.error("journal writer for %s: %s failed: %s", self._where, describe(one), exc)
                fail(one, storage_error(self._where, one, exc))
            return
        self._acknowledge(accepted, changes, beats, grants, granted)

    async def _load_unknown(
        self,
        appends: list[Append],
        with_items: list[Turn],
        beats: list[Heartbeat],
        presume: bool,
    ) -> None:
        unknown = {
            eid for a in appends if (eid := a.prepared.turn.execution_id) not in self._last_seq
        }
        if unknown:
            found = await ops.last_seqs(self._conn, unknown, chained=self._audit)
            for eid, (last, indexed, link) in found.items():
                self._last_seq[eid] = last
                self._last_link[eid] = link
                if indexed:
                    self._indexed.add(eid)
        if with_items or beats:
            ids = self._fences.unknown(
                with_items, (b.work_item_id for b in beats), presume_created=presume
            )
            if ids:
                self._fences.remember(ids, await lease_ops.item_states(self._conn, ids))

    def _check_heartbeats(self, beats: list[Heartbeat]) -> list[Heartbeat]:
        problems = [self._fences.check_heartbeat(b.work_item_id, b.fence) for b in beats]
        for beat, problem in zip(beats, problems, strict=True):
            if problem is not None:
                fail(beat, problem)
        return [beat for beat, problem in zip(beats, problems, strict=True) if problem is None]

    def _validate(self, appends: list[Append]) -> tuple[list[Append], dict[str, ItemState]]:
        """Accept turns whose expected_seq follows the last committed seq, or the last seq of
        a turn accepted earlier in this batch (``ahead``), and whose settles present current
        fences, as left by the turns accepted before it (``items``). So turns of a batch are
        checked against each other; the caches themselves move only after the commit."""
        ahead: dict[str, int] = {}
        links: dict[str, bytes] = {}  # the last link of each execution's turns accepted here
        items: dict[str, ItemState] = {}
        accepted: list[Append] = []
        audit = self._audit
        for item in appends:
            prepared = item.prepared
            turn = prepared.turn
            eid = turn.execution_id
            following = ahead.get(eid, self._last_seq[eid]) + 1
            if turn.expected_seq != following:
                fail(item, SequenceConflict(eid, turn.expected_seq, following))
                continue
            if prepared.leases is not None:
                changes = self._fences.check_turn(turn, items)
                if isinstance(changes, StorageError):
                    fail(item, changes)
                    continue
                items.update(changes)
            ahead[eid] = prepared.last_seq
            if audit:
                # Linked here, not in prepare(): only the writer knows the previous link.
                # A retried batch links again from the committed links (the caches move
                # only after a commit), so a rolled-back link is never built on.
                link = links.get(eid) or self._last_link.get(eid) or genesis(eid)
                for row in prepared.journal:
                    link = chain_link(link, row[1], row[2], row[3])
                    row[5] = blob(link)
                links[eid] = prepared.last_link = link
            accepted.append(item)
        return accepted, items

    def _lease_writes(
        self, prepared: list[ops.PreparedTurn], beats: list[Heartbeat], grants: list[Grant]
    ) -> ops.LeaseWrites:
        """The group's work-item writes; the new items counted on the loop (the fence book
        is the writer's, never touched from the connection's thread)."""
        new_items = None
        if prepared:
            new_items = self._fences.absent_count(
                w.work_item_id for p in prepared for w in p.turn.work_items
            )
        return ops.lease_writes(
            prepared,
            [(b.expires_ms, b.now_ms, b.work_item_id, b.fence) for b in beats],
            new_items,
            [(g.queue, g.owner, g.now_ms, g.ttl_ms, g.limit, g.exclude) for g in grants],
        )

    def _acknowledge(
        self,
        accepted: list[Append],
        changes: dict[str, ItemState],
        beats: list[Heartbeat],
        grants: list[Grant],
        granted: list[list[WorkItemRow]],
    ) -> None:
        """After a commit: advance the caches, then wake the callers."""
        stats = self.stats
        stats.commits += 1
        if changes:
            self._fences.commit(changes)
        for item in accepted:
            turn = item.prepared.turn
            last = item.prepared.last_seq
            eid = turn.execution_id
            self._last_seq[eid] = last
            if self._audit:
                link = item.prepared.last_link
                assert link is not None  # linked by _validate when the audit log is on
                self._last_link[eid] = link
                if self._new_heads is not None:
                    self._new_heads[eid] = ChainHead(eid, last, link)
            if turn.index is not None:
                self._indexed.add(eid)
                if turn.index.status in TERMINAL_STATUSES:
                    # Bound the cache: a finished execution rarely gets appends; reload if so.
                    del self._last_seq[eid]
                    self._last_link.pop(eid, None)
                    self._indexed.discard(eid)
            stats.rows += len(turn.records)
            if not item.future.done():
                item.future.set_result(last)
        stats.turns += len(accepted)
        for beat in beats:
            if not beat.future.done():
                beat.future.set_result(beat.expires_ms)
        stats.heartbeats += len(beats)
        for grant, rows in zip(grants, granted, strict=True):
            self._fences.granted(rows)
            stats.leases += len(rows)
            if not grant.future.done():
                # A grant whose caller went away still committed: its leases expire and are
                # reclaimed like those of a crashed worker.
                grant.future.set_result(rows)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
