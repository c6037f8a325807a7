"""``PostgresAuditLog``: the audit log of one open :class:`PostgresStore` (see
``tether.persistence.audit_chain``): reads on the store's reader connection, signatures
written as a job of its one writer.

Example::

    journal = await store.audit_log().read_chained("exec_1")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tether.persistence.audit_chain import ChainedJournal, ChainHead, HeadSignature
from tether.persistence.postgres import audit_ops
from tether.persistence.postgres.writer import GroupWriter


class PostgresAuditLog:
    """The :class:`~tether.persistence.audit_chain.AuditLog` of a Postgres store; ``read``
    and ``job`` are the store's own (a closed or read-only store refuses as it does)."""

    def __init__(
        self,
        read: Callable[..., Awaitable[Any]],
        job: Callable[..., Awaitable[Any]],
        writing: Callable[[], GroupWriter],
        chaining: bool,
    ) -> None:
        self._read = read
        self._job = job
        self._writing = writing
        self.chaining = chaining

    async def read_chained(self, execution_id: str) -> ChainedJournal:
        journal: ChainedJournal = await self._read(audit_ops.read_chained, execution_id)
        return journal

    async def read_signatures(self, execution_id: str) -> list[HeadSignature]:
        found: list[HeadSignature] = await self._read(audit_ops.read_signatures, execution_id)
        return found

    async def audited_executions(self) -> list[str]:
        found: list[str] = await self._read(audit_ops.audited_executions)
        return found

    async def unsigned_heads(self) -> list[ChainHead]:
        found: list[ChainHead] = await self._read(audit_ops.unsigned_heads)
        return found

    def take_heads(self) -> list[ChainHead]:
        return self._writing().take_heads()

    async def put_signatures(self, signatures: Sequence[HeadSignature]) -> None:
        if signatures:
            await self._job(audit_ops.put_signatures, list(signatures))
