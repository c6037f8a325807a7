"""``rt.memory``: durable memory over the journal's database, scoped per user or tenant.

Facts are rows beside the journal (``tether.persistence.facts``), written once per id; the
current ones (``supersedes`` always wins) most relevant to a topic are chosen within a token
budget by a pluggable scorer (lexical by default).

Example::

    async with Runtime("sqlite:///rt.db") as rt:
        await rt.memory.write(user="u1", subject="location", content="Amsterdam")
        ctx = await rt.memory.context_for(user="u1", topic="where to meet", budget_tokens=400)
        ctx.text                       # "location: Amsterdam"
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tether.agents.memory.context import MemoryContext, approx_tokens, context_for
from tether.agents.memory.facts import Fact, current_facts
from tether.agents.memory.scoring import Scorer
from tether.clock import Clock
from tether.persistence.contract import Store
from tether.persistence.facts import FactRow, FactStore


class MemoryUnavailable(RuntimeError):
    """The runtime's store keeps no facts (a store written before durable memory)."""


def fact_of(row: FactRow) -> Fact:
    return Fact(
        row.fact_id, row.scope, row.subject, row.content, row.source_run, row.at_ms,
        row.supersedes, row.written,
    )  # fmt: skip


class Memory:
    """Durable memory over ``store``; ``scorer`` ranks facts for :meth:`context_for`
    (default: :class:`tether.agents.memory.LexicalScorer`), ``count_tokens`` measures the
    budget (default: a token per four characters)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        scorer: Scorer | None = None,
        count_tokens: Callable[[str], int] = approx_tokens,
    ) -> None:
        if not isinstance(store, FactStore):
            raise MemoryUnavailable(f"the store {type(store).__name__} keeps no memory facts")
        self._store: FactStore = store
        self._clock = clock
        self.scorer = scorer
        self._count_tokens = count_tokens

    async def write(
        self,
        *,
        user: str,
        subject: str,
        content: str,
        supersedes: str | None = None,
        source_run: str = "",
        fact_id: str | None = None,
    ) -> tuple[Fact, bool]:
        """Remember ``subject: content`` for ``user``; a newer fact about the same subject
        replaces older ones, and ``supersedes`` names one it replaces whatever its subject.
        ``fact_id`` makes the write idempotent (the same id again writes nothing); default a
        fresh one. Returns the fact and whether it was written now. Raises ValueError for an
        empty user, subject or id.

        Example::

            fact, new = await rt.memory.write(user="u1", subject="location", content="Pune")
        """
        row = FactRow(
            fact_id or uuid.uuid4().hex, user, subject, content, source_run,
            int(self._clock.now() * 1000), supersedes,
        )  # fmt: skip
        written = await self._store.write_fact(row)
        if not written:  # the first write of this id stands: answer with what is stored
            stored = [r for r in await self._store.read_facts(user) if r.fact_id == row.fact_id]
            row = stored[0] if stored else row
        return fact_of(row), written

    async def facts(self, user: str, *, current: bool = True) -> list[Fact]:
        """``user``'s facts, oldest first: the current ones (default) or every one written.

        Example::

            [f.content for f in await rt.memory.facts("u1")]      # ["Amsterdam"]
        """
        every = [fact_of(r) for r in await self._store.read_facts(user)]
        return current_facts(every) if current else every

    async def context_for(
        self, *, user: str, topic: str, budget_tokens: int = 400, scorer: Scorer | None = None
    ) -> MemoryContext:
        """``user``'s current facts most relevant to ``topic`` whose lines fit
        ``budget_tokens`` (see :func:`tether.agents.memory.context_for`).

        Example::

            ctx = await rt.memory.context_for(user="u1", topic="travel", budget_tokens=400)
        """
        return context_for(
            await self.facts(user, current=False), user=user, topic=topic,
            budget_tokens=budget_tokens, scorer=scorer or self.scorer,
            count_tokens=self._count_tokens,
        )  # fmt: skip
