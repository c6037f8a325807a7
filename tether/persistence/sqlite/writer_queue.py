"""What waits in the journal writer's queue: appends, heartbeats and grants (committed
together in a group), jobs and reissues (each in a transaction of their own), each with the
future its caller awaits; and how those callers are answered when their write fails.

Apart from :mod:`tether.persistence.sqlite.writer` (the loop that commits them) because they
are plain data and plain functions, read by the writer's loop and by its jobs
(:mod:`tether.persistence.sqlite.writer_jobs`) alike.

Example::

    future = loop.create_future()
    pending.append(Append(ops.prepare(turn), future))
    ...
    fail(item, SequenceConflict(eid, expected, following))   # unless already answered
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from tether.persistence.contract import StorageError, WorkItemRow
from tether.persistence.sqlite import ops
from tether.persistence.storage_faults import storage_unavailable

#: A write that is not an append (workflow registry, later leases...): runs alone in its own
#: transaction on the writer connection; its return value resolves the submitter's future.
Job = Callable[[aiosqlite.Connection], Awaitable[Any]]


@dataclass(slots=True)
class Append:
    prepared: ops.PreparedTurn
    future: asyncio.Future[int]


@dataclass(slots=True)
class Heartbeat:
    work_item_id: str
    fence: int
    now_ms: int
    expires_ms: int
    future: asyncio.Future[int]


@dataclass(slots=True)
class Grant:
    queue: str
    owner: str
    now_ms: int
    ttl_ms: int
    limit: int
    future: asyncio.Future[list[WorkItemRow]]
    exclude: tuple[str, ...] = ()


#: What commits together in one group transaction.
Grouped = Append | Heartbeat | Grant


@dataclass(slots=True)
class SubmittedJob:
    job: Job
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Reissue:
    """Pending rows for hand-outs without one (recovery); all of a batch in one commit."""

    work_item_ids: list[str]
    params: list[Any]
    future: asyncio.Future[int]


Queued = Grouped | SubmittedJob | Reissue


def describe(item: Grouped) -> str:
    if isinstance(item, Append):
        turn = item.prepared.turn
        return f"turn of execution {turn.execution_id} at seq {turn.expected_seq}"
    if isinstance(item, Heartbeat):
        return f"heartbeat of work item {item.work_item_id} (fence {item.fence})"
    return f"grant on queue {item.queue} to {item.owner}"


def storage_error(where: str, item: Grouped, exc: Exception) -> StorageError:
    message = f"{where}: {describe(item)} was not written: {exc}"
    return StorageError(message, transient=storage_unavailable(exc))


def fail(item: Queued, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)


def fail_all(items: Iterable[Queued], message: str) -> None:
    # A fresh exception per caller: one instance raised in many tasks tangles tracebacks.
    for item in items:
        fail(item, StorageError(message))
