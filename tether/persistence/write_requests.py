"""What both journal writers (SQLite's and Postgres's) queue besides their appends: lease
heartbeats and grants, each with the future its caller awaits, and how a caller is answered
when its write fails.

One module for both backends: the writers group and commit these the same way, and only
their appends (each backend's prepared turn) and their jobs (each backend's connection) differ.

Example::

    pending.append(Heartbeat(work_item_id, fence, now_ms, now_ms + ttl_ms, future))
    ...
    fail(item, StorageError("..."))   # unless its caller was answered already
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from tether.persistence.contract import StorageError, Turn, WorkItemRow
from tether.persistence.storage_faults import storage_unavailable


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


class _Prepared(Protocol):
    @property
    def turn(self) -> Turn: ...


class AppendRequest(Protocol):
    """A backend's queued append: its prepared turn and its caller's future."""

    @property
    def prepared(self) -> _Prepared: ...

    @property
    def future(self) -> asyncio.Future[int]: ...


class Answered(Protocol):
    """Anything queued with the future its caller awaits."""

    @property
    def future(self) -> asyncio.Future[Any]: ...


def describe(item: AppendRequest | Heartbeat | Grant) -> str:
    """The write, as a log line or an error names it."""
    if isinstance(item, Heartbeat):
        return f"heartbeat of work item {item.work_item_id} (fence {item.fence})"
    if isinstance(item, Grant):
        return f"grant on queue {item.queue} to {item.owner}"
    turn = item.prepared.turn
    return f"turn of execution {turn.execution_id} at seq {turn.expected_seq}"


def storage_error(
    where: str, item: AppendRequest | Heartbeat | Grant, exc: Exception
) -> StorageError:
    """The error a write's caller gets when its transaction failed with ``exc``."""
    message = f"{where}: {describe(item)} was not written: {exc}"
    return StorageError(message, transient=storage_unavailable(exc))


def job_error(where: str, exc: Exception) -> StorageError:
    """The error a submitted job's caller gets when its transaction failed with ``exc``: its
    own StorageError, or ``exc`` wrapped (transient when the storage was unavailable)."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(f"{where}: write failed: {exc}", transient=storage_unavailable(exc))


def fail(item: Answered, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)


def fail_all(items: Iterable[Answered], message: str) -> None:
    # A fresh exception per caller: one instance raised in many tasks tangles tracebacks.
    for item in items:
        fail(item, StorageError(message))
