"""SQL on the ``tether_memory_facts`` table (Postgres migrations 7 and 9): writes are jobs of the
writer (inside the transaction it owns), reads run on a reader connection.

Example::

    inserted = await write_fact(writer_conn, row)
    rows = await read_facts(reader_conn, "u1")
"""

from __future__ import annotations

from tether.persistence.facts import FactRow
from tether.persistence.postgres.connection import Conn

_COLS = "fact_id, scope, subject, content, source_run, at_ms, supersedes"
_READ_COLS = _COLS + ", written"


async def write_fact(conn: Conn, row: FactRow) -> bool:
    """Insert ``row`` unless ``(scope, fact_id)`` is taken (a retried write: I4)."""
    cur = await conn.execute(
        f"INSERT INTO tether_memory_facts ({_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (scope, fact_id) DO NOTHING",
        (row.fact_id, row.scope, row.subject, row.content, row.source_run, row.at_ms,
         row.supersedes),
    )  # fmt: skip
    return cur.rowcount > 0


async def read_facts(conn: Conn, scope: str) -> list[FactRow]:
    cur = await conn.execute(
        f"SELECT {_READ_COLS} FROM tether_memory_facts WHERE scope = %s"
        " ORDER BY at_ms, written, fact_id",
        (scope,),
    )
    return [FactRow(*r) for r in await cur.fetchall()]
