"""The journal writer's transactions of their own, besides the group commit: submitted jobs
(one transaction each: the registry, schedules, artifacts, lease releases...) and recovery's
reissued work items (all of a batch in one), with the rollback they and the group share.

Apart from :mod:`tether.persistence.sqlite.writer` (the loop and its group commit) because
none of this is on the append path: ``GroupCommitWriter`` runs these after a batch's group,
through the methods it inherits from ``WriterJobs``, and queues them in its own ``_enqueue``.

Example::

    row = await writer.submit(functools.partial(schedule_ops.get_schedule, schedule_id="x"))
    inserted = await writer.reissue(rows)    # pending rows for hand-outs without one
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Sequence
from typing import Any

import aiosqlite

from tether.persistence.contract import StorageError, WorkItemRow
from tether.persistence.sqlite import lease_ops
from tether.persistence.sqlite.fences import FenceBook
from tether.persistence.sqlite.writer_queue import Job, Queued, Reissue, SubmittedJob
from tether.persistence.write_requests import fail, fail_all, job_error

# The writer's logger: these are its messages, wherever the code sits.
log = logging.getLogger("tether.persistence.sqlite.writer")


class WriterJobs:
    """The jobs and reissues of a ``GroupCommitWriter``; see the module docstring."""

    _conn: aiosqlite.Connection
    _where: str
    _fences: FenceBook

    def _enqueue(self, item: Queued) -> None:
        raise NotImplementedError  # GroupCommitWriter's: the one queue every write waits in

    async def release(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        """Leases of ``owner`` back to pending, in a transaction of their own."""
        rows: list[WorkItemRow] = await self.submit(
            lambda conn: lease_ops.release_leases(conn, owner, now_ms)
        )
        # Released after the book may have loaded them: reload on next use.
        self._fences.forget(r.work_item_id for r in rows)
        return rows

    def reissue(self, rows: Sequence[WorkItemRow]) -> asyncio.Future[int]:
        """Queue rows to insert where their ids are absent; the future gets how many went in.
        The reissues of one batch share a commit: a restart reissues for every execution at
        once, and a transaction each cost a commit per execution."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        params = [lease_ops.insert_params(r) for r in rows]
        self._enqueue(Reissue([r.work_item_id for r in rows], params, future))
        return future

    async def submit(self, job: Job) -> Any:
        """Run ``job`` in its own transaction on the writer connection; return its result."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(SubmittedJob(job, future))
        return await future

    async def _run_job(self, item: SubmittedJob) -> None:
        try:
            result = await item.job(self._conn)
            await self._conn.commit()
        except Exception as exc:
            await self._rollback()
            if not isinstance(exc, StorageError):
                log.error("journal writer for %s: write failed: %s", self._where, exc)
            fail(item, job_error(self._where, exc))
            return
        if not item.future.done():
            item.future.set_result(result)

    async def _reissue_all(self, reissues: list[Reissue], retry: bool = True) -> None:
        """All of a batch's reissues in one transaction and three awaits (a restart reissues
        for every execution at once, and an await per execution held the grants behind it);
        if that fails, each in its own transaction, so only a bad one fails."""
        ids = [wid for r in reissues for wid in r.work_item_ids]
        try:
            self._fences.forget(ids)  # between batches: the book reloads these on next use
            existing = await lease_ops.item_states(self._conn, ids)
            counts = _new_counts(reissues, existing.keys())
            params = [p for r in reissues for p in r.params]
            inserted = await lease_ops.insert_work_items(self._conn, params)
            if inserted != sum(counts):  # only if this were not the one writer
                raise StorageError(f"{sum(counts)} work items were to be new, {inserted} were")
            await self._conn.commit()
        except Exception as exc:
            await self._rollback()
            if retry and len(reissues) > 1:
                for one in reissues:
                    await self._reissue_all([one], retry=False)
                return
            log.error("journal writer for %s: reissue failed: %s", self._where, exc)
            fail_all(reissues, f"{self._where}: reissuing work items failed: {exc}")
            return
        for r, n in zip(reissues, counts, strict=True):
            if not r.future.done():
                r.future.set_result(n)

    async def _rollback(self) -> None:
        try:
            await self._conn.rollback()
        except Exception:
            log.exception("journal writer for %s: rollback failed", self._where)


def _new_counts(reissues: list[Reissue], existing: Container[str]) -> list[int]:
    """How many of each reissue's ids the insert adds: absent ones, each id once per batch."""
    seen: set[str] = set()
    counts = []
    for r in reissues:
        fresh = {wid for wid in r.work_item_ids if wid not in existing and wid not in seen}
        seen.update(fresh)
        counts.append(len(fresh))
    return counts
