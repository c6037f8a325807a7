"""A run's timeline, read from its journal: one bar per node attempt (queue wait, then run
time, on the worker that ran it), with its parks, and one per wait (a timer, an event, a
person's decision) from when it began to what ended it.

Everything comes from the records' own fields, so the timeline of a run is the same on every
read and after every restart: ``node_scheduled`` says when an attempt was queued (and the
retry backoff it may not start before), an outcome says when it ended, how long it ran and
where; the start is derived as end minus run time, as the events view does. A worker's clock
may disagree with the engine's: a start before the queueing is shown at the queueing (no
negative wait).

Example::

    rows = timeline(await rt.journal(run_id))
    [(r.node_id, r.outcome, r.queue_wait_ms, r.run_ms) for r in rows]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from tether.runtime.records import (
    ApprovalReceived,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    NodeWaiting,
    WaitCompleted,
)


class Park(msgspec.Struct, frozen=True):
    """A rate-limited attempt put aside until ``until_ms`` without spending an attempt."""

    at_ms: int
    until_ms: int
    error: str = ""
    seq: int = 0


class TimelineRow(msgspec.Struct):
    """One node attempt (``kind="step"``) or one wait (``"timer"``, ``"event"``,
    ``"approval"``). Times are epoch milliseconds; None where the run has not got there.

    ``outcome``: a step is ``queued``, ``running``, ``parked``, ``completed`` or ``failed``
    (``retrying``: failed, and another attempt follows); a wait is ``waiting`` or how it
    ended (``timer``, ``event``, ``approved``, ``rejected``, ``timed_out``, ...).
    """

    node_id: str
    dispatch: int
    attempt: int
    kind: str
    outcome: str
    queued_at_ms: int
    seq: int
    started_at_ms: int | None = None
    ended_at_ms: int | None = None
    not_before_ms: int | None = None
    worker_id: str | None = None
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    decided_by: str | None = None
    parks: list[Park] = []
    end_seq: int | None = None
    description: str = ""

    @property
    def queue_wait_ms(self) -> int | None:
        """From when the attempt could start (queued, or its backoff's end) to its start."""
        if self.started_at_ms is None:
            return None
        ready = max(self.queued_at_ms, self.not_before_ms or 0)
        return max(self.started_at_ms - ready, 0)

    @property
    def run_ms(self) -> int | None:
        if self.started_at_ms is None or self.ended_at_ms is None:
            return None
        return self.ended_at_ms - self.started_at_ms


def timeline(entries: Iterable[JournalEntry]) -> list[TimelineRow]:
    """The rows of a journal, in the order they began (see the module docstring)."""
    rows: list[TimelineRow] = []
    steps: dict[tuple[str, int], TimelineRow] = {}  # by hand-out (node, dispatch)
    latest: dict[str, TimelineRow] = {}  # each node's latest attempt
    waits: dict[tuple[str, int], TimelineRow] = {}
    for entry in entries:
        r = entry.record
        if isinstance(r, NodeScheduled):
            row = TimelineRow(
                r.node_id, r.dispatch, r.attempt, "step", "queued", r.at_ms, entry.seq,
                not_before_ms=r.not_before_ms,
            )  # fmt: skip
            # Each attempt is a hand-out of its own (a new dispatch): the attempt before it
            # is the node's latest row.
            earlier = latest.get(r.node_id)
            if r.attempt > 1 and earlier is not None and earlier.outcome == "failed":
                earlier.outcome = "retrying"
            steps[(r.node_id, r.dispatch)] = latest[r.node_id] = row
            rows.append(row)
        elif isinstance(r, NodeCompleted | NodeFailed):
            row = steps.get((r.node_id, r.dispatch)) or _unscheduled(r, entry.seq, rows, steps)
            row.ended_at_ms, row.end_seq = r.at_ms, entry.seq
            row.started_at_ms = max(r.at_ms - r.duration_ms, row.queued_at_ms)
            row.worker_id = r.worker_id or "in-process"
            row.outcome = "completed" if isinstance(r, NodeCompleted) else "failed"
            if isinstance(r, NodeFailed):
                row.error, row.error_type, row.traceback = r.error, r.error_type, r.traceback
        elif isinstance(r, NodeParked):
            row = steps.get((r.node_id, r.dispatch)) or _unscheduled(r, entry.seq, rows, steps)
            row.parks = [*row.parks, Park(r.at_ms, r.not_before_ms, r.error, entry.seq)]
            row.outcome = "parked"
        elif isinstance(r, NodeWaiting):
            kind = "approval" if r.approval else "event" if r.correlation_key else "timer"
            wait = TimelineRow(
                r.node_id, r.dispatch, 1, kind, "waiting", r.at_ms, entry.seq,
                started_at_ms=r.at_ms, description=r.description or (r.correlation_key or ""),
            )  # fmt: skip
            waits[(r.node_id, r.dispatch)] = wait
            rows.append(wait)
        elif isinstance(r, ApprovalReceived | WaitCompleted):
            # A timer's firing is its own record, before the one that ends the wait (a
            # wait's duration, or an approval's timeout deciding): the end is the latter.
            if (r.node_id, r.dispatch) not in waits:
                continue
            wait = waits.pop((r.node_id, r.dispatch))
            wait.ended_at_ms, wait.end_seq = r.at_ms, entry.seq
            if isinstance(r, ApprovalReceived):
                wait.outcome, wait.decided_by = r.decision, r.user_id
            else:
                wait.outcome = r.by
    for row in steps.values():
        if row.outcome == "queued" and row.parks:
            row.outcome = "parked"
    return rows


def _unscheduled(
    r: NodeCompleted | NodeFailed | NodeParked,
    seq: int,
    rows: list[TimelineRow],
    steps: dict[tuple[str, int], TimelineRow],
) -> TimelineRow:
    """An outcome whose hand-out this journal does not hold (a segment that continued from
    another one mid-step): a row that begins at the outcome."""
    row = TimelineRow(r.node_id, r.dispatch, r.attempt, "step", "queued", r.at_ms, seq)
    steps[(r.node_id, r.dispatch)] = row
    rows.append(row)
    return row


def timeline_view(rows: list[TimelineRow]) -> list[dict[str, Any]]:
    """The rows as JSON, with the derived durations."""
    out = []
    for row in rows:
        view: dict[str, Any] = msgspec.to_builtins(row)
        view["queue_wait_ms"], view["run_ms"] = row.queue_wait_ms, row.run_ms
        out.append(view)
    return out
