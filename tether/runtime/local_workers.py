"""The embedded runtime's in-process worker pool as one of the scheduler's workers.

It runs leased work items like a ``tether worker`` process does (fenced, with the same
timeouts, retries and parks), from two sources: items its execution actors created leased to
it (when a slot was free), and pending items the scheduler granted it against its free slots.
It skips the wire: no heartbeats and no lease expiry (it cannot die without the engine), and
its outcomes go straight to their execution actors, whose turns settle them with the fence.
An item created leased to it has no row while it runs (``tether.runtime.pool_items``): the
execution actor refuses a late or duplicate outcome by (node, dispatch) itself.

Example (what the runtime does)::

    slots = Credit(64)
    local = LocalWorkers(InProcessExecutor(tools, clock, 64), slots, deliver)
    local.bind(task_group)
    scheduler_ref.tell_nowait(local.joined())
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.abc

from tether.persistence.contract import WorkItemRow
from tether.runtime.executor import InProcessExecutor, NodeExecutor, NodeOutcome, WorkItem
from tether.runtime.ledger import Credit
from tether.runtime.scheduler import LOCAL_OWNER
from tether.runtime.scheduler_messages import LiveLease, WorkerJoined
from tether.runtime.work import WorkSpec, decode_spec


class LocalWorkers:
    """A :class:`~tether.runtime.scheduler.WorkerLink` onto a :class:`NodeExecutor`."""

    def __init__(
        self,
        executor: NodeExecutor,
        slots: Credit,
        deliver: Callable[[NodeOutcome], Awaitable[bool]],
    ) -> None:
        self._executor = executor
        self.slots = slots
        self._deliver = deliver

    def bind(self, task_group: anyio.abc.TaskGroup) -> None:
        self._executor.bind(task_group, self._report)

    def joined(self) -> WorkerJoined:
        return WorkerJoined(LOCAL_OWNER, self, None, self.slots.free, local_credit=self.slots)

    def start_created(self, row: WorkItemRow) -> None:
        """Run an item its execution created leased to this pool (its slot is taken).

        The spec is decoded from the row's payload: the tool gets a private copy of its
        arguments, never the dicts the execution's state holds.
        """
        self._submit(row, decode_spec(row.payload), row.fence)

    def start_or_claim(self, row: WorkItemRow) -> WorkItem | None:
        """Like :meth:`start_created`, except for an async tool that may run inline: that one
        is claimed and returned, for its execution actor to run in its own task
        (:meth:`run_inline`) instead of a worker task (the hop costs a step ~8 us)."""
        spec = decode_spec(row.payload)
        executor = self._executor
        if isinstance(executor, InProcessExecutor) and executor.is_inline(spec.tool):
            item = _work_item(row, spec, row.fence)
            if executor.claim(row.work_item_id):
                return item
            self.slots.give()  # already here: the second hand-out holds no slot
            return None
        self._submit(row, spec, row.fence)
        return None

    def to_pool(self, item: WorkItem) -> None:
        """Run a claimed item on the pool after all (its actor could not queue it)."""
        assert isinstance(self._executor, InProcessExecutor)
        self._executor.release_claim(item.work_item_id)
        if not self._executor.submit(item):
            self.slots.give()

    async def run_inline(
        self, item: WorkItem, task: asyncio.Task[Any] | None = None
    ) -> NodeOutcome | None:
        """Run a claimed item in the calling task (``task``, when the caller knows it); None
        if it was cancelled (``cancel``)."""
        assert isinstance(self._executor, InProcessExecutor)
        try:
            outcome = await self._executor.run_claimed(item, task)
        except BaseException:
            self.slots.give()  # its task was cancelled from outside: it runs here no more
            raise
        if outcome is not None:
            self.slots.give()  # finished running: the slot is free before the outcome commits
        return outcome

    # -- WorkerLink -----------------------------------------------------------------------

    def start(self, lease: LiveLease) -> bool:
        self._submit(lease.row, lease.spec, lease.fence)
        return True

    def quiet(self) -> bool:
        return False  # in this process: it runs what it takes

    def stop(self, lease: LiveLease, reason: str) -> None:
        self.cancel(lease.work_item_id)

    def answer(self, work_item_id: str, fence: int, accepted: bool, reason: str) -> None:
        pass  # the pool waits for no answer

    def unknown(self, leases: list[tuple[str, int]]) -> None:
        pass  # the pool sends no heartbeats

    # -- the pool -------------------------------------------------------------------------

    def holds(self, work_item_id: str) -> bool:
        """Is the item queued, running or being reported by the pool (its outcome still to
        come)?"""
        return self._executor.holds(work_item_id)

    def cancel(self, work_item_id: str) -> None:
        """Stop an item if the pool has it (queued or running); its slot is free at once."""
        if self._executor.cancel(work_item_id):
            self.slots.give()

    def _submit(self, row: WorkItemRow, spec: WorkSpec, fence: int) -> None:
        started = self._executor.submit(_work_item(row, spec, fence))
        if not started:
            self.slots.give()  # it was already running: the second hand-out holds no slot

    async def _report(self, out: NodeOutcome) -> None:
        self.slots.give()  # finished running: the slot is free before the outcome commits
        await self._deliver(out)


def _work_item(row: WorkItemRow, spec: WorkSpec, fence: int) -> WorkItem:
    return WorkItem(
        work_item_id=row.work_item_id,
        execution_id=row.execution_id,
        node_id=row.node_id,
        attempt=row.attempt,
        dispatch=row.dispatch,
        tool=spec.tool,
        input=spec.input,
        timeout_secs=spec.timeout_secs,
        fence=fence,
    )
