"""``PostgresOwnership``: what an engine sharing a Postgres schema asks of it besides the Store
contract: its liveness, the executions it owns, orphans to claim, and the inbox.

Every write is a job of the store's writer (its own transaction), every read a statement on
its reader. ``fences.held`` is kept in step: what this engine owns and the fence it holds,
which the writer checks each append against (:mod:`tether.persistence.ownership`).

Example::

    own = store.ownership
    await own.register(ttl_ms=10_000)
    claimed = await own.claim_orphans(limit=500)   # execution ids now owned here
    await own.renew(ttl_ms=10_000)                  # one statement, however many are owned
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from tether.persistence.contract import WorkItemRow
from tether.persistence.ownership import EngineFences, OwnedElsewhere
from tether.persistence.postgres import ownership_ops

Read = Callable[..., Awaitable[Any]]
Job = Callable[..., Awaitable[Any]]


class PostgresOwnership:
    """See the module docstring; built by ``PostgresStore.ownership``."""

    def __init__(self, fences: EngineFences, read: Read, job: Job) -> None:
        self.fences = fences
        self.engine_id = fences.engine_id
        self._read = read
        self._job = job

    async def register(self, ttl_ms: int) -> None:
        await self._job(ownership_ops.register_engine, self.engine_id, ttl_ms)

    async def renew(self, ttl_ms: int) -> bool:
        """Extend this engine's life; True when it had lapsed (see ``reconcile``)."""
        return bool(await self._job(ownership_ops.renew_engine, self.engine_id, ttl_ms))

    async def resign(self) -> None:
        await self._job(ownership_ops.resign_engine, self.engine_id)

    async def acquire(self, execution_id: str) -> int:
        """This engine's fence for ``execution_id``, taking it over if nobody (alive) owns
        it; OwnedElsewhere when another live engine does."""
        held = self.fences.held.get(execution_id)
        if held is not None:
            return held
        engine, fence = await self._job(ownership_ops.acquire, execution_id, self.engine_id)
        if engine != self.engine_id:
            raise OwnedElsewhere(execution_id, engine)
        self.fences.held[execution_id] = fence
        return int(fence)

    async def claim_orphans(self, limit: int) -> list[str]:
        claimed = await self._job(ownership_ops.claim_orphans, self.engine_id, limit)
        return self._hold(claimed)

    async def adopt_unowned(self) -> list[str]:
        return self._hold(await self._job(ownership_ops.adopt_unowned, self.engine_id))

    def _hold(self, rows: list[tuple[str, int]]) -> list[str]:
        for eid, fence in rows:
            self.fences.held[eid] = fence
        return [eid for eid, _ in rows]

    async def reconcile(self) -> list[str]:
        """After a lapse: what this engine still owns per the table; returns the executions
        it held here but has lost (dropped from ``fences.held``)."""
        owned: dict[str, int] = await self._read(ownership_ops.owned, self.engine_id)
        lost = [e for e, f in self.fences.held.items() if owned.get(e) != f]
        for eid in lost:
            self.fences.held.pop(eid, None)
        return lost

    async def forget_finished(self) -> int:
        return int(await self._job(ownership_ops.forget_finished, self.engine_id))

    def let_go(self, execution_id: str) -> None:
        """Stop holding ``execution_id`` here (its fence is no longer presented)."""
        self.fences.held.pop(execution_id, None)

    async def release_items(self, execution_ids: Collection[str], now_ms: int) -> list[WorkItemRow]:
        if not execution_ids:
            return []
        rows: list[WorkItemRow] = await self._job(
            ownership_ops.release_items, list(execution_ids), now_ms
        )
        return rows

    async def release_leases(self, owner: str, now_ms: int) -> list[WorkItemRow]:
        """``Store.release_leases`` limited to the executions this engine owns."""
        rows: list[WorkItemRow] = await self._job(
            ownership_ops.release_owned_leases, owner, list(self.fences.held), now_ms
        )
        return rows

    async def live_owner(self, execution_id: str) -> str | None:
        owner: str | None = await self._read(ownership_ops.live_owner, execution_id)
        return owner

    async def live_engines(self) -> list[tuple[str, int]]:
        engines: list[tuple[str, int]] = await self._read(ownership_ops.live_engines)
        return engines

    # -- inbox ----------------------------------------------------------------------------

    async def post(self, execution_id: str, body: bytes) -> int:
        return int(await self._job(ownership_ops.post, execution_id, self.engine_id, body))

    async def open_messages(self, limit: int = 100) -> list[tuple[int, str, bytes]]:
        rows: list[tuple[int, str, bytes]] = await self._read(
            ownership_ops.open_messages, self.engine_id, limit
        )
        return rows

    async def answer(self, message_id: int, body: bytes) -> None:
        await self._job(ownership_ops.answer, message_id, body)

    async def answer_of(self, message_id: int) -> bytes | None:
        body: bytes | None = await self._read(ownership_ops.answer_of, message_id)
        return body

    async def drop_message(self, message_id: int) -> None:
        await self._job(ownership_ops.drop_message, message_id)
