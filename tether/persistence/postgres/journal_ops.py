"""SQL that writes turns (I4): journal rows, snapshots, the execution index, one function
each, taking the connection (DBOS style).

They run on the writer's connection inside the transaction it owns and never commit. Each
costs one round trip whatever the batch size: rows go in as arrays (``unnest``) or through
``executemany`` (pipelined by psycopg) where their order matters.

Example::

    seqs = await last_seqs(conn, ["exec_1"])          # {"exec_1": (0, False)}
    await insert_journal(conn, [("exec_1", 1, "execution_started", b"...", crc)])
    await conn.commit()
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from tether.persistence.postgres.connection import Conn

_Row = tuple[Any, ...]


async def last_seqs(
    conn: Conn, execution_ids: Collection[str], chained: bool = True
) -> dict[str, tuple[int, bool, bytes | None]]:
    """Per execution: its last journal seq (0 if none), whether it has an index row, and the
    audit chain link of its last row (None: no row, an unchained row, or ``chained=False``)."""
    cur = await conn.execute(
        "SELECT p.eid, j.seq, " + ("j.chain" if chained else "NULL::bytea") + ","
        " EXISTS (SELECT 1 FROM tether_executions AS e WHERE e.execution_id = p.eid)"
        " FROM unnest(%s::text[]) AS p(eid) LEFT JOIN LATERAL"
        " (SELECT seq, " + ("chain" if chained else "NULL::bytea AS chain") + " FROM"
        "  tether_journal WHERE execution_id = p.eid ORDER BY seq DESC LIMIT 1) AS j ON true",
        (list(execution_ids),),
    )
    return {
        str(eid): (int(seq or 0), bool(indexed), None if chain is None else bytes(chain))
        for eid, seq, chain, indexed in await cur.fetchall()
    }


async def insert_journal(
    conn: Conn, rows: Sequence[_Row], links: Sequence[bytes] | None = None
) -> None:
    """Insert ``(execution_id, seq, type, payload, checksum)`` rows, with their audit chain
    links when given (None: the chain column is left alone); a taken (execution, seq) raises
    UniqueViolation (the caller rolls back)."""
    if not rows:
        return
    eids, seqs, types, payloads, checksums = (list(c) for c in zip(*rows, strict=True))
    if links is None:
        await conn.execute(
            "INSERT INTO tether_journal (execution_id, seq, type, payload, checksum)"
            " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bytea[],"
            " %s::bigint[])",
            (eids, seqs, types, payloads, checksums),
        )
        return
    await conn.execute(
        "INSERT INTO tether_journal (execution_id, seq, type, payload, checksum, chain)"
        " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bytea[],"
        " %s::bigint[], %s::bytea[])",
        (eids, seqs, types, payloads, checksums, list(links)),
    )


async def insert_snapshots(conn: Conn, rows: Sequence[_Row]) -> None:
    """Insert ``(execution_id, seq, payload, checksum)`` rows (a trigger keeps two each)."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tether_snapshots (execution_id, seq, payload, checksum)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (execution_id, seq) DO UPDATE"
            " SET payload = excluded.payload, checksum = excluded.checksum",
            rows,
        )


async def upsert_executions(conn: Conn, rows: Sequence[_Row]) -> None:
    """Create or update index rows, in order: ``(execution_id, workflow_id, workflow_version,
    status, created_at_ms, updated_at_ms, last_seq, error)``. An update keeps the workflow and
    creation time, and ends a passivation (a passivating turn marks it again afterwards)."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tether_executions (execution_id, workflow_id, workflow_version,"
            " status, created_at_ms, updated_at_ms, last_seq, error)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (execution_id) DO UPDATE SET"
            " status = excluded.status, updated_at_ms = excluded.updated_at_ms,"
            " last_seq = excluded.last_seq, error = excluded.error,"
            " passive_seq = NULL, wake_at_ms = NULL",
            rows,
        )


async def bump_last_seqs(conn: Conn, rows: Sequence[_Row]) -> None:
    """Move index rows' ``last_seq`` on: ``(last_seq, execution_id)`` rows."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "UPDATE tether_executions SET last_seq = %s WHERE execution_id = %s", rows
        )


async def mark_passive(conn: Conn, rows: Sequence[_Row]) -> None:
    """Passivate: ``(passive_seq, wake_at_ms, execution_id)`` rows (see ``Passive``)."""
    if not rows:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "UPDATE tether_executions SET passive_seq = %s, wake_at_ms = %s"
            " WHERE execution_id = %s",
            rows,
        )
