"""The journal writer (I6): one task owning the one write connection, committing in groups.

Appends that arrive while a commit is in flight wait in ``_pending`` and go into the next
transaction together; each caller's future is resolved only after that transaction commits.
A batch costs a constant number of awaits: one lookup for executions not seen before, up to
four ``executemany`` calls and the commit.

Sequence checks happen here, in Python, against ``_last_seq``, the authoritative last seq of
each execution (authoritative because this is the only writer). A conflicting turn fails alone;
the rest of its batch commits. If the batch transaction fails anyway (a constraint, disk full),
it is rolled back and retried one turn per transaction so only the bad turn fails.

Example::

    writer = GroupCommitWriter(conn, where="runtime.db")
    writer.start()
    last = await writer.append(turn)      # a future
    await writer.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosqlite

from tether.persistence.contract import (
    TERMINAL_STATUSES,
    SequenceConflict,
    StorageError,
    StoreClosed,
    Turn,
)
from tether.persistence.sqlite import ops

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A write that is not an append (workflow registry, later leases...): runs alone in its own
#: transaction on the writer connection; its return value resolves the submitter's future.
Job = Callable[[aiosqlite.Connection], Awaitable[Any]]

#: Upper bound on turns per transaction, so one huge burst cannot make a commit unbounded.
MAX_BATCH = 4096


@dataclass
class WriterStats:
    """Counters for benchmarks and metrics."""

    commits: int = 0
    turns: int = 0
    rows: int = 0


@dataclass(slots=True)
class _Append:
    prepared: ops.PreparedTurn
    future: asyncio.Future[int]


@dataclass(slots=True)
class _Job:
    job: Job
    future: asyncio.Future[Any]


class GroupCommitWriter:
    """Owns ``conn`` for writing; see the module docstring."""

    def __init__(self, conn: aiosqlite.Connection, where: str) -> None:
        self._conn = conn
        self._where = where
        self._pending: list[_Append | _Job] = []
        self._wakeup = asyncio.Event()
        self._last_seq: dict[str, int] = {}
        self._indexed: set[str] = set()  # executions known to have an index row
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
        self._enqueue(_Append(ops.prepare(turn), future))
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
            await self._task

    def _enqueue(self, item: _Append | _Job) -> None:
        if self._closing:
            raise StoreClosed(f"{self._where}: store is closed")
        if self._failure is not None:
            raise StorageError(f"{self._where}: journal writer stopped: {self._failure}")
        self._pending.append(item)
        self._wakeup.set()

    # ----------------------------------------------------------------------------- the loop

    async def _run(self) -> None:
        try:
            while self._pending or not self._closing:
                if not self._pending:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._process(batch)
        except BaseException as exc:
            # A bug or a cancellation (event loop shutting down without close()): never leave
            # a caller waiting forever.
            self._failure = repr(exc)
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("journal writer for %s stopped", self._where)
            _fail_all(self._pending, f"{self._where}: journal writer stopped: {exc!r}")
            self._pending.clear()
            raise

    async def _process(self, batch: list[_Append | _Job]) -> None:
        # Skip callers that were cancelled before their turn was picked up: not acknowledged,
        # not written.
        appends = [a for a in batch if isinstance(a, _Append) and not a.future.done()]
        if appends:
            await self._commit_appends(appends)
        for item in batch:
            if isinstance(item, _Job) and not item.future.done():
                await self._run_job(item)

    async def _commit_appends(self, appends: list[_Append]) -> None:
        try:
            await self._load_unknown(a.prepared.turn.execution_id for a in appends)
        except Exception as exc:
            log.error("journal writer for %s: sequence lookup failed: %s", self._where, exc)
            _fail_all(appends, f"{self._where}: cannot read sequences: {exc}")
            return
        accepted = self._validate(appends)
        if not accepted:
            return
        try:
            await ops.write_turns(self._conn, [a.prepared for a in accepted], self._indexed)
            await self._conn.commit()
        except Exception as exc:
            log.warning(
                "journal writer for %s: batch of %d turns failed (%s); retrying one by one",
                self._where, len(accepted), exc,
            )  # fmt: skip
            await self._rollback()
            await self._one_by_one(accepted)
            return
        self._acknowledge(accepted)

    async def _load_unknown(self, execution_ids: Iterable[str]) -> None:
        unknown = {eid for eid in execution_ids if eid not in self._last_seq}
        if not unknown:
            return
        for eid, (last, indexed) in (await ops.last_seqs(self._conn, unknown)).items():
            self._last_seq[eid] = last
            if indexed:
                self._indexed.add(eid)

    def _validate(self, appends: list[_Append]) -> list[_Append]:
        """Accept turns whose expected_seq follows the last committed seq, or the last seq of
        a turn accepted earlier in this batch (``ahead``), so two turns of one execution in a
        batch are checked against each other. The cache itself moves only after the commit."""
        ahead: dict[str, int] = {}
        accepted: list[_Append] = []
        for item in appends:
            turn = item.prepared.turn
            eid = turn.execution_id
            following = ahead.get(eid, self._last_seq[eid]) + 1
            if turn.expected_seq != following:
                _fail(item, SequenceConflict(eid, turn.expected_seq, following))
                continue
            ahead[eid] = item.prepared.last_seq
            accepted.append(item)
        return accepted

    def _acknowledge(self, accepted: list[_Append]) -> None:
        """After a commit: advance the cache, then wake the callers."""
        stats = self.stats
        stats.commits += 1
        for item in accepted:
            turn = item.prepared.turn
            last = item.prepared.last_seq
            eid = turn.execution_id
            self._last_seq[eid] = last
            if turn.index is not None:
                self._indexed.add(eid)
                if turn.index.status in TERMINAL_STATUSES:
                    # Bound the cache: a finished execution rarely gets appends; reload if so.
                    del self._last_seq[eid]
                    self._indexed.discard(eid)
            stats.rows += len(turn.records)
            if not item.future.done():
                item.future.set_result(last)
        stats.turns += len(accepted)

    async def _one_by_one(self, accepted: list[_Append]) -> None:
        for item in accepted:
            turn = item.prepared.turn
            try:
                await self._load_unknown((turn.execution_id,))
            except Exception as exc:
                _fail(item, StorageError(f"{self._where}: cannot read sequences: {exc}"))
                continue
            # Re-check: an earlier turn of the same execution may just have failed.
            if not self._validate([item]):
                continue
            try:
                await ops.write_turns(self._conn, [item.prepared], self._indexed)
                await self._conn.commit()
            except Exception as exc:
                log.error(
                    "journal writer for %s: turn of %s at seq %d failed: %s",
                    self._where, turn.execution_id, turn.expected_seq, exc,
                )  # fmt: skip
                await self._rollback()
                _fail(item, _storage_error(self._where, turn, exc))
                continue
            self._acknowledge([item])

    async def _run_job(self, item: _Job) -> None:
        try:
            result = await item.job(self._conn)
            await self._conn.commit()
        except Exception as exc:
            await self._rollback()
            if not isinstance(exc, StorageError):
                log.error("journal writer for %s: write failed: %s", self._where, exc)
                exc = StorageError(f"{self._where}: write failed: {exc}")
            if not item.future.done():
                item.future.set_exception(exc)
            return
        if not item.future.done():
            item.future.set_result(result)

    async def _rollback(self) -> None:
        try:
            await self._conn.rollback()
        except Exception:
            log.exception("journal writer for %s: rollback failed", self._where)


def _storage_error(where: str, turn: Turn, exc: Exception) -> StorageError:
    return StorageError(
        f"{where}: execution {turn.execution_id}: turn at seq {turn.expected_seq} "
        f"was not written: {exc}"
    )


def _fail(item: _Append | _Job, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)


def _fail_all(items: Iterable[_Append | _Job], message: str) -> None:
    # A fresh exception per caller: one instance raised in many tasks tangles tracebacks.
    for item in items:
        _fail(item, StorageError(message))
