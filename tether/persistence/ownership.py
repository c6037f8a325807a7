"""Execution ownership between engines sharing one database (I5 applied to executions, I6).

Several engines may run on one Postgres schema. Each execution is owned by one engine at a
time through a row ``(execution_id, engine_id, fence)``; the fence only grows, by one each
time another engine takes the execution over. An engine is alive while its row in the
engines table has not expired; it renews that one row (one statement per renewal period,
however many executions it owns). The executions of an engine whose row expired are claimed
by the others (``FOR UPDATE SKIP LOCKED``, fence + 1) and recovered from their journals.

A turn appended for an execution whose owner row is not ``(this engine, the fence it holds)``
is refused with :class:`OwnershipLost` in the append's own transaction: the row is read and
locked (``FOR SHARE``) by the statement that reads the batch's sequence numbers, so a claim
waits for that commit and an append waits for a claim's. The engine then stops acting for
that execution.

SQLite and memory stores are single-engine: asking them for a shared engine is refused.

Example::

    fences = EngineFences("eng_host1_4242")
    fences.held["exec_1"] = 3          # owned, fence 3: appends for exec_1 carry it
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from tether.persistence.contract import StorageError, WorkItemRow

#: Default time an engine's ownerships outlive its last renewal.
DEFAULT_OWNERSHIP_TTL_MS = 10_000


class OwnershipLost(StorageError):
    """This engine no longer owns the execution (another engine claimed it after this one's
    ownership expired): the turn was not written, and this engine must stop acting for it."""

    def __init__(self, execution_id: str, engine_id: str, owner: str | None) -> None:
        self.execution_id = execution_id
        held = f"owned by engine {owner}" if owner else "not owned by any engine"
        super().__init__(
            f"execution {execution_id}: engine {engine_id} no longer owns it ({held}); "
            "its turn was refused and this engine lets it go"
        )


class OwnedElsewhere(StorageError):
    """The execution is owned by another live engine: this one may not act for it."""

    def __init__(self, execution_id: str, owner: str) -> None:
        self.execution_id = execution_id
        self.owner = owner
        super().__init__(f"execution {execution_id} is owned by engine {owner}")


@dataclass
class EngineFences:
    """The executions this engine owns and the fence it holds for each (its writer checks
    every append against the owner row with these)."""

    engine_id: str
    held: dict[str, int] = field(default_factory=dict)


def refuse_shared(url: str) -> ValueError:
    """The error for a shared engine on a store that has one writer."""
    return ValueError(
        f"{url}: several engines can share only a Postgres database; a SQLite or memory "
        "store has one engine (drop --shared, or use postgresql://...)"
    )


class OwnershipStore(Protocol):
    """What an engine sharing the database asks of its store besides the Store contract
    (``PostgresStore.ownership``)."""

    engine_id: str
    fences: EngineFences

    async def register(self, ttl_ms: int) -> None: ...
    async def renew(self, ttl_ms: int) -> bool: ...
    async def resign(self) -> None: ...
    async def acquire(self, execution_id: str) -> int: ...
    async def claim_orphans(self, limit: int) -> list[str]: ...
    async def adopt_unowned(self) -> list[str]: ...
    async def reconcile(self) -> list[str]: ...
    async def forget_finished(self) -> int: ...
    def let_go(self, execution_id: str) -> None: ...
    async def release_items(
        self, execution_ids: Collection[str], now_ms: int
    ) -> list[WorkItemRow]: ...
    async def live_owner(self, execution_id: str) -> str | None: ...
    async def live_engines(self) -> list[tuple[str, int]]: ...
    async def post(self, execution_id: str, body: bytes) -> int: ...
    async def open_messages(self, limit: int = 100) -> list[tuple[int, str, bytes]]: ...
    async def answer(self, message_id: int, body: bytes) -> None: ...
    async def answer_of(self, message_id: int) -> bytes | None: ...
    async def drop_message(self, message_id: int) -> None: ...
