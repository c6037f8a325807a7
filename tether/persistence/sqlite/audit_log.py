"""``SqliteAuditLog``: the audit log of one open :class:`SqliteStore` (see
``tether.persistence.audit_chain``), reading on the store's reader connection and writing
signatures through its one writer (I6).

Example::

    log = store.audit_log()
    rows = await log.read_chained("exec_1")
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import aiosqlite

from tether.persistence.audit_chain import ChainedJournal, ChainHead, HeadSignature
from tether.persistence.sqlite import audit_ops
from tether.persistence.sqlite.writer import GroupCommitWriter


class SqliteAuditLog:
    """The :class:`~tether.persistence.audit_chain.AuditLog` of a SQLite store.

    ``reading`` and ``writing`` are the store's accessors, so a closed store refuses here
    as it does everywhere (``writing`` raises on a read-only store).
    """

    def __init__(
        self,
        reading: Callable[[], aiosqlite.Connection],
        writing: Callable[[], GroupCommitWriter],
        chaining: bool,
    ) -> None:
        self._reading = reading
        self._writing = writing
        self.chaining = chaining

    async def read_chained(self, execution_id: str) -> ChainedJournal:
        return await audit_ops.read_chained(self._reading(), execution_id)

    async def read_signatures(self, execution_id: str) -> list[HeadSignature]:
        return await audit_ops.read_signatures(self._reading(), execution_id)

    async def audited_executions(self) -> list[str]:
        return await audit_ops.audited_executions(self._reading())

    async def unsigned_heads(self) -> list[ChainHead]:
        return await audit_ops.unsigned_heads(self._reading())

    def take_heads(self) -> list[ChainHead]:
        return self._writing().take_heads()

    async def put_signatures(self, signatures: Sequence[HeadSignature]) -> None:
        if signatures:
            job = functools.partial(audit_ops.put_signatures, signatures=list(signatures))
            await self._writing().submit(job)
