"""Work items and their leases (I5) in a ``MemoryStore``: grants, heartbeats, releases,
reissues, and the reads of the work-item table.

They stand apart from the journal (:mod:`tether.persistence.memory`) because they are a
table of their own with rules of their own (fences that only grow, grant and list orders,
all in :mod:`tether.persistence.leases`, shared with the other backends); a turn that
creates or settles work items is the one place the two meet, and that stays with the journal.

Example::

    store = MemoryStore()
    await store.open()
    for lease in await store.grant("default", "worker-1", now_ms, 30_000, limit=8):
        await store.heartbeat(lease.work_item_id, lease.fence, now_ms, 30_000)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import msgspec
from anyio.lowlevel import checkpoint

from tether.persistence.checks import check_lease_args, check_reissued
from tether.persistence.contract import OPEN_WORK_STATUSES, Lease, WorkItemRow
from tether.persistence.leases import (
    ItemState,
    grant_order,
    grantable,
    granted,
    heartbeat_problem,
    lease_of,
    list_order,
    released,
)
from tether.persistence.memory_tables import MemoryTables
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    PagePosition,
    WorkItemQuery,
    is_after,
    work_item_matches,
)


class MemoryWorkItems(MemoryTables):
    """The work-item methods of the Store contract, on ``MemoryTables``."""

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
