"""The in-process pool's work items that have no row while they run.

An item created leased to the pool (``local``, fence 1) is not written in the turn that
creates it: the pool lives and dies with the engine and reports straight to its execution
actor, which refuses a late or duplicate outcome by (node, dispatch) itself, and after a
restart the journal says which hand-outs are in flight. So the row would buy nothing for an
item that completes, and writing then settling it cost a third of a step's CPU.

The turn that journals such an item's outcome writes what the table must show: completed
or cancelled, nothing; failed, dead or parked, the row as it was created, inserted and
settled in the same transaction (inserts come first), so the dead-letter view and parks work
as for every other item, and a parked item is row-backed from then on (the scheduler grants
it again). Recovery writes a pending row for every hand-out in flight that has none
(``Store.reissue``), except those this engine's pool still holds (queued or running): the
services keep each execution's ``PoolItems``, so an execution actor restarted by its
supervisor (the engine and its pool still running) neither reissues them nor forgets they
have no row. One the pool no longer holds (its outcome was lost with the failed actor) is
reissued and runs again.

Example (what ExecutionActor._turn does)::

    pool = services.pool_items_of(execution_id)   # outlives a restarted actor instance
    items_to_write, settles_to_write = pool.for_turn(items, settles)
    await store.append(Turn(..., work_items=tuple(items_to_write), ...))
    pool.committed(items, settles)
"""

from __future__ import annotations

from tether.persistence.contract import Settle, WorkItemRow
from tether.runtime.scheduler import LOCAL_OWNER

#: Outcomes after which an unwritten item never needs a row.
_ROWLESS = frozenset({"completed", "cancelled"})


class PoolItems:
    """One execution's pool items without a row, by work item id (their rows as created)."""

    __slots__ = ("_arriving", "_rows", "inline")

    def __init__(self) -> None:
        self._rows: dict[str, WorkItemRow] = {}
        #: Outcomes put in the actor's mailbox and not yet taken from it.
        self._arriving: set[str] = set()
        #: The item the actor runs (or has queued to run) in its own task, if any: a cancel
        #: of the execution interrupts it before the cancel waits its turn.
        self.inline: str | None = None

    def has(self, work_item_id: str) -> bool:
        """Was this item created without a row and not settled since?"""
        return work_item_id in self._rows

    def arriving(self, work_item_id: str) -> None:
        """Its outcome is on its way to the actor (about to be put in its mailbox)."""
        if work_item_id in self._rows:
            self._arriving.add(work_item_id)

    def taken(self, work_item_id: str) -> None:
        """The actor took the outcome from its mailbox: if its turn fails, it is lost."""
        self._arriving.discard(work_item_id)

    def awaited(self, work_item_id: str) -> bool:
        """Is its outcome waiting in the actor's mailbox (for a restarted actor to take)?"""
        return work_item_id in self._arriving

    def drop(self, work_item_id: str) -> None:
        """The item has a row now (reissued): settle it like any other."""
        self._rows.pop(work_item_id, None)
        self._arriving.discard(work_item_id)

    def for_turn(
        self, items: list[WorkItemRow], settles: list[Settle]
    ) -> tuple[list[WorkItemRow], list[Settle]]:
        """The work items and settles a turn writes, given those it creates and settles."""
        # Loops, not comprehensions: this runs every step, mostly with one item or none.
        written: list[WorkItemRow] = []
        created: dict[str, WorkItemRow] = {}
        for item in items:
            if item.lease_owner == LOCAL_OWNER:
                created[item.work_item_id] = item
            else:
                written.append(item)
        if not settles or (not self._rows and not created):
            return written, settles  # nothing unwritten to settle: the turn as derived
        out: list[Settle] = []
        inserted: set[str] = set()
        for settle in settles:
            wid = settle.work_item_id
            row = self._rows.get(wid) or created.get(wid)
            if row is None or wid in inserted:
                out.append(settle)
            elif settle.status not in _ROWLESS:
                # Failed, dead or parked: the table shows it as it shows every other item.
                written.append(row)
                inserted.add(wid)
                out.append(settle)
        return written, out

    def committed(self, items: list[WorkItemRow], settles: list[Settle]) -> None:
        """After the turn committed: its pool items are unwritten until settled; a settled
        one is done, or has its row now."""
        rows = self._rows
        for item in items:
            if item.lease_owner == LOCAL_OWNER:
                rows[item.work_item_id] = item
        if rows:
            arriving = self._arriving  # mostly empty: no discard then
            for settle in settles:
                rows.pop(settle.work_item_id, None)
                if arriving:
                    arriving.discard(settle.work_item_id)
