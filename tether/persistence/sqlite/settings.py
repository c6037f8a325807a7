"""What SQLite says one connection is set to, read back from the live connection.

The store sets ``journal_mode`` and ``synchronous`` at open; these values are what its
durability promise rests on (I6: WAL; ``durability="full"``: FULL). Reading them back from
the connections the store really uses lets a test, or an operator, check the promise rather
than the code that was meant to keep it.

Example::

    settings = await store.connection_settings()
    assert settings["writer"].synchronous == SYNCHRONOUS_FULL
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import aiosqlite

#: ``PRAGMA synchronous`` values (https://sqlite.org/pragma.html#pragma_synchronous).
SYNCHRONOUS_OFF: Final = 0
SYNCHRONOUS_NORMAL: Final = 1
SYNCHRONOUS_FULL: Final = 2


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """``PRAGMA journal_mode``, ``synchronous`` and ``query_only`` of one connection."""

    journal_mode: str
    synchronous: int
    query_only: bool


async def read_settings(conn: aiosqlite.Connection) -> ConnectionSettings:
    """Ask ``conn`` itself; changes nothing."""
    values = []
    for pragma in ("journal_mode", "synchronous", "query_only"):
        rows = list(await conn.execute_fetchall(f"PRAGMA {pragma}"))
        values.append(rows[0][0])
    journal_mode, synchronous, query_only = values
    return ConnectionSettings(str(journal_mode).lower(), int(synchronous), bool(query_only))
