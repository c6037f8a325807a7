"""``OwnershipKeeper``: an engine's side of sharing one database with other engines.

At open it registers the engine, takes over the unfinished executions nobody owns (written
by a single engine before) and those of expired engines, and puts their leased items back to
pending, all before the runtime's recovery reads what it owns. Then two loops run:

- every ``ttl / 3``: renew the engine's row (one statement for all its ownerships). A renewal
  that finds the row had expired (the engine was paused, or cut off from the database, past
  its TTL) asks which executions it lost and stops their actors here; an append for one of
  them is refused anyway (the fence), this only lets go sooner.
- every ``poll`` seconds: answer the inbox (signals other engines forwarded for runs owned
  here), wake this engine's waiters on runs owned elsewhere (``run.result()`` reads the
  journal again), and every ``ttl / 2`` claim the executions of expired engines and recover
  them as an engine restart does.

A clean close deletes the engine's row, so the others claim its unfinished runs at once
instead of after the TTL.

Example::

    keeper = OwnershipKeeper(store.ownership, clock, hooks, ttl_ms=10_000)
    await keeper.open()                  # before recovery
    task_group.start_soon(keeper.run)
    ...
    await keeper.close()
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from tether.clock import Clock, now_ms
from tether.persistence.contract import StorageError, StoreClosed, WorkItemRow
from tether.persistence.ownership import OwnershipStore
from tether.runtime.ownership.inbox import decode_signal, encode_answer, encode_refusal
from tether.runtime.scheduler_messages import WorkReady

log = logging.getLogger("tether.ownership")

#: How often the inbox is read and remote waiters are woken.
DEFAULT_POLL_SECS = 0.1
#: Orphans taken over per claim (the rest in the next rounds, or by other engines).
CLAIM_BATCH = 500


@dataclass
class KeeperHooks:
    """What the keeper asks of the runtime."""

    #: Recover what this engine owns and does not run yet (as after a restart).
    recover: Callable[[], Awaitable[None]]
    #: Stop acting for an execution this engine lost (stop its actor, if live).
    let_go: Callable[[str], Awaitable[None]]
    #: Ask the execution's actor here (woken if passivated): ``(answered, result)``.
    ask: Callable[[str, object], Awaitable[tuple[bool, object]]]
    #: Wake waiters of executions not live here (their result may be in the journal now).
    wake_remote_waiters: Callable[[], None]
    #: Tell the scheduler about items that are pending again.
    tell_scheduler: Callable[[object], None]


class OwnershipKeeper:
    """See the module docstring."""

    def __init__(
        self,
        ownership: OwnershipStore,
        clock: Clock,
        hooks: KeeperHooks,
        ttl_ms: int,
        poll_secs: float = DEFAULT_POLL_SECS,
    ) -> None:
        if ttl_ms < 300:
            raise ValueError(f"ownership_ttl_ms must be >= 300 ms, got {ttl_ms}")
        self.ownership = ownership
        self.engine_id = ownership.engine_id
        self._clock = clock
        self._hooks = hooks
        self._ttl_ms = ttl_ms
        self._poll = poll_secs
        self._closed = False
        #: Executions taken over from expired engines by this engine (for tests and status).
        self.claimed_total = 0
        #: Executions this engine lost to another after a lapse.
        self.lost_total = 0

    async def open(self) -> None:
        """Register, then own the unowned and orphaned executions (before recovery)."""
        await self.ownership.register(self._ttl_ms)
        taken = await self.ownership.adopt_unowned()
        while True:
            batch = await self.ownership.claim_orphans(CLAIM_BATCH)
            taken += batch
            if len(batch) < CLAIM_BATCH:
                break
        await self._release(taken)
        if taken:
            log.info("engine %s took over %d executions at start", self.engine_id, len(taken))

    def halt(self) -> None:
        """Stop renewing, claiming and answering (the engine is stopping); see ``close``."""
        self._closed = True

    async def close(self) -> None:
        """Resign: the others claim this engine's unfinished runs without waiting the TTL."""
        self._closed = True
        try:
            await self.ownership.resign()
        except StorageError as exc:  # closing anyway: the TTL hands them over instead
            log.warning("engine %s could not resign (%s); its runs move after the TTL",
                        self.engine_id, exc)  # fmt: skip

    async def run(self) -> None:
        """The renewal loop and the poll loop, until cancelled or closed."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_loop)
            tg.start_soon(self._poll_loop)

    # -- renewal --------------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        while not self._closed:
            await self._clock.sleep(self._ttl_ms / 3000)
            if self._closed:
                return
            try:
                lapsed = await self.ownership.renew(self._ttl_ms)
                if lapsed:
                    await self._after_lapse()
            except StoreClosed:
                return
            except StorageError as exc:
                log.error("engine %s could not renew its ownerships: %s", self.engine_id, exc)

    async def _after_lapse(self) -> None:
        lost = await self.ownership.reconcile()
        self.lost_total += len(lost)
        log.warning(
            "engine %s: its ownership had expired; %d of its executions were taken over by "
            "other engines and are let go here", self.engine_id, len(lost),
        )  # fmt: skip
        for eid in lost:
            await self._hooks.let_go(eid)

    # -- polling --------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        rounds_per_claim = max(1, int(self._ttl_ms / 2000 / self._poll))
        rounds = 0
        while not self._closed:
            await self._clock.sleep(self._poll)
            if self._closed:
                return
            rounds += 1
            try:
                await self._answer_inbox()
                self._hooks.wake_remote_waiters()
                if rounds % rounds_per_claim == 0:
                    await self.claim()
            except StoreClosed:
                return
            except StorageError as exc:
                log.error("engine %s: ownership poll failed: %s", self.engine_id, exc)

    async def claim(self) -> list[str]:
        """Take over the executions of expired engines now; recover them here."""
        claimed: list[str] = []
        while True:
            batch = await self.ownership.claim_orphans(CLAIM_BATCH)
            claimed += batch
            if len(batch) < CLAIM_BATCH:
                break
        # Owner rows of runs that finished here since: nothing left to own (a late start of
        # the same id then finds it free, and its actor finds it finished).
        await self.ownership.forget_finished()
        if not claimed:
            return claimed
        self.claimed_total += len(claimed)
        log.warning("engine %s took over %d executions of expired engines",
                    self.engine_id, len(claimed))  # fmt: skip
        for row in await self._release(claimed):
            self._hooks.tell_scheduler(WorkReady(row.queue, row.not_before_ms))
        await self._hooks.recover()
        return claimed

    async def _release(self, claimed: list[str]) -> list[WorkItemRow]:
        """Their leases (the dead engine's pool, its workers) back to pending, fence kept:
        a late report from their holder is refused once they are granted again."""
        return await self.ownership.release_items(claimed, now_ms(self._clock))

    async def _answer_inbox(self) -> None:
        for message_id, eid, body in await self.ownership.open_messages():
            try:
                answered, result = await self._hooks.ask(eid, decode_signal(body))
                answer = encode_answer(answered, result)
            except StoreClosed:
                raise
            except Exception as exc:  # a refusal (not pending, not allowed...) travels back
                answer = encode_refusal(exc)
            await self.ownership.answer(message_id, answer)
