"""``SharedEngine``: what a ``Runtime`` started with ``shared=True`` adds to an engine.

It owns executions through the store's ownership rows (:mod:`tether.persistence.ownership`):
an actor is spawned for an execution only once this engine owns it (``acquire``), and a
signal for a run another live engine owns is forwarded to it through the inbox
(:mod:`tether.runtime.ownership.inbox`). The :class:`OwnershipKeeper` renews, claims and
answers the inbox.

Example::

    engine = SharedEngine(store.ownership, clock, hooks, ttl_ms=10_000)
    await engine.keeper.open()
    answered, state = await engine.forward("exec_1", Approve("approved", "alice"))
"""

from __future__ import annotations

import os
import random
import socket

from tether.clock import Clock
from tether.persistence.contract import Store
from tether.persistence.ownership import OwnershipStore
from tether.runtime.ownership.inbox import Signal, decode_answer, encode_signal
from tether.runtime.ownership.keeper import DEFAULT_POLL_SECS, KeeperHooks, OwnershipKeeper


def new_engine_id(rng: random.Random, name: str | None = None) -> str:
    """A name for this engine process: ``name`` (default host and pid) and a random part.
    Never reused: a restarted process is a new engine, whose claims raise the fences, so the
    old process (paused, not dead) is refused if it wakes; its runs move once its row
    expires."""
    return f"{name or f'{socket.gethostname()}-{os.getpid()}'}-{rng.getrandbits(32):08x}"


def ownership_of(store: Store) -> OwnershipStore | None:
    """The store's ownership side when it was opened for one of several engines."""
    if getattr(store, "fences", None) is None:
        return None
    ownership: OwnershipStore = getattr(store, "ownership")  # noqa: B009 - not in Store
    return ownership


class SharedEngine:
    """See the module docstring."""

    def __init__(
        self,
        ownership: OwnershipStore,
        clock: Clock,
        hooks: KeeperHooks,
        ttl_ms: int,
        poll_secs: float = DEFAULT_POLL_SECS,
    ) -> None:
        self.ownership = ownership
        self.engine_id = ownership.engine_id
        self._clock = clock
        self._poll = poll_secs
        self.keeper = OwnershipKeeper(ownership, clock, hooks, ttl_ms, poll_secs)

    async def acquire(self, execution_id: str) -> None:
        """Own ``execution_id`` before acting for it; OwnedElsewhere when another live
        engine does."""
        await self.ownership.acquire(execution_id)

    async def owned_elsewhere(self, execution_id: str) -> bool:
        """Does another live engine own it (so a signal for it is forwarded)?"""
        if execution_id in self.ownership.fences.held:
            return False
        owner = await self.ownership.live_owner(execution_id)
        return owner is not None and owner != self.engine_id

    async def forward(self, execution_id: str, message: Signal) -> tuple[bool, object]:
        """Post ``message`` for the owner of ``execution_id`` and wait for its answer (the
        owner's, or whoever claims the run if the owner dies first): ``(answered, result)``,
        or the owner's refusal raised here."""
        message_id = await self.ownership.post(execution_id, encode_signal(message))
        try:
            while True:
                body = await self.ownership.answer_of(message_id)
                if body is not None:
                    return decode_answer(body)
                await self._clock.sleep(self._poll)
        finally:
            await self.ownership.drop_message(message_id)
