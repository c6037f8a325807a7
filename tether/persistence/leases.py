"""The work-item rules (I5) as pure functions, shared by the memory store and the SQLite
writer's in-memory checks, so both backends refuse exactly the same settles and heartbeats.

The SQLite statements in ``sqlite/lease_ops.py`` make the same changes to the table; these
functions are the specification they are tested against.

Example::

    problem = settle_problem(Settle("e/n/1", "completed", fence=3), ItemState("leased", 3))
    assert problem is None
    row = settled(row, Settle("e/n/1", "parked", fence=3, not_before_ms=5_000))
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from tether.persistence.contract import (
    OPEN_WORK_STATUSES,
    Lease,
    Settle,
    StaleFence,
    StorageError,
    UnknownWorkItem,
    WorkItemRow,
)


class ItemState(NamedTuple):
    """What a fence check needs to know about a row: its status and current fence."""

    status: str
    fence: int


def settle_problem(settle: Settle, state: ItemState | None) -> StorageError | None:
    """Why ``settle`` must be refused against a row in ``state`` (None: no such row), or None.

    A fenced settle needs the row leased with exactly that fence; a fence-less one needs any
    open row (pending, leased, parked).
    """
    if state is None:
        return UnknownWorkItem(settle.work_item_id)
    if settle.fence is None:
        if state.status in OPEN_WORK_STATUSES:
            return None
    elif state.status == "leased" and state.fence == settle.fence:
        return None
    return StaleFence(settle.work_item_id, settle.fence, state.fence, state.status)


def heartbeat_problem(
    work_item_id: str, fence: int, state: ItemState | None
) -> StorageError | None:
    """Why a heartbeat must be refused, or None. An expired lease still heartbeats: until it is
    settled (reclaimed) nobody else can hold the item, so extending it loses nothing."""
    if state is None:
        return UnknownWorkItem(work_item_id)
    if state.status == "leased" and state.fence == fence:
        return None
    return StaleFence(work_item_id, fence, state.fence, state.status)


def after_settle(settle: Settle, state: ItemState) -> ItemState:
    """The state a settle leaves (the fence never changes on a settle)."""
    return ItemState(settle.status, state.fence)


def settled(row: WorkItemRow, settle: Settle) -> WorkItemRow:
    """``row`` after an accepted ``settle``: lease cleared; parked also moves not_before_ms and
    counts a park (the attempt is not spent)."""
    parked = settle.status == "parked"
    return msgspec.structs.replace(
        row,
        status=settle.status,
        lease_owner=None,
        lease_expires_ms=None,
        not_before_ms=settle.not_before_ms if parked else row.not_before_ms,
        parks=row.parks + 1 if parked else row.parks,
        last_error=settle.error if settle.error is not None else row.last_error,
        updated_at_ms=max(row.updated_at_ms, settle.at_ms),
    )


def grantable(row: WorkItemRow, queue: str, now_ms: int) -> bool:
    return (
        row.queue == queue and row.status in ("pending", "parked") and row.not_before_ms <= now_ms
    )


def grant_order(row: WorkItemRow) -> tuple[int, int, str]:
    """Oldest first: due time, then creation, then id (a total order, so grants are stable)."""
    return (row.not_before_ms, row.created_at_ms, row.work_item_id)


def granted(row: WorkItemRow, owner: str, now_ms: int, ttl_ms: int) -> WorkItemRow:
    return msgspec.structs.replace(
        row,
        status="leased",
        lease_owner=owner,
        lease_expires_ms=now_ms + ttl_ms,
        fence=row.fence + 1,
        updated_at_ms=max(row.updated_at_ms, now_ms),
    )


def released(row: WorkItemRow, now_ms: int) -> WorkItemRow:
    """``row`` put back to pending: lease cleared, fence and attempt kept."""
    return msgspec.structs.replace(
        row,
        status="pending",
        lease_owner=None,
        lease_expires_ms=None,
        updated_at_ms=max(row.updated_at_ms, now_ms),
    )


def lease_of(row: WorkItemRow) -> Lease:
    """The Lease a granted row hands out."""
    assert row.lease_owner is not None and row.lease_expires_ms is not None
    return Lease(row.work_item_id, row.fence, row.lease_owner, row.lease_expires_ms, row)


def list_order(row: WorkItemRow) -> tuple[int, str]:
    """Listing order key (used descending: newest first, ids break ties so paging is stable)."""
    return (row.created_at_ms, row.work_item_id)
