"""The counts a runtime's committed turns add up to: steps, executions, parks, latency.

A :class:`TurnTally` is the hook an execution actor calls after each committed turn (see
:mod:`tether.runtime.counters`). Per record it does a dict lookup and an integer increment,
and per finished step a bisect into the latency buckets; the histogram is built at scrape
time from those integers, so no metrics library runs on the step's path.

Example::

    tally = TurnTally()
    services.counters.on_turn = tally
    ...
    tally.steps_finished["completed"]   # attempts that completed so far
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from tether.persistence.contract import WorkItemRow
from tether.runtime.records import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionLimited,
    ExecutionStarted,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    Record,
    SegmentBoundary,
)

#: Upper bounds (seconds) of the step latency buckets; the last bucket is +Inf.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip
_BOUNDS_MS: tuple[float, ...] = tuple(b * 1000 for b in LATENCY_BUCKETS)

#: How an execution's last record names its end (a continued segment ends as ``continued``).
_ENDINGS: dict[type, str] = {
    ExecutionCompleted: "completed",
    ExecutionFailed: "failed",
    ExecutionCancelled: "cancelled",
    ExecutionLimited: "limit_exceeded",
    SegmentBoundary: "continued",
}
#: How a step's outcome record names its end.
_OUTCOMES: dict[type, str] = {
    NodeCompleted: "completed",
    NodeFailed: "failed",
    NodeParked: "parked",
}
STEP_OUTCOMES: tuple[str, ...] = ("completed", "failed", "parked", "cancelled")
EXECUTION_ENDINGS: tuple[str, ...] = tuple(_ENDINGS.values())


class TurnTally:
    """Counts from committed turns; call it with each turn's records, created items and the
    number of items the turn closed engine-side."""

    def __init__(self) -> None:
        self.steps_scheduled = 0
        self.steps_finished: dict[str, int] = dict.fromkeys(STEP_OUTCOMES, 0)
        self.executions_started = 0
        self.executions_ended: dict[str, int] = dict.fromkeys(EXECUTION_ENDINGS, 0)
        #: Items created already leased to a worker (the scheduler's later grants are in the
        #: journal writer's stats).
        self.leased_at_creation = 0
        #: Per bucket (and one past the last bound: +Inf), finished attempts by duration.
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum_ms = 0

    def __call__(
        self, records: Sequence[Record], items: Sequence[WorkItemRow], closed: int
    ) -> None:
        for record in records:
            kind = type(record)
            if kind is NodeScheduled:
                self.steps_scheduled += 1
            elif (outcome := _OUTCOMES.get(kind)) is not None:
                self.steps_finished[outcome] += 1
                if isinstance(record, NodeCompleted | NodeFailed):
                    self._latency(record.duration_ms)
            elif kind is ExecutionStarted:
                self.executions_started += 1
            elif (ending := _ENDINGS.get(kind)) is not None:
                self.executions_ended[ending] += 1
        if closed:
            self.steps_finished["cancelled"] += closed
        for item in items:
            if item.lease_owner is not None:
                self.leased_at_creation += 1

    def _latency(self, duration_ms: int) -> None:
        self.latency_counts[bisect_left(_BOUNDS_MS, duration_ms)] += 1
        self.latency_sum_ms += duration_ms
