"""SQL for the audit log: chained journal rows as an auditor reads them, and signed heads.

Reads run on a reader connection and return rows as stored, unverified (the verifier in
``tether.governance`` names what is wrong); ``put_signatures`` runs on the writer connection
as a job of its own (I6).

Example::

    rows = await read_chained(reader, "exec_1")
    await put_signatures(writer_conn, [HeadSignature(...)])
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from tether.persistence.audit_chain import ChainedJournal, ChainedRow, ChainHead, HeadSignature
from tether.persistence.contract import StorageError


def _blob(value: Any) -> Any:
    # A value rewritten as TEXT reads as text; the verifier needs bytes to compare.
    return value.encode() if isinstance(value, str) else value


async def read_chained(conn: aiosqlite.Connection, execution_id: str) -> ChainedJournal:
    """Every journal row of ``execution_id`` in seq order, with its CRC and link, as stored,
    and the index's last seq read in the same statement (one snapshot of a live journal)."""
    try:
        rows = list(
            await conn.execute_fetchall(
                "SELECT seq, type, CAST(payload AS BLOB), checksum, chain,"
                " (SELECT last_seq FROM executions WHERE execution_id = ?1)"
                " FROM journal WHERE execution_id = ?1 ORDER BY seq",
                (execution_id,),
            )
        )
        if rows:
            last = rows[0][5]
        else:
            found = list(
                await conn.execute_fetchall(
                    "SELECT last_seq FROM executions WHERE execution_id = ?", (execution_id,)
                )
            )
            last = found[0][0] if found else None
    except sqlite3.Error as exc:
        raise StorageError(f"execution {execution_id}: journal cannot be read: {exc}") from exc
    chained = [
        ChainedRow(execution_id, seq, str(type_), _blob(payload), checksum, _blob(chain))
        for seq, type_, payload, checksum, chain, _ in rows
    ]
    return ChainedJournal(chained, last)


async def read_signatures(conn: aiosqlite.Connection, execution_id: str) -> list[HeadSignature]:
    """Signed heads of ``execution_id``, oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT seq, chain, key_id, signature, signed_at_ms, proof FROM audit_signatures"
        " WHERE execution_id = ? ORDER BY seq, key_id",
        (execution_id,),
    )
    return [
        HeadSignature(
            execution_id, seq, _blob(chain), str(key_id), _blob(sig), signed_at, _blob(proof)
        )
        for seq, chain, key_id, sig, signed_at, proof in rows
    ]


async def audited_executions(conn: aiosqlite.Connection) -> list[str]:
    """Every execution with journal rows or signed heads (a journal deleted whole still has
    its signatures, so ``verify --all`` sees it)."""
    rows = await conn.execute_fetchall(
        "SELECT execution_id FROM executions UNION SELECT execution_id FROM audit_signatures"
        " UNION SELECT DISTINCT execution_id FROM journal ORDER BY 1"
    )
    return [str(r[0]) for r in rows]


async def unsigned_heads(conn: aiosqlite.Connection) -> list[ChainHead]:
    """Each execution's last row when it is chained and no signature covers it: what a
    signer starting up signs first (heads committed while none ran)."""
    rows = await conn.execute_fetchall(
        "SELECT e.execution_id, j.seq, j.chain FROM executions AS e"
        " JOIN journal AS j ON j.execution_id = e.execution_id AND j.seq = e.last_seq"
        " WHERE j.chain IS NOT NULL AND NOT EXISTS (SELECT 1 FROM audit_signatures AS s"
        "   WHERE s.execution_id = e.execution_id AND s.seq >= e.last_seq)"
        " ORDER BY e.execution_id"
    )
    return [ChainHead(str(eid), int(seq), bytes(chain)) for eid, seq, chain in rows]


async def put_signatures(conn: aiosqlite.Connection, signatures: Sequence[HeadSignature]) -> None:
    """Insert signed heads (a head signed again by the same key keeps its first signature)."""
    await conn.executemany(
        "INSERT OR IGNORE INTO audit_signatures (execution_id, seq, chain, key_id, signature,"
        " signed_at_ms, proof) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(s.execution_id, s.seq, s.chain, s.key_id, s.signature, s.signed_at_ms, s.proof)
         for s in signatures],
    )  # fmt: skip
