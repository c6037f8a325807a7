"""WorkHandOut: what an execution actor does with the work items a committed turn created.

Each item goes where its row says: to the in-process pool (one async tool at a time claimed
to run in the actor's own task, see ``ExecutionActor._on_inline``), to a remote worker through
the scheduler, or to the scheduler's queue to be granted. Only called after the turn that
created the items is durable (I1).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from tether.actors import ActorContext, ActorStopped, MailboxFull
from tether.persistence.contract import WorkItemRow
from tether.runtime.executor import WorkItem
from tether.runtime.pool_items import PoolItems
from tether.runtime.scheduler import LOCAL_OWNER
from tether.runtime.scheduler_messages import ExecutionClosed, Leased, WorkReady
from tether.runtime.services import Services


class RunInline(msgspec.Struct, frozen=True, gc=False):
    """Run a claimed pool item in this actor's own task (sent to itself after the turn that
    created it: the turn's asker is answered first)."""

    item: WorkItem


class WorkHandOut:
    """One execution actor's hand-out of committed work (internal to the runtime)."""

    __slots__ = ("_pool", "_s", "chaining", "next_inline", "task")

    def __init__(self, services: Services, pool: PoolItems) -> None:
        self._s = services
        self._pool = pool
        #: Inside the actor's inline loop: a turn's inline item is run next, by no message.
        self.chaining = False
        self.next_inline: WorkItem | None = None
        #: The actor's task (its cell's, the same for its life), once known.
        self.task: asyncio.Task[Any] | None = None

    def hand_out(self, items: list[WorkItemRow], context: ActorContext) -> None:
        """Start what the committed turn created: leased to the local pool, leased to a
        remote worker (the scheduler sends it), or pending (the scheduler grants it)."""
        remote = []
        inline: WorkItem | None = None
        local = self._s.local
        for item in items:
            if item.lease_owner == LOCAL_OWNER:
                assert local is not None
                if inline is None and self._pool.inline is None:
                    inline = local.start_or_claim(item)
                else:
                    local.start_created(item)
            elif item.lease_owner is not None:
                remote.append(item)
            else:
                self._s.tell_scheduler(WorkReady(item.queue, item.not_before_ms))
        if remote:
            self._s.tell_scheduler(Leased(remote))
        if inline is not None:
            if self.chaining and not context.queued and not context.stopping:
                # The inline loop runs it next, in this message. Not past a queued message
                # (served first) nor a stop (the message to itself is refused: the pool runs
                # it, where a shutdown interrupts it).
                self.next_inline = inline
                self._pool.inline = inline.work_item_id
            else:
                self.queue_inline(inline, context)

    def queue_inline(self, inline: WorkItem, context: ActorContext) -> None:
        """Run a claimed item by a message to the actor (served after what is queued)."""
        local = self._s.local
        assert local is not None
        try:
            context.self_ref.tell_nowait(RunInline(inline))
        except (MailboxFull, ActorStopped):
            if self._pool.inline == inline.work_item_id:
                self._pool.inline = None
            local.to_pool(inline)  # no room for it (or stopping): the pool runs it
        else:
            self._pool.inline = inline.work_item_id

    def give_back(self, owner: str) -> None:
        """Free the credit taken for an item that was never created."""
        entry = self._s.ledger.get(owner)
        if entry is not None:
            self._s.ledger.give_back(entry)

    def close_items(self, work_item_ids: list[str], reason: str) -> None:
        """Stop the work of items settled as cancelled, wherever it runs."""
        local = self._s.local
        if local is not None:
            for wid in work_item_ids:
                local.cancel(wid)
        self._s.tell_scheduler(ExecutionClosed(work_item_ids, reason))
