"""What the runtime counts as it goes, for metrics read at scrape time.

Only what nothing else keeps: the scheduler's lease reclaims and refused worker reports (each
one integer increment, off the step's usual path), and a hook each execution actor calls with
a committed turn (one ``None`` check when no one listens). Everything else a scrape reports is
read from state the runtime keeps anyway: the ledger, the writer's stats, the index.

Example::

    counters = RuntimeCounters()
    counters.on_turn = lambda records, items, closed: print(len(records))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.persistence.contract import WorkItemRow
    from tether.runtime.records import Record

#: Called after a turn committed: its records, the work items it created, and how many work
#: items it closed engine-side (cancelled: the run ended or the branch was superseded).
TurnHook = Callable[["Sequence[Record]", "Sequence[WorkItemRow]", int], None]


class RuntimeCounters:
    """One runtime's counters (no process-global state: each Runtime has its own)."""

    __slots__ = ("leases_reclaimed", "on_turn", "reports_refused")

    def __init__(self) -> None:
        #: Leases the scheduler took back (no heartbeat, or the worker was lost).
        self.leases_reclaimed = 0
        #: Worker reports refused: no live lease, a stale fence, another owner, or reclaimed.
        self.reports_refused = 0
        self.on_turn: TurnHook | None = None
