"""SQL that reads journals, snapshots and the execution index, one function each, taking the
connection (a reader in autocommit mode: each statement sees one consistent snapshot).

Every row read is verified (I7): checksums, sequence gaps, a missing tail against the index's
``last_seq``, read in the same statement as the rows so the two agree.

Example::

    records = await read_journal(conn, "exec_1", from_seq=1)   # JournalCorruption if bad
    loaded = await load_executions(conn, ["exec_1", "exec_2"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.persistence.contract import (
    TERMINAL_STATUSES,
    ExecutionRow,
    JournalCorruption,
    LoadedExecution,
    Snapshot,
    SnapshotCorruption,
    StoredRecord,
)
from tether.persistence.integrity import verify_journal, verify_snapshot
from tether.persistence.postgres.connection import Conn

# The passive mark counts only while no later turn moved last_seq past it.
_EXEC_COLS = (
    "e.execution_id, e.workflow_id, e.workflow_version, e.status, e.created_at_ms,"
    " e.updated_at_ms, e.last_seq, e.error, coalesce(e.passive_seq = e.last_seq, false),"
    " CASE WHEN e.passive_seq = e.last_seq THEN e.wake_at_ms END"
)
_NOT_PASSIVE = "(e.passive_seq IS NULL OR e.passive_seq <> e.last_seq)"


def _execution(row: Sequence[Any]) -> ExecutionRow:
    eid, wf, version, status, created, updated, last_seq, error, passive, wake = row
    return ExecutionRow(eid, wf, version, status, created, updated, last_seq, error,
                        bool(passive), wake)  # fmt: skip


async def read_journal(conn: Conn, execution_id: str, from_seq: int) -> list[StoredRecord]:
    """Verified records from ``from_seq`` on. The index's last_seq comes in the same
    statement (one row with NULL record columns when there are no records)."""
    cur = await conn.execute(
        "SELECT x.last_seq, j.seq, j.type, j.payload, j.checksum FROM (SELECT"
        " (SELECT last_seq FROM tether_executions WHERE execution_id = %(e)s) AS last_seq) x"
        " LEFT JOIN tether_journal AS j ON j.execution_id = %(e)s AND j.seq >= %(f)s"
        " ORDER BY j.seq",
        {"e": execution_id, "f": from_seq},
    )
    rows = await cur.fetchall()
    last = rows[0][0] if rows else None
    records = [r[1:] for r in rows if r[1] is not None]
    return verify_journal(execution_id, from_seq, records, last)


async def latest_snapshot(conn: Conn, execution_id: str) -> Snapshot | None:
    cur = await conn.execute(
        "SELECT seq, payload, checksum FROM tether_snapshots WHERE execution_id = %s"
        " ORDER BY seq DESC LIMIT 1",
        (execution_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    seq, payload, checksum = row
    return verify_snapshot(execution_id, seq, payload, checksum)


async def _latest_snapshots(conn: Conn, execution_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT DISTINCT ON (execution_id) execution_id, seq, payload, checksum"
        " FROM tether_snapshots WHERE execution_id = ANY(%s::text[])"
        " ORDER BY execution_id, seq DESC",
        (list(execution_ids),),
    )
    return await cur.fetchall()


async def load_executions(conn: Conn, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
    """Latest snapshots, then the index rows with the records after them: two reads for any
    number of executions. What does not verify is left out (see ``Store.load_executions``):
    reading that execution alone reports the problem."""
    snapshots: dict[str, Snapshot] = {}
    bad: set[str] = set()
    for eid, seq, payload, checksum in await _latest_snapshots(conn, execution_ids):
        try:
            snapshots[eid] = verify_snapshot(eid, seq, payload, checksum)
        except SnapshotCorruption:
            bad.add(eid)
    wanted = [eid for eid in execution_ids if eid not in bad]
    starts = [snap.seq + 1 if (snap := snapshots.get(eid)) else 1 for eid in wanted]
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS}, p.from_seq, j.seq, j.type, j.payload, j.checksum"
        " FROM unnest(%s::text[], %s::bigint[]) AS p(eid, from_seq)"
        " JOIN tether_executions AS e ON e.execution_id = p.eid"
        " LEFT JOIN tether_journal AS j"
        "  ON j.execution_id = e.execution_id AND j.seq >= p.from_seq"
        " ORDER BY e.execution_id, j.seq",
        (wanted, starts),
    )
    grouped: dict[str, tuple[ExecutionRow, int, list[Any]]] = {}
    for r in await cur.fetchall():
        entry = grouped.get(r[0])
        if entry is None:
            entry = grouped[r[0]] = (_execution(r[:10]), int(r[10]), [])
        if r[11] is not None:
            entry[2].append(r[11:])
    loaded = {}
    for eid, (row, from_seq, journal) in grouped.items():
        try:
            records = verify_journal(eid, from_seq, journal, row.last_seq)
        except JournalCorruption:
            continue
        loaded[eid] = LoadedExecution(row, snapshots.get(eid), records)
    return loaded


async def get_execution(conn: Conn, execution_id: str) -> ExecutionRow | None:
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS} FROM tether_executions AS e WHERE e.execution_id = %s",
        (execution_id,),
    )
    row = await cur.fetchone()
    return _execution(row) if row is not None else None


async def list_executions(
    conn: Conn, status: str | None, workflow_id: str | None, limit: int, offset: int
) -> list[ExecutionRow]:
    """Newest first; ties broken by execution id (ULIDs sort by time) so paging is stable."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("e.status = %s")
        params.append(status)
    if workflow_id is not None:
        where.append("e.workflow_id = %s")
        params.append(workflow_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # A negative limit means "all", as in SQLite.
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS} FROM tether_executions AS e {clause}"
        " ORDER BY e.created_at_ms DESC, e.execution_id DESC LIMIT %s OFFSET %s",
        (*params, limit if limit >= 0 else None, max(offset, 0)),
    )
    return [_execution(r) for r in await cur.fetchall()]


async def unfinished_executions(conn: Conn) -> list[ExecutionRow]:
    """Non-terminal executions not passivated, oldest first (recovery's order)."""
    cur = await conn.execute(
        f"SELECT {_EXEC_COLS} FROM tether_executions AS e"
        f" WHERE e.status <> ALL(%s::text[]) AND {_NOT_PASSIVE}"
        " ORDER BY e.created_at_ms, e.execution_id",
        (sorted(TERMINAL_STATUSES),),
    )
    return [_execution(r) for r in await cur.fetchall()]


async def passive_wakes(conn: Conn) -> list[tuple[str, int]]:
    """Passivated executions waiting for a timer, earliest first (a partial index)."""
    cur = await conn.execute(
        "SELECT execution_id, wake_at_ms FROM tether_executions WHERE wake_at_ms IS NOT NULL"
        " AND passive_seq = last_seq ORDER BY wake_at_ms, execution_id"
    )
    return [(str(eid), int(at)) for eid, at in await cur.fetchall()]
