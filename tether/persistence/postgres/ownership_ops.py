"""SQL for several engines on one schema: engine liveness, execution owners, the inbox.

Expiry is judged by the database's clock (``clock_timestamp()``), never an engine's: engines
on several hosts then agree on who has expired however their own clocks drift or jump, and a
paused engine cannot extend its life by having a clock that stood still.

Writes run as jobs of the writer (each in its own transaction); reads on the reader.

Example::

    await register_engine(conn, "eng_a", ttl_ms=10_000)
    lapsed = await renew_engine(conn, "eng_a", ttl_ms=10_000)   # one statement
    claimed = await claim_orphans(conn, "eng_a", limit=500)     # [(execution_id, fence)]
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from tether.persistence.contract import TERMINAL_STATUSES, WorkItemRow
from tether.persistence.leases import list_order
from tether.persistence.postgres.connection import Conn
from tether.persistence.postgres.lease_ops import ITEM_COLS

#: Milliseconds since the epoch on the database server's clock.
NOW_MS = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

#: An engine row that has not expired: its owner rows are held.
_ALIVE = (
    f"SELECT 1 FROM tether_engines AS g WHERE g.engine_id = o.engine_id AND g.expires_ms > {NOW_MS}"
)


async def register_engine(conn: Conn, engine_id: str, ttl_ms: int) -> None:
    """Insert (or refresh) this engine's row, alive for ``ttl_ms`` from now."""
    await conn.execute(
        f"INSERT INTO tether_engines (engine_id, started_ms, expires_ms)"
        f" VALUES (%s, {NOW_MS}, {NOW_MS} + %s::bigint) ON CONFLICT (engine_id) DO UPDATE"
        " SET expires_ms = excluded.expires_ms",
        (engine_id, ttl_ms),
    )


async def renew_engine(conn: Conn, engine_id: str, ttl_ms: int) -> bool:
    """Extend this engine's life (one statement for all its ownerships). True when it had
    expired before this renewal (or its row was gone): others may have claimed some of its
    executions, and the caller must find out which it still holds."""
    cur = await conn.execute(
        f"UPDATE tether_engines AS g SET expires_ms = {NOW_MS} + %(ttl)s::bigint"
        " FROM (SELECT expires_ms FROM tether_engines WHERE engine_id = %(e)s) AS prev"
        f" WHERE g.engine_id = %(e)s RETURNING prev.expires_ms <= {NOW_MS}",
        {"e": engine_id, "ttl": ttl_ms},
    )
    row = await cur.fetchone()
    if row is None:  # the row was deleted (the engine resigned, or an operator removed it)
        await register_engine(conn, engine_id, ttl_ms)
        return True
    return bool(row[0])


async def resign_engine(conn: Conn, engine_id: str) -> None:
    """A clean stop: the row goes, so the others claim this engine's executions at once."""
    await conn.execute("DELETE FROM tether_engines WHERE engine_id = %s", (engine_id,))


async def acquire(conn: Conn, execution_id: str, engine_id: str) -> tuple[str, int]:
    """Own ``execution_id`` if nobody does or its owner expired (fence + 1); keep it if this
    engine owns it. Returns the owner row ``(engine_id, fence)`` after: another live engine's
    when it owns the execution. The conflicting row is locked either way, so the read after
    the upsert sees what this transaction will commit."""
    cur = await conn.execute(
        "INSERT INTO tether_owners AS o (execution_id, engine_id, fence) VALUES (%(x)s, %(e)s, 1)"
        " ON CONFLICT (execution_id) DO UPDATE SET engine_id = excluded.engine_id,"
        " fence = o.fence + 1"
        f" WHERE o.engine_id <> excluded.engine_id AND NOT EXISTS ({_ALIVE})"
        " RETURNING engine_id, fence",
        {"x": execution_id, "e": engine_id},
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "SELECT engine_id, fence FROM tether_owners WHERE execution_id = %s", (execution_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


async def claim_orphans(conn: Conn, engine_id: str, limit: int) -> list[tuple[str, int]]:
    """Take over up to ``limit`` unfinished executions whose owner expired (fence + 1),
    skipping rows another engine is claiming or appending for at this moment."""
    cur = await conn.execute(
        "WITH orphan AS (SELECT o.execution_id FROM tether_owners AS o"
        f"  WHERE o.engine_id <> %(e)s AND NOT EXISTS ({_ALIVE})"
        "  AND NOT EXISTS (SELECT 1 FROM tether_executions AS x"
        "   WHERE x.execution_id = o.execution_id AND x.status = ANY(%(done)s::text[]))"
        "  ORDER BY o.execution_id LIMIT %(n)s FOR UPDATE OF o SKIP LOCKED)"
        " UPDATE tether_owners AS o SET engine_id = %(e)s, fence = o.fence + 1"
        " FROM orphan WHERE o.execution_id = orphan.execution_id"
        " RETURNING o.execution_id, o.fence",
        {"e": engine_id, "n": limit, "done": sorted(TERMINAL_STATUSES)},
    )
    return [(str(eid), int(fence)) for eid, fence in await cur.fetchall()]


async def adopt_unowned(conn: Conn, engine_id: str) -> list[tuple[str, int]]:
    """Own every unfinished execution that has no owner row (written by a single engine
    before this schema was shared)."""
    cur = await conn.execute(
        "INSERT INTO tether_owners (execution_id, engine_id, fence)"
        " SELECT x.execution_id, %(e)s, 1 FROM tether_executions AS x"
        " WHERE x.status <> ALL(%(done)s::text[])"
        " AND NOT EXISTS (SELECT 1 FROM tether_owners AS o WHERE o.execution_id = x.execution_id)"
        " ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id, fence",
        {"e": engine_id, "done": sorted(TERMINAL_STATUSES)},
    )
    return [(str(eid), int(fence)) for eid, fence in await cur.fetchall()]


async def forget_finished(conn: Conn, engine_id: str) -> int:
    """Delete this engine's owner rows of finished executions (nothing to own any more)."""
    cur = await conn.execute(
        "DELETE FROM tether_owners AS o USING tether_executions AS x"
        " WHERE o.engine_id = %s AND x.execution_id = o.execution_id"
        " AND x.status = ANY(%s::text[])",
        (engine_id, sorted(TERMINAL_STATUSES)),
    )
    return cur.rowcount


async def insert_owners(conn: Conn, execution_ids: Sequence[str], engine_id: str) -> None:
    """Owner rows (fence 1) for executions whose first turn this transaction writes; a taken
    id raises UniqueViolation (another engine started it: the batch rolls back)."""
    if execution_ids:
        await conn.execute(
            "INSERT INTO tether_owners (execution_id, engine_id, fence)"
            " SELECT x, %s, 1 FROM unnest(%s::text[]) AS x",
            (engine_id, list(execution_ids)),
        )


async def release_items(
    conn: Conn, execution_ids: Collection[str], now_ms: int
) -> list[WorkItemRow]:
    """The leased items of claimed executions back to pending, fence kept: whatever their
    lease holder (the dead engine's pool, or a worker that followed it) reports is stale
    once they are granted again (fence + 1)."""
    cur = await conn.execute(
        "UPDATE tether_work_items SET status = 'pending', lease_owner = NULL,"
        " lease_expires_ms = NULL, updated_at_ms = greatest(updated_at_ms, %s)"
        f" WHERE execution_id = ANY(%s::text[]) AND status = 'leased' RETURNING {ITEM_COLS}",
        (now_ms, list(execution_ids)),
    )
    return sorted((WorkItemRow(*r) for r in await cur.fetchall()), key=list_order)


async def release_owned_leases(
    conn: Conn, owner: str, execution_ids: Collection[str], now_ms: int
) -> list[WorkItemRow]:
    """``lease_ops.release_leases`` for the items of ``execution_ids`` only."""
    cur = await conn.execute(
        "UPDATE tether_work_items SET status = 'pending', lease_owner = NULL,"
        " lease_expires_ms = NULL, updated_at_ms = greatest(updated_at_ms, %s)"
        " WHERE status = 'leased' AND lease_owner = %s AND execution_id = ANY(%s::text[])"
        f" RETURNING {ITEM_COLS}",
        (now_ms, owner, list(execution_ids)),
    )
    return sorted((WorkItemRow(*r) for r in await cur.fetchall()), key=list_order)


# ----------------------------------------------------------------------------------- reads


async def owned(conn: Conn, engine_id: str) -> dict[str, int]:
    """The executions this engine's owner rows name, with their fences."""
    cur = await conn.execute(
        "SELECT execution_id, fence FROM tether_owners WHERE engine_id = %s", (engine_id,)
    )
    return {str(eid): int(fence) for eid, fence in await cur.fetchall()}


async def live_owner(conn: Conn, execution_id: str) -> str | None:
    """The live engine owning ``execution_id`` (None: nobody, or an expired engine)."""
    cur = await conn.execute(
        "SELECT o.engine_id FROM tether_owners AS o"
        f" WHERE o.execution_id = %s AND EXISTS ({_ALIVE})",
        (execution_id,),
    )
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def live_engines(conn: Conn) -> list[tuple[str, int]]:
    """Engines alive now and how many executions each owns."""
    cur = await conn.execute(
        "SELECT g.engine_id, (SELECT count(*) FROM tether_owners AS o"
        "  WHERE o.engine_id = g.engine_id)"
        f" FROM tether_engines AS g WHERE g.expires_ms > {NOW_MS} ORDER BY g.engine_id"
    )
    return [(str(e), int(n)) for e, n in await cur.fetchall()]


# ----------------------------------------------------------------------------------- inbox


async def post(conn: Conn, execution_id: str, sender: str, body: bytes) -> int:
    """Queue a message for the owner of ``execution_id``; its id."""
    cur = await conn.execute(
        "INSERT INTO tether_inbox (execution_id, sender, body, created_ms)"
        f" VALUES (%s, %s, %s, {NOW_MS}) RETURNING message_id",
        (execution_id, sender, body),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def open_messages(conn: Conn, engine_id: str, limit: int) -> list[tuple[int, str, bytes]]:
    """Unanswered messages for executions this engine owns, oldest first."""
    cur = await conn.execute(
        "SELECT i.message_id, i.execution_id, i.body FROM tether_inbox AS i"
        " JOIN tether_owners AS o ON o.execution_id = i.execution_id AND o.engine_id = %s"
        " WHERE i.answer IS NULL ORDER BY i.message_id LIMIT %s",
        (engine_id, limit),
    )
    return [(int(m), str(e), bytes(b)) for m, e, b in await cur.fetchall()]


async def answer(conn: Conn, message_id: int, body: bytes) -> None:
    await conn.execute(
        "UPDATE tether_inbox SET answer = %s WHERE message_id = %s AND answer IS NULL",
        (body, message_id),
    )


async def answer_of(conn: Conn, message_id: int) -> bytes | None:
    cur = await conn.execute("SELECT answer FROM tether_inbox WHERE message_id = %s", (message_id,))
    row = await cur.fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


async def drop_message(conn: Conn, message_id: int) -> None:
    await conn.execute("DELETE FROM tether_inbox WHERE message_id = %s", (message_id,))


async def last_seqs_and_owners(
    conn: Conn, execution_ids: Collection[str], chained: bool
) -> tuple[dict[str, tuple[int, bool, bytes | None]], dict[str, tuple[str, int]]]:
    """``journal_ops.last_seqs`` and, in the same statement, each execution's owner row,
    locked ``FOR SHARE`` until the batch commits: a claim of one of them (an UPDATE) waits
    for this append to commit, and this append's check sees any claim committed before."""
    chain = "j.chain" if chained else "NULL::bytea"
    cur = await conn.execute(
        f"SELECT p.eid, j.seq, {chain},"
        " EXISTS (SELECT 1 FROM tether_executions AS e WHERE e.execution_id = p.eid),"
        " w.engine_id, w.fence"
        " FROM unnest(%s::text[]) AS p(eid) LEFT JOIN LATERAL"
        " (SELECT seq, " + ("chain" if chained else "NULL::bytea AS chain") + " FROM"
        "  tether_journal WHERE execution_id = p.eid ORDER BY seq DESC LIMIT 1) AS j ON true"
        " LEFT JOIN LATERAL (SELECT engine_id, fence FROM tether_owners"
        "  WHERE execution_id = p.eid FOR SHARE) AS w ON true",
        (list(execution_ids),),
    )
    seqs: dict[str, tuple[int, bool, bytes | None]] = {}
    owners: dict[str, tuple[str, int]] = {}
    for eid, seq, link, indexed, engine, fence in await cur.fetchall():
        seqs[str(eid)] = (int(seq or 0), bool(indexed), None if link is None else bytes(link))
        if engine is not None:
            owners[str(eid)] = (str(engine), int(fence))
    return seqs, owners
