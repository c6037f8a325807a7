"""The connections a ``SqliteStore`` holds, and opening, closing and abandoning them in order:
the writer lock (I6), the writer's connection and its ``GroupCommitWriter`` task, and the
reader connection.

Apart from :mod:`tether.persistence.sqlite.store` (the Store contract's methods, each a
delegation to an op module) because this is the one part with an order to keep: pragmas and
migration before the writer starts, and at close the writer flushed before its connection is
checkpointed and closed, each step in its own ``finally`` so one failing leaks no other, and
the lock released last. ``SqliteStore`` builds on ``SqliteConnections``.

Example::

    class SqliteStore(SqliteConnections):
        def _reading(self) -> aiosqlite.Connection:
            self._check_open()
            return self._reader
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import aiosqlite

from tether.persistence.contract import Durability, StorageError, StoreClosed
from tether.persistence.sqlite import schema
from tether.persistence.sqlite.lock import WriterLock
from tether.persistence.sqlite.writer import GroupCommitWriter

# The store's logger, as before the lifecycle left store.py: filters keep working.
log = logging.getLogger("tether.persistence.sqlite.store")

_BUSY_TIMEOUT_MS = 5000


class SqliteConnections:
    """The lock, connections and writer of a ``SqliteStore``; see the module docstring."""

    def __init__(
        self,
        path: Path | str,
        durability: Durability = "full",
        readonly: bool = False,
        audit: bool = True,
    ) -> None:
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.path = Path(path)
        self.durability: Durability = durability
        self.readonly = readonly
        self.audit = audit
        self._lock = WriterLock(self.path)
        self._writer_conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._writer: GroupCommitWriter | None = None
        self._state = "new"
        self._closing: asyncio.Future[None] | None = None

    async def open(self) -> None:
        """Take the writer lock, create or migrate the schema, start the writer. Idempotent."""
        if self._state == "open":
            return
        if self._state == "closed":
            raise StoreClosed(f"{self.path}: store is closed; create a new one")
        try:
            if self.readonly:
                await self._open_readonly()
            else:
                await self._open_writable()
        except sqlite3.DatabaseError as exc:
            await self._teardown()
            raise StorageError(f"{self.path}: not a usable Tether database: {exc}") from exc
        except BaseException:
            await self._teardown()
            raise
        self._state = "open"

    async def _open_writable(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        conn = await _connect(str(self.path), uri=False, autocommit=False)
        self._writer_conn = conn
        sync = "FULL" if self.durability == "full" else "NORMAL"
        await _pragmas(conn, "PRAGMA journal_mode=WAL", f"PRAGMA synchronous={sync}")
        await schema.migrate(conn, str(self.path))
        self._reader = await _connect(str(self.path), uri=False, autocommit=True)
        await _pragmas(self._reader, "PRAGMA query_only=ON")
        self._writer = GroupCommitWriter(conn, str(self.path), audit=self.audit)
        self._writer.start()

    async def _open_readonly(self) -> None:
        if not self.path.exists():
            raise StorageError(f"{self.path}: no such database (a read-only store creates none)")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        self._reader = await _connect(uri, uri=True, autocommit=True)
        await schema.check_version(self._reader, str(self.path))

    async def close(self) -> None:
        """Flush pending appends, checkpoint the WAL, close connections, release the lock.

        Idempotent; afterwards every method raises StoreClosed.
        """
        if self._state == "closed":
            if self._closing is not None:  # a concurrent close: finish with the first one
                await asyncio.shield(self._closing)
            return
        self._state = "closed"
        self._closing = asyncio.ensure_future(self._teardown())
        await asyncio.shield(self._closing)

    async def abandon(self) -> None:
        """Let go of the file as a killed process does, for crash tests
        (:func:`tether.testing.crash_and_recover`): the writer stops where it is (queued
        writes are lost, a transaction not committed rolls back when its connection closes), no
        WAL checkpoint, and the lock goes as the OS drops a dead holder's. Closed afterwards.
        """
        if self._state == "closed":
            if self._closing is not None:  # a close in progress: the file is free once it is
                await asyncio.shield(self._closing)
            return
        self._state = "closed"
        writer, self._writer = self._writer, None
        reader, self._reader = self._reader, None
        conn, self._writer_conn = self._writer_conn, None
        try:
            if writer is not None:
                await writer.abandon()
        finally:
            try:
                for c in (reader, conn):
                    if c is not None:
                        await c.close()  # sqlite3 closes without committing
            finally:
                self._lock.release()

    async def _teardown(self) -> None:
        writer, self._writer = self._writer, None
        reader, self._reader = self._reader, None
        conn, self._writer_conn = self._writer_conn, None
        # Each step on its own: one failing must not leak the others' connections (aiosqlite
        # threads keep a process alive), and the lock goes last.
        try:
            if writer is not None:
                await writer.close()
        finally:
            try:
                if reader is not None:
                    await reader.close()
            finally:
                try:
                    if conn is not None:
                        await _checkpoint_and_close(conn, self.path)
                finally:
                    self._lock.release()


async def _connect(database: str, uri: bool, autocommit: bool) -> aiosqlite.Connection:
    # Readers run in autocommit so no read transaction stays open between calls; the writer
    # uses the sqlite3 module's implicit BEGIN before its first insert of a batch.
    try:
        conn = await aiosqlite.connect(
            database, uri=uri, isolation_level=None if autocommit else ""
        )
    except sqlite3.Error as exc:
        raise StorageError(f"{database}: cannot open database: {exc}") from exc
    await conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    return conn


async def _pragmas(conn: aiosqlite.Connection, *statements: str) -> None:
    for statement in statements:
        await conn.execute(statement)


async def _checkpoint_and_close(conn: aiosqlite.Connection, path: Path) -> None:
    try:
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        # Not fatal: the WAL is replayed at the next open.
        log.warning("%s: WAL checkpoint at close failed: %s", path, exc)
    finally:
        await conn.close()
