"""SQL on the ``tether_artifacts`` table (Postgres migration 8): writes are jobs of the writer
(inside the transaction it owns), reads run on a reader connection.

Example::

    await put_artifacts(writer_conn, [(digest, data)], at_ms)
    data = await get_artifact(reader_conn, digest)        # verified by the store
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tether.persistence.artifacts.contract import ArtifactInfo
from tether.persistence.postgres.connection import Conn


async def put_artifacts(conn: Conn, blobs: Sequence[tuple[str, bytes]], at_ms: int) -> None:
    """Insert each ``(digest, data)`` once; one already there keeps its bytes (never
    overwritten) and only its ``touched_at_ms`` moves on."""
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO tether_artifacts (digest, size, data, created_at_ms, touched_at_ms)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE SET touched_at_ms ="
            " greatest(tether_artifacts.touched_at_ms, excluded.touched_at_ms)",
            [(digest, len(data), data, at_ms, at_ms) for digest, data in blobs],
        )


async def get_artifact(conn: Conn, digest: str) -> bytes | None:
    cur = await conn.execute("SELECT data FROM tether_artifacts WHERE digest = %s", (digest,))
    row = await cur.fetchone()
    return bytes(row[0]) if row else None


async def list_artifacts(conn: Conn) -> list[ArtifactInfo]:
    cur = await conn.execute(
        "SELECT digest, size, created_at_ms, touched_at_ms FROM tether_artifacts ORDER BY digest"
    )
    return [ArtifactInfo(*r) for r in await cur.fetchall()]


async def artifact_references(conn: Conn, marker: bytes) -> list[bytes]:
    """Payloads of journal rows and snapshots holding ``marker`` (the search runs in Postgres)."""
    cur = await conn.execute(
        "SELECT payload FROM tether_journal WHERE position(%(m)s::bytea in payload) > 0"
        " UNION ALL SELECT payload FROM tether_snapshots"
        " WHERE position(%(m)s::bytea in payload) > 0",
        {"m": marker},
    )
    return [bytes(r[0]) for r in await cur.fetchall()]


async def delete_artifacts(
    conn: Conn, digests: Collection[str], touched_before_ms: int
) -> list[str]:
    """Delete those of ``digests`` last put before ``touched_before_ms``; the ones deleted.
    The age is checked in the DELETE itself: a put that lands first keeps its artifact."""
    cur = await conn.execute(
        "DELETE FROM tether_artifacts WHERE digest = ANY(%s) AND touched_at_ms < %s"
        " RETURNING digest",
        (list(digests), touched_before_ms),
    )
    return [r[0] for r in await cur.fetchall()]
