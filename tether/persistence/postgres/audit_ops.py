"""SQL for the audit log on Postgres: chained journal rows as an auditor reads them, and
signed heads (as ``tether.persistence.sqlite.audit_ops`` does for SQLite).

Example::

    journal = await read_chained(reader, "exec_1")
    await put_signatures(writer_conn, [HeadSignature(...)])
"""

from __future__ import annotations

from collections.abc import Sequence

from tether.persistence.audit_chain import ChainedJournal, ChainedRow, ChainHead, HeadSignature
from tether.persistence.postgres.connection import Conn


async def read_chained(conn: Conn, execution_id: str) -> ChainedJournal:
    """Every journal row in seq order, as stored, with the index's last seq (one statement,
    one snapshot)."""
    cur = await conn.execute(
        "SELECT j.seq, j.type, j.payload, j.checksum, j.chain, e.last_seq"
        " FROM (SELECT 1) AS one"
        " LEFT JOIN tether_executions AS e ON e.execution_id = %(eid)s"
        " LEFT JOIN tether_journal AS j ON j.execution_id = %(eid)s"
        " ORDER BY j.seq",
        {"eid": execution_id},
    )
    found = await cur.fetchall()
    last = found[0][5] if found else None
    rows = [
        ChainedRow(
            execution_id,
            int(seq),
            str(type_),
            bytes(payload),
            int(checksum),
            None if chain is None else bytes(chain),
        )
        for seq, type_, payload, checksum, chain, _ in found
        if seq is not None
    ]
    return ChainedJournal(rows, None if last is None else int(last))


async def read_signatures(conn: Conn, execution_id: str) -> list[HeadSignature]:
    cur = await conn.execute(
        "SELECT seq, chain, key_id, signature, signed_at_ms, proof FROM tether_audit_signatures"
        " WHERE execution_id = %s ORDER BY seq, key_id",
        (execution_id,),
    )
    return [
        HeadSignature(
            execution_id, int(seq), bytes(chain), str(kid), bytes(sig), int(at), bytes(proof)
        )
        for seq, chain, kid, sig, at, proof in await cur.fetchall()
    ]


async def audited_executions(conn: Conn) -> list[str]:
    cur = await conn.execute(
        "SELECT execution_id FROM tether_executions"
        " UNION SELECT execution_id FROM tether_audit_signatures"
        " UNION SELECT DISTINCT execution_id FROM tether_journal ORDER BY 1"
    )
    return [str(r[0]) for r in await cur.fetchall()]


async def unsigned_heads(conn: Conn) -> list[ChainHead]:
    cur = await conn.execute(
        "SELECT e.execution_id, j.seq, j.chain FROM tether_executions AS e"
        " JOIN tether_journal AS j ON j.execution_id = e.execution_id AND j.seq = e.last_seq"
        " WHERE j.chain IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tether_audit_signatures AS s"
        "   WHERE s.execution_id = e.execution_id AND s.seq >= e.last_seq)"
        " ORDER BY e.execution_id"
    )
    return [ChainHead(str(eid), int(seq), bytes(chain)) for eid, seq, chain in await cur.fetchall()]


async def put_signatures(conn: Conn, signatures: Sequence[HeadSignature]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tether_audit_signatures (execution_id, seq, chain, key_id, signature,"
            " signed_at_ms, proof) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (s.execution_id, s.seq, s.chain, s.key_id, s.signature, s.signed_at_ms, s.proof)
                for s in signatures
            ],
        )
