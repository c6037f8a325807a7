"""SQL operations, one function each, taking the connection to run on (DBOS style).

Write functions run on the writer's connection inside the transaction it owns and never commit;
read functions run on a reader connection. Each function costs a constant number of awaits
(aiosqlite pays ~60 us per await and runs the connection on its own thread), never one per row.

Example::

    write = functools.partial(write_group_and_commit, statements=statements, leases=leases)
    granted = await in_connection_thread(writer_conn, write)   # the writer's whole group
    rows = await read_journal(reader_conn, "exec_1", 1)
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
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
    StorageError,
    StoredRecord,
    Turn,
    WorkflowRow,
    WorkflowVersionConflict,
    WorkItemRow,
)
from tether.persistence.integrity import (
    SNAPSHOT_TYPE,
    record_checksum,
    verify_journal,
    verify_snapshot,
)
from tether.persistence.sqlite import lease_ops

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------- writes


class FenceMismatch(StorageError):
    """The table refused a settle or heartbeat the writer's fence copy accepted; the writer
    rolls back, reloads those items and retries turn by turn."""


async def last_seqs(
    conn: aiosqlite.Connection, execution_ids: Collection[str], chained: bool = True
) -> dict[str, tuple[int, bool, bytes | None]]:
    """Per execution: its last journal seq (0 if none), whether it has an index row, and the
    audit chain link of its last row (None: no row, a row written without the chain, or
    ``chained=False``, which leaves the chain column alone).

    The ids go in as one JSON parameter, so any number of them costs one await and no
    variable-count limit; each lookup is one descending seek on the primary key.
    """
    rows = await conn.execute_fetchall(
        f"SELECT p.value, j.seq, {'j.chain' if chained else 'NULL'},"
        " EXISTS (SELECT 1 FROM executions WHERE execution_id = p.value)"
        " FROM json_each(?) AS p LEFT JOIN journal AS j ON j.execution_id = p.value"
        " AND j.seq = (SELECT max(seq) FROM journal WHERE execution_id = p.value)",
        (json.dumps(list(execution_ids)),),
    )
    return {
        str(eid): (int(seq or 0), bool(indexed), None if chain is None else bytes(chain))
        for eid, seq, chain, indexed in rows
    }


_INSERT_JOURNAL = (
    "INSERT INTO journal (execution_id, seq, type, payload, checksum, chain)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
# With the audit log off the chain column is left alone (a store may then write a database
# migrated before the column existed, as an older release would).
_INSERT_UNCHAINED = (
    "INSERT INTO journal (execution_id, seq, type, payload, checksum) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_SNAPSHOT = (
    "INSERT OR REPLACE INTO snapshots (execution_id, seq, payload, checksum) VALUES (?, ?, ?, ?)"
)
_UPSERT_EXECUTION = """
    INSERT INTO executions (execution_id, workflow_id, workflow_version, status,
                            created_at_ms, updated_at_ms, last_seq, error)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (execution_id) DO UPDATE SET
        status = excluded.status, updated_at_ms = excluded.updated_at_ms,
        last_seq = excluded.last_seq, error = excluded.error,
        passive_seq = NULL, wake_at_ms = NULL
"""
_UPDATE_LAST_SEQ = "UPDATE executions SET last_seq = ? WHERE execution_id = ?"
_FEED_INSERT = "INSERT INTO view_feed (execution_id, seq) VALUES (?, ?)"
# After the upserts: a status change clears an old mark (so the wake index keeps no stale
# rows), and a passivating turn sets its own after that.
_MARK_PASSIVE = "UPDATE executions SET passive_seq = ?, wake_at_ms = ? WHERE execution_id = ?"


_Rows = list[tuple[Any, ...]]


@dataclass(slots=True)
class PreparedTurn:
    """A turn with its rows built and checksummed, ready for ``executemany``.

    Built by the appending task (``prepare``) while the writer's previous commit is in flight,
    so checksum work overlaps the fsync instead of delaying the next batch.
    """

    turn: Turn
    last_seq: int
    #: ``[execution_id, seq, type, payload, checksum, chain link]`` per record.
    journal: list[list[Any]]
    snapshot: tuple[Any, ...] | None
    #: ``(work item inserts, settles)``; None for the common turn touching no work item, so
    #: the hot path pays one identity test for the feature.
    leases: tuple[_Rows, _Rows] | None


def prepare(turn: Turn) -> PreparedTurn:
    eid = turn.execution_id
    seq = turn.expected_seq
    journal: list[list[Any]] = []
    for rec in turn.records:
        # A list: the writer fills the last slot, the audit chain link, when it accepts the
        # turn (it alone knows the previous link); None with the audit log off.
        journal.append([eid, seq, rec.type, rec.payload,
                        record_checksum(eid, seq, rec.type, rec.payload), None])  # fmt: skip
        seq += 1
    last = seq - 1
    snapshot = None
    if turn.snapshot is not None:
        crc = record_checksum(eid, last, SNAPSHOT_TYPE, turn.snapshot)
        snapshot = (eid, last, turn.snapshot, crc)
    leases = None
    if turn.work_items or turn.settles:
        leases = ([lease_ops.insert_params(w) for w in turn.work_items],
                  [lease_ops.settle_params(s) for s in turn.settles])  # fmt: skip
    return PreparedTurn(turn, last, journal, snapshot, leases)


def _index_rows(turns: Sequence[PreparedTurn], indexed: Container[str]) -> tuple[_Rows, _Rows]:
    """Upserts for turns with an IndexUpdate, and last_seq bumps for the rest.

    The index row must end at each execution's final seq of the batch even when its last turn
    carries no IndexUpdate; executions without an index row get no bump (a wasted lookup).
    """
    upserts: _Rows = []
    final: dict[str, PreparedTurn] = {}
    gets_row: set[str] = set()
    for p in turns:
        eid = p.turn.execution_id
        ix = p.turn.index
        if ix is not None:
            upserts.append(
                (eid, ix.workflow_id, ix.workflow_version, ix.status,
                 ix.created_at_ms, ix.updated_at_ms, p.last_seq, ix.error)
            )  # fmt: skip
            gets_row.add(eid)
        final[eid] = p
    bumps: _Rows = [
        (p.last_seq, eid)
        for eid, p in final.items()
        if p.turn.index is None and (eid in gets_row or eid in indexed)
    ]
    return upserts, bumps


Statements = list[tuple[str, list[Any]]]


def turn_statements(
    turns: Sequence[PreparedTurn], indexed: Container[str], chained: bool = True
) -> Statements:
    """What a group writes for its turns apart from their work items, in order: the
    journal rows first (with their audit chain links unless ``chained`` is off), then
    snapshots, index upserts with their feed rows (tether.persistence.views), last_seq bumps
    and passivation marks."""
    out: Statements = (
        [(_INSERT_JOURNAL, [row for p in turns for row in p.journal])]
        if chained
        else [(_INSERT_UNCHAINED, [row[:5] for p in turns for row in p.journal])]
    )
    snapshots = [p.snapshot for p in turns if p.snapshot is not None]
    if snapshots:
        out.append((_INSERT_SNAPSHOT, snapshots))
    upserts, bumps = _index_rows(turns, indexed)
    if upserts:
        out.append((_UPSERT_EXECUTION, upserts))
        # The run views' feed: one row per status change, for the projector to follow.
        out.append((_FEED_INSERT, [(row[0], row[6]) for row in upserts]))
    if bumps:
        out.append((_UPDATE_LAST_SEQ, bumps))
    passive = [
        (p.last_seq, p.turn.passive.wake_at_ms, p.turn.execution_id)
        for p in turns
        if p.turn.passive is not None
    ]
    if passive:
        out.append((_MARK_PASSIVE, passive))
    return out


def execute_and_commit(raw: sqlite3.Connection, statements: Statements) -> None:
    """Run ``statements`` and commit, on the connection's thread (``in_connection_thread``):
    the writer's common batch, turns touching no work item, in one round trip."""
    for sql, rows in statements:
        raw.executemany(sql, rows)
    raw.commit()


@dataclass(slots=True)
class LeaseWrites:
    """The work-item side of a group: heartbeats (``(expires_ms, now_ms, work_item_id,
    fence)``), new items, settles and grants (``lease_ops.grant_raw``'s arguments)."""

    heartbeats: _Rows
    items: _Rows
    #: How many of ``items`` must be new (None: not checked).
    new_items: int | None
    settles: _Rows
    grants: list[tuple[Any, ...]]


def lease_writes(
    turns: Sequence[PreparedTurn],
    heartbeats: _Rows,
    new_items: int | None,
    grants: list[tuple[Any, ...]],
) -> LeaseWrites:
    """What a group writes to the work-item table, gathered from its turns' leases."""
    leases = [p.leases for p in turns if p.leases is not None]
    items = [row for inserts, _ in leases for row in inserts]
    settles = [row for _, changes in leases for row in changes]
    return LeaseWrites(heartbeats, items, new_items, settles, grants)


def write_group_and_commit(
    raw: sqlite3.Connection, statements: Statements, leases: LeaseWrites
) -> list[list[WorkItemRow]]:
    """A group touching work items, in one round trip on the connection's thread: the turns'
    rows (``statements`` from ``turn_statements``, empty without turns) with their new work
    items before their settles, the group's heartbeats before it and its grants after it,
    then the commit; the granted rows.

    Raises FenceMismatch when an insert count differs from the new items expected or a
    settle's or heartbeat's fence check fails in SQL, leaving the transaction open for the
    caller's rollback. A hop per statement cost the event loop a future and a wake-up each,
    and the batch a loop iteration each while other tasks ran.
    """
    beats = leases.heartbeats
    if beats and lease_ops.apply_heartbeats_raw(raw, beats) != len(beats):
        raise FenceMismatch("a heartbeat's fence check failed in SQL")
    if statements:
        first, *rest = statements
        raw.executemany(*first)  # the journal rows: before the settles that follow them
        items, wanted = leases.items, leases.new_items
        if items:
            inserted = lease_ops.insert_work_items_raw(raw, items)
            if wanted is not None and inserted != wanted:
                raise FenceMismatch(f"{wanted} work items were to be new, {inserted} were inserted")
        settles = leases.settles
        if settles and lease_ops.apply_settles_raw(raw, settles) != len(settles):
            raise FenceMismatch("a settle's fence check failed in SQL")
        for sql, rows in rest:
            raw.executemany(sql, rows)
    granted = [lease_ops.grant_raw(raw, *g) for g in leases.grants]
    raw.commit()
    return granted


async def put_workflow(
    conn: aiosqlite.Connection, workflow_id: str, version: str, ir: bytes, at_ms: int
) -> None:
    """Register IR; the same bytes again is a no-op, different bytes a conflict."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT ir FROM workflows WHERE workflow_id = ? AND version = ?",
            (workflow_id, version),
        )
    )
    if rows:
        if bytes(rows[0][0]) != ir:
            raise WorkflowVersionConflict(
                f"workflow {workflow_id} version {version} is already registered with "
                "different IR; register the change under a new version"
            )
        return
    await conn.execute(
        "INSERT INTO workflows (workflow_id, version, ir, created_at_ms) VALUES (?, ?, ?, ?)",
        (workflow_id, version, ir, at_ms),
    )


# ----------------------------------------------------------------------------------- reads


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


_WF_COLS = "workflow_id, version, ir, created_at_ms"


async def get_workflow(
    conn: aiosqlite.Connection, workflow_id: str, version: str | None
) -> WorkflowRow | None:
    """One version, or the most recently registered (latest created_at_ms, then insertion)."""
    if version is None:
        sql = (
            f"SELECT {_WF_COLS} FROM workflows WHERE workflow_id = ?"
            " ORDER BY created_at_ms DESC, rowid DESC LIMIT 1"
        )
        params: tuple[str, ...] = (workflow_id,)
    else:
        sql = f"SELECT {_WF_COLS} FROM workflows WHERE workflow_id = ? AND version = ?"
        params = (workflow_id, version)
    rows = list(await conn.execute_fetchall(sql, params))
    return WorkflowRow(*rows[0]) if rows else None


async def list_workflows(conn: aiosqlite.Connection) -> list[WorkflowRow]:
    """Every registered version, by workflow id then registration order."""
    rows = await conn.execute_fetchall(
        f"SELECT {_WF_COLS} FROM workflows ORDER BY workflow_id, created_at_ms, rowid"
    )
    return [WorkflowRow(*r) for r in rows]
