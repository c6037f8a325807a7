"""SQL on the ``memory_facts`` table (migrations 9 and 11): writes are jobs of the single writer
(their own transaction, never committing themselves), reads run on the reader connection.

Example::

    inserted = await write_fact(writer_conn, row)
    rows = await read_facts(reader_conn, "u1")
"""

from __future__ import annotations

import aiosqlite

from tether.persistence.facts import FactRow

_COLS = "fact_id, scope, subject, content, source_run, at_ms, supersedes"
_READ_COLS = _COLS + ", written"


async def write_fact(conn: aiosqlite.Connection, row: FactRow) -> bool:
    """Insert ``row`` unless ``(scope, fact_id)`` is taken (a retried write: I4)."""
    rows = await conn.execute_fetchall(
        f"INSERT INTO memory_facts ({_COLS}, written) VALUES (?, ?, ?, ?, ?, ?, ?,"
        " (SELECT COALESCE(MAX(written), 0) + 1 FROM memory_facts))"
        " ON CONFLICT (scope, fact_id) DO NOTHING RETURNING 1",
        (row.fact_id, row.scope, row.subject, row.content, row.source_run, row.at_ms,
         row.supersedes),
    )  # fmt: skip
    return bool(list(rows))


async def read_facts(conn: aiosqlite.Connection, scope: str) -> list[FactRow]:
    rows = await conn.execute_fetchall(
        f"SELECT {_READ_COLS} FROM memory_facts WHERE scope = ? ORDER BY at_ms, written, fact_id",
        (scope,),
    )
    return [FactRow(*r) for r in rows]
