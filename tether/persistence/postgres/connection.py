"""Opening Postgres connections, and the writer lock (I6).

One engine writes a schema at a time: the writer's connection holds a session-level advisory
lock keyed by the current schema, so a second engine opening the same schema for writing gets
:class:`DatabaseLocked` naming the holder. Postgres drops the lock when the holder's
connection ends, a SIGKILL of its process included; the opener waits a little for it, since
a killed engine's server process takes a moment to notice its client is gone.

Example::

    url = "postgresql://tether@db/tether"
    conn = await connect(url, where=url, autocommit=False)
    await take_writer_lock(conn, where=url, wait_ms=5_000)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg.rows import TupleRow

from tether.persistence.contract import DatabaseLocked, StorageError

#: The connections every Postgres op takes (rows as tuples).
Conn = psycopg.AsyncConnection[TupleRow]

#: The advisory lock's first key: Tether's writer lock (the second is the schema's hash).
_LOCK_CLASS = 0x7E7E_0001
#: Held while an engine sharing the schema migrates it (the others wait for it).
_MIGRATION_CLASS = 0x7E7E_0002


async def connect(url: str, where: str, autocommit: bool) -> Conn:
    """A connection to ``url``; StorageError saying what failed otherwise."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=autocommit, application_name=f"tether pid {os.getpid()}"
        )
    except psycopg.Error as exc:
        raise StorageError(f"{where}: cannot connect: {exc}".strip()) from exc


async def take_writer_lock(conn: Conn, where: str, wait_ms: int, shared: bool = False) -> None:
    """Hold the schema's writer lock on ``conn`` for the connection's life, waiting up to
    ``wait_ms`` for a holder that is going away; DatabaseLocked naming it otherwise.
    ``shared``: an engine of several sharing the schema (they hold the lock together, and
    exclude a single engine, which holds it alone)."""
    take = "pg_advisory_lock_shared" if shared else "pg_advisory_lock"
    try:
        await conn.execute(f"SET LOCAL lock_timeout = {max(int(wait_ms), 1)}")
        await conn.execute(f"SELECT {take}(%s, hashtext(current_schema()))", (_LOCK_CLASS,))
        await conn.commit()
    except psycopg.errors.LockNotAvailable:
        await conn.rollback()
        raise DatabaseLocked(await _locked_message(conn, where, shared)) from None


@asynccontextmanager
async def migration_lock(conn: Conn) -> AsyncIterator[None]:
    """Hold the schema's migration lock on ``conn`` for the block (engines sharing a schema
    that start together: one migrates, the others then find nothing to do)."""
    await conn.execute(
        "SELECT pg_advisory_lock(%s, hashtext(current_schema()))", (_MIGRATION_CLASS,)
    )
    await conn.commit()
    try:
        yield
    finally:
        if not conn.broken:
            await conn.execute(
                "SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (_MIGRATION_CLASS,)
            )
            await conn.commit()


async def _locked_message(conn: Conn, where: str, shared: bool = False) -> str:
    cur = await conn.execute(
        "SELECT current_schema(), a.pid, a.application_name, a.client_addr::text"
        " FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid"
        " AND l.objid = hashtext(current_schema())::oid",
        (_LOCK_CLASS,),
    )
    row = await cur.fetchone()
    await conn.rollback()
    schema = row[0] if row else "?"
    who = "another engine"
    if row is not None and row[1] is not None:
        who = f"{row[2] or 'a client'} (server pid {row[1]}, from {row[3] or 'a local socket'})"
    if shared:
        return (
            f"{where}: schema {schema} is open for writing by {who} as its only engine; "
            "engines can share it only when every one is started with --shared"
        )
    return (
        f"{where}: schema {schema} is already open for writing by {who}; only one engine may "
        "write it. Stop that engine, use another schema, open the store read-only, or start "
        "every engine with --shared to run several on it."
    )
