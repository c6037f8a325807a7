"""SQL that reads journals, snapshots and the execution index, one function each, taking a
reader connection (autocommit: each statement sees one consistent snapshot).

Every row read is verified (I7): checksums, sequence gaps, and a missing tail against the
index's ``last_seq``, read in the same statement as the rows so the two agree. These stand
apart from the writes in :mod:`tether.persistence.sqlite.ops` because they never run on the
writer's connection or in its transaction, and share nothing with the append path but the
tables (as :mod:`tether.persistence.postgres.execution_reads` does for Postgres).

Example::

    rows = await read_journal(reader_conn, "exec_1", 1)    # JournalCorruption if bad
    loaded = await load_executions(reader_conn, ["exec_1", "exec_2"])
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import aiosqlite

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

# The name the bulk-read warning had before these reads left ops.py: filters keep working.
log = logging.getLogger("tether.persistence.sqlite.ops")


async def read_journal(
    conn: aiosqlite.Connection, execution_id: str, from_seq: int
) -> list[StoredRecord]:
    """Verified records from ``from_seq`` on; the index's last_seq rides along to catch a
    missing tail in the same statement (same read snapshot)."""
    # CAST: a payload rewritten as TEXT still reads as bytes (and fails its checksum if it
    # changed) instead of failing to decode as UTF-8; anything else unreadable is corruption.
    try:
        rows = list(
            await conn.execute_fetchall(
                "SELECT seq, type, CAST(payload AS BLOB), checksum,"
                " (SELECT last_seq FROM executions WHERE execution_id = ?1)"
                " FROM journal WHERE execution_id = ?1 AND seq >= ?2 ORDER BY seq",
                (execution_id, from_seq),
            )
        )
    except sqlite3.DataError as exc:
        raise JournalCorruption(execution_id, from_seq, f"cannot be read ({exc})") from exc
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
        raise JournalCorruption(execution_id, from_seq, f"cannot be read ({exc})") from exc
    if rows:
        last = rows[0][4]
    else:
        found = list(
            await conn.execute_fetchall(
                "SELECT last_seq FROM executions WHERE execution_id = ?", (execution_id,)
            )
        )
        last = found[0][0] if found else None
    return verify_journal(execution_id, from_seq, (r[:4] for r in rows), last)


async def latest_snapshot(conn: aiosqlite.Connection, execution_id: str) -> Snapshot | None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT seq, CAST(payload AS BLOB), checksum FROM snapshots WHERE execution_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            (execution_id,),
        )
    )
    if not rows:
        return None
    seq, payload, checksum = rows[0]
    return verify_snapshot(execution_id, seq, payload, checksum)


_LATEST_SNAPSHOTS = """
    SELECT s.execution_id, s.seq, CAST(s.payload AS BLOB), s.checksum
    FROM json_each(?) AS p JOIN snapshots AS s ON s.execution_id = p.value
    WHERE s.seq = (SELECT max(seq) FROM snapshots WHERE execution_id = p.value)
"""

# One row per record after each execution's start seq, or one with NULL record columns when
# there is none; the index row rides along, read in the same statement as the records.
_LOAD_JOURNALS = """
    SELECT e.execution_id, e.workflow_id, e.workflow_version, e.status, e.created_at_ms,
           e.updated_at_ms, e.last_seq, e.error, e.passive_seq IS e.last_seq,
           CASE WHEN e.passive_seq IS e.last_seq THEN e.wake_at_ms END,
           json_extract(p.value, '$[1]'), j.seq, j.type, CAST(j.payload AS BLOB), j.checksum
    FROM json_each(?) AS p
    JOIN executions AS e ON e.execution_id = json_extract(p.value, '$[0]')
    LEFT JOIN journal AS j
        ON j.execution_id = e.execution_id AND j.seq >= json_extract(p.value, '$[1]')
"""


async def load_executions(
    conn: aiosqlite.Connection, execution_ids: Sequence[str]
) -> dict[str, LoadedExecution]:
    """Latest snapshots, then the index rows and the records after them: two reads for any
    number of executions (ids go in as JSON). What does not verify is left out (see
    ``Store.load_executions``); a read SQLite itself cannot do leaves out everything."""
    snapshots: dict[str, Snapshot] = {}
    bad: set[str] = set()  # a snapshot that does not verify: left out
    try:
        found = await conn.execute_fetchall(_LATEST_SNAPSHOTS, (json.dumps(list(execution_ids)),))
        for eid, seq, payload, checksum in found:
            try:
                snapshots[eid] = verify_snapshot(eid, seq, payload, checksum)
            except (SnapshotCorruption, TypeError, ValueError):  # bad checksum, or not bytes
                bad.add(eid)
        starts = [
            [eid, snap.seq + 1 if (snap := snapshots.get(eid)) is not None else 1]
            for eid in execution_ids
            if eid not in bad
        ]
        rows = await conn.execute_fetchall(_LOAD_JOURNALS, (json.dumps(starts),))
    except sqlite3.Error as exc:
        # One at a time, each execution's own reads report what is wrong.
        log.warning("recovery's bulk read failed (%s); reading executions one at a time", exc)
        return {}
    grouped: dict[str, tuple[ExecutionRow, int, list[Any]]] = {}
    for r in rows:
        entry = grouped.get(r[0])
        if entry is None:
            entry = grouped[r[0]] = (_execution(r[:10]), int(r[10]), [])
        if r[11] is not None:
            entry[2].append(r[11:])
    loaded = {}
    for eid, (row, from_seq, journal) in grouped.items():
        # Sorting here rather than in SQL: the rows come in key order already (a sort in
        # SQL copied every payload into a temporary b-tree).
        journal.sort(key=itemgetter(0))  # by seq
        try:
            records = verify_journal(eid, from_seq, journal, row.last_seq)
        except JournalCorruption:
            continue
        loaded[eid] = LoadedExecution(row, snapshots.get(eid), records)
    return loaded


# The passive mark counts only while no later turn moved last_seq past it.
_EXEC_COLS = (
    "execution_id, workflow_id, workflow_version, status, created_at_ms, updated_at_ms,"
    " last_seq, error, passive_seq IS last_seq,"
    " CASE WHEN passive_seq IS last_seq THEN wake_at_ms END"
)
_NOT_PASSIVE = "(passive_seq IS NULL OR passive_seq <> last_seq)"


def _execution(row: Any) -> ExecutionRow:
    eid, wf, version, status, created, updated, last_seq, error, passive, wake = row
    return ExecutionRow(eid, wf, version, status, created, updated, last_seq, error,
                        bool(passive), wake)  # fmt: skip


async def get_execution(conn: aiosqlite.Connection, execution_id: str) -> ExecutionRow | None:
    rows = list(
        await conn.execute_fetchall(
            f"SELECT {_EXEC_COLS} FROM executions WHERE execution_id = ?", (execution_id,)
        )
    )
    return _execution(rows[0]) if rows else None


async def list_executions(
    conn: aiosqlite.Connection,
    status: str | None,
    workflow_id: str | None,
    limit: int,
    offset: int,
) -> list[ExecutionRow]:
    """Newest first; ties broken by execution id (ULIDs sort by time) so paging is stable."""
    where: list[str] = []
    params: list[Any] = []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if workflow_id is not None:
        where.append("workflow_id = ?")
        params.append(workflow_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await conn.execute_fetchall(
        f"SELECT {_EXEC_COLS} FROM executions {clause}"
        " ORDER BY created_at_ms DESC, execution_id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [_execution(r) for r in rows]


async def unfinished_executions(conn: aiosqlite.Connection) -> list[ExecutionRow]:
    """Non-terminal executions not passivated, oldest first (the order recovery restarts
    them in)."""
    marks = ", ".join("?" for _ in TERMINAL_STATUSES)
    rows = await conn.execute_fetchall(
        f"SELECT {_EXEC_COLS} FROM executions WHERE status NOT IN ({marks})"
        f" AND {_NOT_PASSIVE} ORDER BY created_at_ms, execution_id",
        tuple(sorted(TERMINAL_STATUSES)),
    )
    return [_execution(r) for r in rows]


async def passive_wakes(conn: aiosqlite.Connection) -> list[tuple[str, int]]:
    """Passivated executions waiting for a timer, earliest first (the partial index)."""
    rows = await conn.execute_fetchall(
        "SELECT execution_id, wake_at_ms FROM executions WHERE wake_at_ms IS NOT NULL"
        " AND passive_seq = last_seq ORDER BY wake_at_ms, execution_id"
    )
    return [(str(eid), int(at)) for eid, at in rows]
