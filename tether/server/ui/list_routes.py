"""Cross-run views over HTTP, complete and paged: runs (filters, search by id, counts per
status), pending approvals, work items (dead letters), queue depths, one run's timeline, and
who the caller is. What the dashboard reads; plain JSON for anyone else.

Every list is a keyset page (:mod:`tether.persistence.pages`): pass the ``next_cursor`` of a
page as ``cursor`` for the next one; ``next_cursor`` is null after the last. Nothing is capped
silently. Times in filters are RFC 3339 (``2026-12-07T09:00:00Z``; without an offset, UTC).
A bad parameter is a 422 naming it.

Example::

    GET /views/executions?status=paused&q=01J&limit=50
    -> {"executions": [...], "next_cursor": "WzE3N..."}
    GET /views/executions?status=paused&q=01J&limit=50&cursor=WzE3N...
    GET /views/execution-counts -> {"counts": {"running": 3, "paused": 1, ...}, "total": 9}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from litestar import Request, get
from litestar.params import FromPath, FromQuery

from tether.clock import now_ms
from tether.errors import InvalidInput
from tether.persistence.contract import (
    EXECUTION_STATUSES,
    OPEN_WORK_STATUSES,
    TERMINAL_STATUSES,
    TERMINAL_WORK_STATUSES,
    WorkItemRow,
)
from tether.persistence.pages import (
    QUEUE_DEPTH_STATUSES,
    ExecutionQuery,
    WorkItemQuery,
    position_of,
)
from tether.runtime.records import NodeScheduled
from tether.runtime.runtime import Runtime
from tether.server.api_keys import ApiKeys
from tether.server.auth import authenticated_caller
from tether.server.ui.cursors import decode_cursor, encode_cursor
from tether.server.ui.timeline import timeline, timeline_view
from tether.server.views import execution_view, iso

#: The most rows one page may ask for.
MAX_PAGE: Final = 500
#: The longest id search: longer than any id, short enough to cost nothing.
MAX_SEARCH: Final = 200
_WORK_STATUSES: Final = tuple(sorted(OPEN_WORK_STATUSES | TERMINAL_WORK_STATUSES))


def _rt(request: Request[Any, Any, Any]) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _limit(limit: int, name: str = "limit") -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"{name} must be 1-{MAX_PAGE}, got {limit}")
    return limit


def _time(name: str, value: str | None) -> int | None:
    """An RFC 3339 time as epoch ms (no offset: UTC)."""
    if value is None or value == "":
        return None
    try:
        at = datetime.fromisoformat(value[:64])
    except ValueError:
        raise InvalidInput(
            f"{name} must be an RFC 3339 time such as 2026-12-07T09:00:00Z, got {value[:64]!r}"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def _query(
    status: str | None, workflow_id: str | None, q: str | None, since: str | None,
    until: str | None,
) -> ExecutionQuery:  # fmt: skip
    if status is not None and status not in EXECUTION_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(EXECUTION_STATUSES)}, got {status!r}")
    if q is not None and len(q) > MAX_SEARCH:
        raise InvalidInput(f"q (an id search) must be at most {MAX_SEARCH} characters")
    return ExecutionQuery(
        status=status or None,
        workflow_id=workflow_id or None,
        id_contains=q or None,
        created_from_ms=_time("since", since),
        created_before_ms=_time("until", until),
    )


@get("/views/executions")
async def list_runs(
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    workflow_id: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Runs newest first, filtered: ``status``, ``workflow_id``, ``q`` (part of the id, any
    case), ``since``/``until`` (start time, RFC 3339; ``until`` excluded)."""
    rt = _rt(request)
    query = _query(status, workflow_id, q, since, until)
    await rt.views_caught_up()  # what the journal holds now (see rt.views_caught_up)
    rows = await rt.store.page_executions(query, decode_cursor(cursor), _limit(limit) + 1)
    page, more = rows[:limit], len(rows) > limit
    now = now_ms(rt.clock)
    runs = []
    for row in page:
        view = execution_view(row, None)
        ended = row.status in TERMINAL_STATUSES
        view["duration_ms"] = (row.updated_at_ms if ended else now) - row.created_at_ms
        view["passivated"] = row.passivated
        runs.append(view)
    next_cursor = encode_cursor(position_of(page[-1])) if more else None
    return {"executions": runs, "next_cursor": next_cursor, "now": iso(now)}


@get("/views/execution-counts")
async def count_runs(
    request: Request[Any, Any, Any],
    workflow_id: FromQuery[str | None] = None,
    q: FromQuery[str | None] = None,
    since: FromQuery[str | None] = None,
    until: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """How many runs the filters match, per status (every status, zeros included)."""
    query = _query(None, workflow_id, q, since, until)
    rt = _rt(request)
    await rt.views_caught_up()
    found = await rt.store.count_executions(query)
    counts = {status: found.get(status, 0) for status in EXECUTION_STATUSES}
    return {"counts": counts, "total": sum(counts.values())}


@get("/views/approvals")
async def list_approvals(
    request: Request[Any, Any, Any],
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """The decisions paused runs wait for: ``limit`` runs a page, oldest run first."""
    page = await _rt(request).pending_approvals_page(decode_cursor(cursor), _limit(limit))
    approvals = [
        {"execution_id": p.execution_id, "node_id": p.node_id, "description": p.description,
         "requested_at": iso(p.requested_at_ms), "timeout_at": iso(p.timeout_at_ms)}
        for p in page.approvals
    ]  # fmt: skip
    return {"approvals": approvals, "next_cursor": encode_cursor(page.next)}


@get("/views/work-items")
async def list_work_items(
    request: Request[Any, Any, Any],
    status: FromQuery[str | None] = None,
    queue: FromQuery[str | None] = None,
    execution_id: FromQuery[str | None] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> dict[str, Any]:
    """Work items newest first (``status=dead``: the dead letters). A dead item says
    ``fork_at_seq``: the last record before its node's first attempt, where a fork of its run
    (``POST /executions/{id}/fork``) runs that node again with all its attempts."""
    if status is not None and status not in _WORK_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(_WORK_STATUSES)}, got {status!r}")
    rt = _rt(request)
    query = WorkItemQuery(status=status or None, queue=queue or None,
                          execution_id=execution_id or None)  # fmt: skip
    rows = await rt.store.page_work_items(query, decode_cursor(cursor), _limit(limit) + 1)
    page, more = rows[:limit], len(rows) > limit
    items = [await _work_item_view(rt, row) for row in page]
    next_cursor = encode_cursor(position_of(page[-1])) if more else None
    return {"work_items": items, "next_cursor": next_cursor}


async def _work_item_view(rt: Runtime, row: WorkItemRow) -> dict[str, Any]:
    view: dict[str, Any] = {
        "work_item_id": row.work_item_id, "execution_id": row.execution_id,
        "node_id": row.node_id, "queue": row.queue, "status": row.status,
        "attempt": row.attempt, "dispatch": row.dispatch, "fence": row.fence,
        "parks": row.parks, "lease_owner": row.lease_owner,
        "lease_expires_at": iso(row.lease_expires_ms), "last_error": row.last_error,
        "created_at": iso(row.created_at_ms), "updated_at": iso(row.updated_at_ms),
    }  # fmt: skip
    if row.status == "dead":
        view["fork_at_seq"] = await _before_hand_out(rt, row)
    return view


async def _before_hand_out(rt: Runtime, row: WorkItemRow) -> int | None:
    """The seq just before the node's first attempt of the run that ended in ``row`` (each
    attempt is a hand-out of its own: a fork there starts the node with every attempt)."""
    first: int | None = None
    for entry in await rt.journal(row.execution_id):
        r = entry.record
        if isinstance(r, NodeScheduled) and r.node_id == row.node_id:
            if r.attempt == 1:
                first = entry.seq
            if r.dispatch == row.dispatch:
                break
    return first - 1 if first is not None and first > 1 else None


@get("/views/queues")
async def list_queues(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Each queue's items pending, leased, parked and dead (rows in the store: an in-process
    step the engine runs at once has none until it settles), and the connected workers."""
    rt = _rt(request)
    counts = await rt.store.count_work_items()
    names = sorted({queue for queue, _ in counts})
    queues = [
        {"queue": name, **{s: counts.get((name, s), 0) for s in QUEUE_DEPTH_STATUSES}}
        for name in names
    ]
    return {"queues": queues, "workers": rt.workers()}


@get("/views/executions/{execution_id:str}/timeline")
async def run_timeline(
    request: Request[Any, Any, Any], execution_id: FromPath[str]
) -> dict[str, Any]:
    """One bar per node attempt and per wait (:mod:`tether.server.ui.timeline`)."""
    rt = _rt(request)
    entries = await rt.journal(execution_id)  # 404 for an unknown id
    return {
        "execution_id": execution_id,
        "rows": timeline_view(timeline(entries)),
        "now": iso(now_ms(rt.clock)),
        "last_seq": entries[-1].seq if entries else 0,
    }


@get("/whoami")
async def whoami(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Who the caller's token stands for: a named token's user and roles, else nobody in
    particular (the shared token, or none when the engine needs none)."""
    keys: ApiKeys = request.app.state.api_keys
    caller = authenticated_caller(keys, request)
    if caller is None:
        return {"user_id": None, "roles": [], "token_required": keys.required}
    return {"user_id": caller.user_id, "roles": list(caller.roles), "token_required": True}


ROUTES = [list_runs, count_runs, list_approvals, list_work_items, list_queues, run_timeline,
          whoami]  # fmt: skip
