"""Who can take work now: each worker's credit, shared by the scheduler and the executions.

The scheduler owns the ledger (workers join, leave, return credit; a fleet worker's link
returns its Credits itself); execution actors read and take from it synchronously on the same
event loop, between awaits, so no lock is needed. An
execution that schedules an item that is due now takes one credit from a worker serving the
item's queue and creates the item already leased to that worker (fence 1) in the same turn
(I4): a step costs one commit, not a turn plus a grant. Items that found no credit are created
pending and granted by the scheduler as credit comes back, oldest first.

Example::

    ledger = WorkerLedger()
    ledger.join(WorkerEntry("w1", link, frozenset({"python_tool"}), Credit(8), local=False))
    entry = ledger.take("python_tool")      # round robin over workers with credit, or None
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.runtime.scheduler_messages import WorkerLink


class Credit:
    """How many more items a worker can take now.

    The in-process pool's credit is handed back by the pool itself as items stop running, a
    fleet worker's by its link as its Credit messages arrive; if the scheduler was waiting for
    it (pending items, no credit), ``give`` tells it, so pending items are granted as slots
    come back.
    """

    __slots__ = ("_notify", "free", "wanted")

    def __init__(self, capacity: int) -> None:
        self.free = capacity
        self.wanted = False
        self._notify: Callable[[], None] | None = None

    def give(self, n: int = 1) -> None:
        self.free += n
        if self.wanted and self._notify is not None:
            self.wanted = False
            self._notify()

    def withdraw(self, n: int = 1) -> int:
        """Take back up to ``n`` free credits (never below zero); returns how many of the
        ``n`` were not free (taken by a grant in flight, or used)."""
        taken = min(n, max(self.free, 0))
        self.free -= taken
        return n - taken

    def on_free(self, notify: Callable[[], None]) -> None:
        self._notify = notify


#: Declined items remembered per worker; the oldest are forgotten (and may be offered again).
MAX_DECLINED = 1024


@dataclass(slots=True, eq=False)
class WorkerEntry:
    """One worker the scheduler can hand items to."""

    owner: str
    link: WorkerLink
    queues: frozenset[str] | None  # None: every queue
    credit: Credit
    local: bool
    #: Queues with a grant in flight for this worker (at most one each).
    granting: set[str] = field(default_factory=set)
    #: Remote leases it holds (the pool's are not tracked: it reports to executions itself).
    leases: set[str] = field(default_factory=set)
    #: Queues it never takes even when ``queues`` is None (the pool: remote-only steps).
    excluded: set[str] | None = None
    #: Credit withdrawn while grants were in flight with it: kept back from what those
    #: grants leave unused (forgotten once none is in flight: the rest was used).
    owed: int = 0
    #: Items it said it does not serve, oldest first (a grant to it skips them).
    declined: dict[str, None] = field(default_factory=dict)
    #: Queues whose due items it has all declined: not asked again until new work is due.
    starved: set[str] = field(default_factory=set)

    def decline(self, work_item_id: str) -> None:
        self.declined[work_item_id] = None
        while len(self.declined) > MAX_DECLINED:
            del self.declined[next(iter(self.declined))]

    def withdraw(self, n: int) -> None:
        """Take back ``n`` unused credits (a polling worker's claim that got nothing); what a
        grant in flight holds is kept back from the part of it that grant leaves unused."""
        rest = self.credit.withdraw(n)
        if rest and self.granting:
            self.owed += rest

    def grant_done(self, queue: str, unused: int) -> None:
        """A grant on ``queue`` came back leaving ``unused`` of its credit."""
        self.granting.discard(queue)
        kept_back = min(self.owed, unused)
        self.owed = self.owed - kept_back if self.granting else 0
        self.credit.give(unused - kept_back)

    def serves(self, queue: str) -> bool:
        if self.excluded is not None and queue in self.excluded:
            return False
        return self.queues is None or queue in self.queues


class WorkerLedger:
    """The workers by owner, and a round robin over them for items created leased."""

    def __init__(self) -> None:
        self.workers: dict[str, WorkerEntry] = {}
        self._next = 0
        #: What each worker declined, kept across its entries (an HTTP worker leaves when it
        #: stops polling and joins again at its next claim).
        self._declined: dict[str, dict[str, None]] = {}

    def join(self, entry: WorkerEntry) -> None:
        """Add ``entry``, with what its owner declined before."""
        declined = self._declined.pop(entry.owner, None)
        self._declined[entry.owner] = entry.declined = declined or entry.declined
        while len(self._declined) > MAX_DECLINED:  # owners too: the least recently joined go
            del self._declined[next(iter(self._declined))]
        self.workers[entry.owner] = entry

    def leave(self, owner: str) -> WorkerEntry | None:
        return self.workers.pop(owner, None)

    def get(self, owner: str) -> WorkerEntry | None:
        return self.workers.get(owner)

    def take(self, queue: str) -> WorkerEntry | None:
        """One credit of a worker serving ``queue`` (the next in turn that has some and is not
        quiet: see ``WorkerLink.quiet``), or None."""
        workers = self.workers
        if len(workers) == 1:  # the common embedded case: the pool alone
            (only,) = workers.values()
            if not only.local and only.link.quiet():
                return None
            return self._take_from(only, queue)
        entries = list(workers.values())
        n = len(entries)
        for i in range(n):
            entry = entries[(self._next + i) % n]
            if not entry.local and entry.link.quiet():
                continue  # stopped or stalled: the item is created pending instead
            if self._take_from(entry, queue) is not None:
                self._next = (self._next + i + 1) % n
                return entry
        return None

    def give_back(self, entry: WorkerEntry) -> None:
        """Return a credit taken for an item that was never created (its turn failed)."""
        if entry.local or self.workers.get(entry.owner) is entry:
            entry.credit.give()

    @staticmethod
    def _take_from(entry: WorkerEntry, queue: str) -> WorkerEntry | None:
        if entry.credit.free <= 0 or not entry.serves(queue):
            return None
        entry.credit.free -= 1
        return entry
