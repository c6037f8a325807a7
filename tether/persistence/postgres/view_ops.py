"""The run views on Postgres (see :mod:`tether.persistence.views`): the feed rows a turn
writes, the projection step (a job of the writer) and the pages and counts read from the
views.

Postgres commits transactions in any order, and a feed row's ``pos`` is taken when it is
inserted: left alone, a transaction holding pos 5 could commit after one holding pos 6 was
read, and a projector that had moved past 6 would never see 5. So a transaction that writes
feed rows first takes a transaction-level advisory lock (one per schema), held until it
commits: feed rows are written by one transaction at a time, each visible before the next
one takes its positions, and reading ``pos > position`` in order never skips a row. (The lock
is taken only by the turns that change a status, a few per run; with one engine per schema it
is never contended.) The position row, locked ``FOR UPDATE``, makes projections run one at a
time: two would both apply the same rows to the counters.

Example::

    applied = await project(conn, limit=1000)      # in the writer's job transaction
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from tether.persistence.contract import ExecutionRow
from tether.persistence.page_sql import VIEW_COLUMNS, Dialect, execution_where, keyset
from tether.persistence.pages import ExecutionQuery, PagePosition
from tether.persistence.postgres.connection import Conn
from tether.persistence.postgres.execution_reads import _execution
from tether.persistence.views import count_moves, edge_query, split_window

_VIEW = Dialect("%s", "v.", "ILIKE")


#: The feed lock's first key (the writer lock's is 0x7E7E_0001; the second is the schema's).
_FEED_LOCK_CLASS = 0x7E7E_0002


async def append_feed(conn: Conn, rows: Sequence[tuple[str, int]]) -> None:
    """In a turn's transaction: ``(execution_id, seq)`` of each status change it commits,
    after the feed lock (see the module docstring)."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(current_schema()))", (_FEED_LOCK_CLASS,)
        )
        await cur.executemany(
            "INSERT INTO tether_view_feed (execution_id, seq) VALUES (%s, %s)", rows
        )


async def project(conn: Conn, limit: int) -> int:
    """Apply up to ``limit`` feed rows past the persisted position; return how many."""
    cur = await conn.execute("SELECT pos FROM tether_view_position FOR UPDATE")
    row = await cur.fetchone()
    assert row is not None  # the migration wrote it
    cur = await conn.execute(
        "SELECT pos, execution_id FROM tether_view_feed WHERE pos > %s ORDER BY pos LIMIT %s",
        (row[0], limit),
    )
    feed = await cur.fetchall()
    if not feed:
        return 0
    ids = list(dict.fromkeys(eid for _, eid in feed))
    old = await _rows(conn, "tether_run_views", ids)
    new = await _rows(conn, "tether_executions", ids)
    moves = count_moves(_keys(old.values()), _keys(new.values()))
    async with conn.cursor() as c:
        if new:
            await c.executemany(
                f"INSERT INTO tether_run_views ({VIEW_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (execution_id) DO UPDATE SET"
                " workflow_id = excluded.workflow_id,"
                " workflow_version = excluded.workflow_version, status = excluded.status,"
                " created_at_ms = excluded.created_at_ms,"
                " updated_at_ms = excluded.updated_at_ms, error = excluded.error",
                [tuple(r) for r in new.values()],
            )
        gone = [(eid,) for eid in old if eid not in new]
        if gone:
            await c.executemany("DELETE FROM tether_run_views WHERE execution_id = %s", gone)
        if moves:
            await c.executemany(
                "INSERT INTO tether_run_counts (hour_ms, workflow_id, status, n)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (hour_ms, workflow_id, status)"
                " DO UPDATE SET n = tether_run_counts.n + excluded.n",
                [(*key, n) for key, n in moves.items()],
            )
            emptied = [key for key, n in moves.items() if n < 0]
            if emptied:  # a counter down to nothing goes: the table stays small
                await c.executemany(
                    "DELETE FROM tether_run_counts WHERE hour_ms = %s AND workflow_id = %s"
                    " AND status = %s AND n = 0",
                    emptied,
                )
    last = feed[-1][0]
    await conn.execute("UPDATE tether_view_position SET pos = %s", (last,))
    # Read rows are done with: every row still to come has a greater position.
    await conn.execute("DELETE FROM tether_view_feed WHERE pos <= %s", (last,))
    return len(feed)


async def _rows(conn: Conn, table: str, ids: list[str]) -> dict[str, Sequence[Any]]:
    cur = await conn.execute(
        f"SELECT {VIEW_COLUMNS} FROM {table} WHERE execution_id = ANY(%s)", (ids,)
    )
    return {r[0]: r for r in await cur.fetchall()}


def _keys(rows: Iterable[Sequence[Any]]) -> list[tuple[int, str, str]]:
    return [(r[4], r[1], r[3]) for r in rows]


async def views_behind(conn: Conn) -> int:
    """Feed rows past the projector's position (visible to this reader)."""
    cur = await conn.execute(
        "SELECT COUNT(*) FROM tether_view_feed WHERE pos > (SELECT pos FROM tether_view_position)"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


# The view's columns, and the index row's last_seq and passive mark as they are now.
_PAGE_COLS = (
    "v.execution_id, v.workflow_id, v.workflow_version, v.status, v.created_at_ms,"
    " v.updated_at_ms, e.last_seq, v.error, coalesce(e.passive_seq = e.last_seq, false),"
    " CASE WHEN e.passive_seq = e.last_seq THEN e.wake_at_ms END"
)


async def page_executions(
    conn: Conn,
    query: ExecutionQuery,
    after: PagePosition | None,
    limit: int,
    oldest_first: bool,
) -> list[ExecutionRow]:
    where, params = execution_where(query, _VIEW, with_status=True)
    more, more_params, order = keyset("execution_id", after, oldest_first, _VIEW)
    clause = " AND ".join(where + more)
    cur = await conn.execute(
        f"SELECT {_PAGE_COLS} FROM tether_run_views AS v"
        " JOIN tether_executions AS e ON e.execution_id = v.execution_id"
        f" {'WHERE ' + clause if clause else ''}{order} LIMIT %s",
        (*params, *more_params, limit),
    )
    return [_execution(r) for r in await cur.fetchall()]


async def count_executions(conn: Conn, query: ExecutionQuery) -> dict[str, int]:
    """Per status: whole hours from the counters, the ragged ends (and any search by id)
    from the view's rows."""
    if query.id_contains is not None:
        where, params = execution_where(query, _VIEW, with_status=False)
        return await _grouped(conn, "tether_run_views AS v", where, params, "COUNT(*)")
    window = split_window(query.created_from_ms, query.created_before_ms)
    totals: Counter[str] = Counter()
    if window.has_full:
        where, params = [], []
        for column, op, value in (("v.workflow_id", "=", query.workflow_id),
                                  ("v.hour_ms", ">=", window.full_from),
                                  ("v.hour_ms", "<", window.full_before)):  # fmt: skip
            if value is not None:
                where.append(f"{column} {op} %s")
                params.append(value)
        totals.update(await _grouped(conn, "tether_run_counts AS v", where, params, "SUM(n)"))
    for lo, hi in window.edges:
        where, params = execution_where(edge_query(query, lo, hi), _VIEW, with_status=False)
        totals.update(await _grouped(conn, "tether_run_views AS v", where, params, "COUNT(*)"))
    return {status: n for status, n in totals.items() if n}


async def _grouped(
    conn: Conn, table: str, where: list[str], params: list[Any], agg: str
) -> dict[str, int]:
    clause = " AND ".join(where)
    cur = await conn.execute(
        f"SELECT v.status, {agg} FROM {table} {'WHERE ' + clause if clause else ''}"
        " GROUP BY v.status",
        params,
    )
    return {str(status): int(n) for status, n in await cur.fetchall() if n}
