"""SQL that writes turns, one function each, taking the connection to run on (DBOS style).

They run on the writer's connection inside the transaction it owns and never commit, but for
the two that end a group (``execute_and_commit``, ``write_group_and_commit``). Each function
costs a constant number of awaits (aiosqlite pays ~60 us per await and runs the connection on
its own thread), never one per row. The reads of what they write are in
:mod:`tether.persistence.sqlite.execution_reads`; the workflow registry is in
:mod:`tether.persistence.sqlite.workflow_ops`.

Example::

    write = functools.partial(write_group_and_commit, statements=statements, leases=leases)
    granted = await in_connection_thread(writer_conn, write)   # the writer's whole group
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from tether.persistence.contract import StorageError, Turn, WorkItemRow
from tether.persistence.integrity import SNAPSHOT_TYPE, record_checksum
from tether.persistence.sqlite import lease_ops
from tether.persistence.sqlite.blobs import blob


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
    #: ``[execution_id, seq, type, payload, checksum, chain link]`` per record; payload and
    #: link as bytearrays (see ``blob``).
    journal: list[list[Any]]
    snapshot: tuple[Any, ...] | None
    #: ``(work item inserts, settles)``; None for the common turn touching no work item, so
    #: the hot path pays one identity test for the feature.
    leases: tuple[_Rows, _Rows] | None
    #: The audit chain link of the last row, as bytes (set by the writer; None: unchained).
    last_link: bytes | None = None


def prepare(turn: Turn) -> PreparedTurn:
    eid = turn.execution_id
    seq = turn.expected_seq
    journal: list[list[Any]] = []
    for rec in turn.records:
        # A list: the writer fills the last slot, the audit chain link, when it accepts the
        # turn (it alone knows the previous link); None with the audit log off.
        journal.append([eid, seq, rec.type, blob(rec.payload),
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
