"""The writer's copy of each open work item's status and fence, for checks without SQL.

Like the sequence cache, it is authoritative because the writer is the only writer: it is
filled from the table on first use of an id (one query per batch for all unknown ids, except
ids the batch only creates, presumed absent and confirmed by the insert count) and moves only
after a commit. Finished items are dropped, so it holds open items only; a finished item is
read back (and refused) if anyone names it again. The SQL statements repeat
the checks, so a wrong copy would fail a write loudly instead of corrupting the table.

Example::

    book = FenceBook()
    ids = book.unknown(turns, heartbeat_ids)
    book.remember(ids, await lease_ops.item_states(conn, ids))
    changes = book.check_turn(turn, ahead={})     # dict of new states, or a StorageError
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tether.persistence.contract import (
    TERMINAL_WORK_STATUSES,
    StorageError,
    Turn,
    WorkItemRow,
)
from tether.persistence.leases import ItemState, after_settle, heartbeat_problem, settle_problem


class FenceBook:
    """Status and fence per work item; see the module docstring."""

    def __init__(self) -> None:
        self._items: dict[str, ItemState] = {}
        # Ids looked up in the current batch and found absent (cleared by ``remember``).
        self._absent: set[str] = set()
        # Ids the current batch creates and nobody else names, presumed absent without a
        # lookup; the writer checks that each was really inserted (``absent_count``).
        self._presumed: set[str] = set()

    def __len__(self) -> int:
        return len(self._items)

    def unknown(
        self, turns: Iterable[Turn], heartbeat_ids: Iterable[str], presume_created: bool = False
    ) -> set[str]:
        """Ids named by these turns or heartbeats that the book has not loaded.

        With ``presume_created``, ids that the turns only create are not asked for: a new
        item's id is new (execution, node, dispatch), so a lookup per step found nothing but
        cost the batch a query. They count as absent, and the caller must check that the
        rows inserting them all went in (``absent_count``), and retry with lookups if not.
        """
        ids = set(heartbeat_ids)
        created: set[str] = set()
        for turn in turns:
            for settle in turn.settles:
                ids.add(settle.work_item_id)
            for row in turn.work_items:
                created.add(row.work_item_id)
        if presume_created:
            self._presumed = {i for i in created if i not in ids and i not in self._items}
        else:
            self._presumed = set()
            ids |= created
        return {i for i in ids if i not in self._items}

    def remember(self, asked: Iterable[str], found: Mapping[str, ItemState]) -> None:
        """Record a lookup: ``found`` states, and every other id in ``asked`` as absent."""
        self._items.update(found)
        self._absent = {i for i in asked if i not in found}

    def absent_count(self, work_item_ids: Iterable[str]) -> int:
        """How many distinct ids of these the book holds as absent (looked up or presumed):
        inserting their rows must insert exactly that many."""
        return len(
            {
                i
                for i in work_item_ids
                if i not in self._items and (i in self._absent or i in self._presumed)
            }
        )

    def state(self, work_item_id: str, ahead: Mapping[str, ItemState]) -> ItemState | None:
        """The state as of ``ahead`` (changes accepted earlier in this batch), then the book.

        None: the item does not exist (it was looked up this batch and not found).
        """
        state = ahead.get(work_item_id)
        if state is not None:
            return state
        state = self._items.get(work_item_id)
        if (
            state is None
            and work_item_id not in self._absent
            and work_item_id not in self._presumed
        ):
            raise AssertionError(f"work item {work_item_id} was not looked up")
        return state

    def check_turn(
        self, turn: Turn, ahead: dict[str, ItemState]
    ) -> dict[str, ItemState] | StorageError:
        """The states ``turn`` leaves its items in, or why it is refused. Inserts come first
        (an existing id is left alone), then the settles in order."""
        local: dict[str, ItemState] = {}
        # What this turn changed first, then the batch (``ahead``), then the book: two plain
        # lookups instead of a ChainMap view, which cost a share of every append.
        for row in turn.work_items:
            wid = row.work_item_id
            if wid not in local and self.state(wid, ahead) is None:
                local[wid] = ItemState(row.status, row.fence)
        for settle in turn.settles:
            wid = settle.work_item_id
            state = local.get(wid) or self.state(wid, ahead)
            problem = settle_problem(settle, state)
            if problem is not None:
                return problem
            assert state is not None
            local[wid] = after_settle(settle, state)
        return local

    def check_heartbeat(self, work_item_id: str, fence: int) -> StorageError | None:
        return heartbeat_problem(work_item_id, fence, self.state(work_item_id, {}))

    def commit(self, changes: Mapping[str, ItemState]) -> None:
        """After a commit: take the new states; forget finished items (they never change)."""
        for wid, state in changes.items():
            if state.status in TERMINAL_WORK_STATUSES:
                self._items.pop(wid, None)
            else:
                self._items[wid] = state
            self._absent.discard(wid)
            self._presumed.discard(wid)

    def granted(self, rows: Iterable[WorkItemRow]) -> None:
        for row in rows:
            self._items[row.work_item_id] = ItemState("leased", row.fence)

    def forget(self, work_item_ids: Iterable[str]) -> None:
        """Drop ids whose SQL check disagreed with the book: reload them from the table."""
        for wid in work_item_ids:
            self._items.pop(wid, None)
            self._absent.discard(wid)
            self._presumed.discard(wid)
