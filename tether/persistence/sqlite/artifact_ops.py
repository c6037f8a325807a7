"""SQL on the ``artifacts`` table (migration 10): writes are jobs of the single writer (their
own transaction, never committing themselves), reads run on the reader connection.

Example::

    await put_artifacts(writer_conn, [(digest, data)], at_ms)
    data = await get_artifact(reader_conn, digest)        # verified by the store
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import aiosqlite

from tether.persistence.artifacts.contract import ArtifactInfo


async def put_artifacts(
    conn: aiosqlite.Connection, blobs: Sequence[tuple[str, bytes]], at_ms: int
) -> None:
    """Insert each ``(digest, data)`` once; one already there keeps its bytes (never
    overwritten) and only its ``touched_at_ms`` moves on."""
    await conn.executemany(
        "INSERT INTO artifacts (digest, size, data, created_at_ms, touched_at_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE"
        " SET touched_at_ms = max(touched_at_ms, excluded.touched_at_ms)",
        [(digest, len(data), data, at_ms, at_ms) for digest, data in blobs],
    )


async def get_artifact(conn: aiosqlite.Connection, digest: str) -> bytes | None:
    rows = list(
        await conn.execute_fetchall("SELECT data FROM artifacts WHERE digest = ?", (digest,))
    )
    return bytes(rows[0][0]) if rows else None


async def list_artifacts(conn: aiosqlite.Connection) -> list[ArtifactInfo]:
    rows = await conn.execute_fetchall(
        "SELECT digest, size, created_at_ms, touched_at_ms FROM artifacts ORDER BY digest"
    )
    return [ArtifactInfo(*r) for r in rows]


async def artifact_references(conn: aiosqlite.Connection, marker: bytes) -> list[bytes]:
    """Payloads of journal rows and snapshots holding ``marker`` (the search runs in SQLite)."""
    rows = await conn.execute_fetchall(
        "SELECT payload FROM journal WHERE instr(payload, ?1) > 0"
        " UNION ALL SELECT payload FROM snapshots WHERE instr(payload, ?1) > 0",
        (marker,),
    )
    return [bytes(r[0]) for r in rows]


async def delete_artifacts(
    conn: aiosqlite.Connection, digests: Collection[str], touched_before_ms: int
) -> list[str]:
    """Delete those of ``digests`` last put before ``touched_before_ms``; the ones deleted.
    The age is checked in the DELETE itself: a put that lands first keeps its artifact."""
    deleted: list[str] = []
    for digest in digests:
        rows = await conn.execute_fetchall(
            "DELETE FROM artifacts WHERE digest = ? AND touched_at_ms < ? RETURNING digest",
            (digest, touched_before_ms),
        )
        deleted.extend(r[0] for r in rows)
    return deleted
