"""Cross-run reads that are complete: filters, and keyset pages that never skip or repeat.

An offset page shifts when rows are added before it (a new run starts while someone pages
through the list) and costs a scan of everything it skips; a keyset page starts strictly after
the last row the previous page returned, ``(created_at_ms, id)``, so paging from the first
page to the last visits every row that existed throughout exactly once, however many arrive
meanwhile, and each page is one index range scan. Every backend keeps these semantics; what
they share (the filter's meaning, the ``LIKE`` escaping) lives here.

Example::

    query = ExecutionQuery(status="paused", workflow_id="pay")
    page = await store.page_executions(query, limit=100)
    while page:
        ...
        page = await store.page_executions(query, after=position_of(page[-1]), limit=100)
"""

from __future__ import annotations

from typing import Final

import msgspec

from tether.persistence.contract import ExecutionRow, WorkItemRow

#: Work-item statuses whose counts per queue are a queue's depth (and its dead letters).
QUEUE_DEPTH_STATUSES: Final = ("pending", "leased", "parked", "dead")


class ExecutionQuery(msgspec.Struct, frozen=True, gc=False):
    """Which executions a cross-run read returns; every field left None matches all.

    ``id_contains`` matches anywhere in the execution id, ignoring the case of ASCII letters
    (ids are ULIDs in capitals; people type them in either case). ``created_from_ms`` is
    inclusive and ``created_before_ms`` exclusive, so adjacent windows never share a run.
    """

    status: str | None = None
    workflow_id: str | None = None
    id_contains: str | None = None
    created_from_ms: int | None = None
    created_before_ms: int | None = None


class WorkItemQuery(msgspec.Struct, frozen=True, gc=False):
    """Which work items a cross-run read returns (``status="dead"``: the dead letters)."""

    status: str | None = None
    queue: str | None = None
    execution_id: str | None = None


class PagePosition(msgspec.Struct, frozen=True, gc=False):
    """Where a keyset page ends: the ``created_at_ms`` and id of its last row. The next page
    starts strictly after it in the listing's order."""

    created_at_ms: int
    id: str


def position_of(row: ExecutionRow | WorkItemRow) -> PagePosition:
    """The position just after ``row``: give it as ``after`` to read the next page."""
    if isinstance(row, ExecutionRow):
        return PagePosition(row.created_at_ms, row.execution_id)
    return PagePosition(row.created_at_ms, row.work_item_id)


def like_pattern(text: str) -> str:
    """``%text%`` for SQL ``LIKE ... ESCAPE '\\'``, with the wildcards in ``text`` taken as
    themselves (an id searched for ``a_b`` must not match ``axb``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def ascii_lower(text: str) -> str:
    """Lower case for ASCII letters only: what SQLite's ``LIKE`` ignores, and no more."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def execution_matches(query: ExecutionQuery, row: ExecutionRow, *, with_status: bool) -> bool:
    """Whether ``row`` is one ``query`` asks for (the memory backend's filter, and the one the
    SQL backends' ``WHERE`` clauses spell out); ``with_status=False`` leaves the status filter
    out (counts per status)."""
    q = query
    return (
        (not with_status or q.status is None or row.status == q.status)
        and (q.workflow_id is None or row.workflow_id == q.workflow_id)
        and (q.id_contains is None or ascii_lower(q.id_contains) in ascii_lower(row.execution_id))
        and (q.created_from_ms is None or row.created_at_ms >= q.created_from_ms)
        and (q.created_before_ms is None or row.created_at_ms < q.created_before_ms)
    )


def work_item_matches(query: WorkItemQuery, row: WorkItemRow) -> bool:
    """Whether ``row`` is one ``query`` asks for."""
    return (
        (query.status is None or row.status == query.status)
        and (query.queue is None or row.queue == query.queue)
        and (query.execution_id is None or row.execution_id == query.execution_id)
    )


def is_after(
    position: PagePosition | None, created_at_ms: int, row_id: str, *, oldest_first: bool
) -> bool:
    """Whether a row keyed ``(created_at_ms, row_id)`` comes after ``position`` in a listing
    newest first (or oldest first)."""
    if position is None:
        return True
    key, mark = (created_at_ms, row_id), (position.created_at_ms, position.id)
    return key > mark if oldest_first else key < mark
