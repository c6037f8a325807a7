"""What waits in the journal writer's queue: appends, heartbeats and grants (committed
together in a group), jobs and reissues (each in a transaction of their own), each with the
future its caller awaits (heartbeats, grants and how a caller is answered when its write fails
are both backends', from :mod:`tether.persistence.write_requests`).

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from tether.persistence.sqlite import ops
from tether.persistence.write_requests import Grant, Heartbeat

#: A write that is not an append (workflow registry, later leases...): runs alone in its own
#: transaction on the writer connection; its return value resolves the submitter's future.
Job = Callable[[aiosqlite.Connection], Awaitable[Any]]


@dataclass(slots=True)
class Append:
    prepared: ops.PreparedTurn
    future: asyncio.Future[int]


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
