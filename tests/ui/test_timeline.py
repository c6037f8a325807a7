"""A run's timeline from its journal (tether.server.ui.timeline): attempts, retries, parks,
waits and who ended them, and the property that no bar runs backwards whatever the records'
times (a worker's clock may be ahead of the engine's)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tether.runtime.records import (
    ApprovalReceived,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    NodeWaiting,
    Record,
    TimerFired,
    WaitCompleted,
)
from tether.server.ui.timeline import timeline, timeline_view


def journal(*records: Record) -> list[JournalEntry]:
    return [JournalEntry(i + 1, r) for i, r in enumerate(records)]


def test_attempts_retries_parks_and_workers() -> None:
    rows = timeline(journal(
        NodeScheduled(at_ms=100, node_id="fetch", attempt=1, dispatch=1),
        NodeFailed(at_ms=130, node_id="fetch", dispatch=1, attempt=1, error="reset",
                   error_type="ConnectionError", duration_ms=20, traceback="Traceback...",
                   worker_id="w-1"),
        NodeScheduled(at_ms=130, node_id="fetch", attempt=2, dispatch=2, not_before_ms=150),
        NodeParked(at_ms=160, node_id="fetch", dispatch=2, attempt=2, not_before_ms=200,
                   error="429"),
        NodeCompleted(at_ms=230, node_id="fetch", dispatch=2, attempt=2, duration_ms=10),
        NodeScheduled(at_ms=230, node_id="next", attempt=1, dispatch=1),
    ))  # fmt: skip
    first, second, pending = rows
    assert (first.outcome, first.worker_id, first.error_type) == (
        "retrying",
        "w-1",
        "ConnectionError",
    )
    assert (first.queue_wait_ms, first.run_ms, first.traceback) == (10, 20, "Traceback...")
    assert (second.outcome, second.worker_id, second.run_ms) == ("completed", "in-process", 10)
    assert second.queue_wait_ms == 220 - 150  # from the end of its backoff, not its queueing
    assert [(p.at_ms, p.until_ms, p.error) for p in second.parks] == [(160, 200, "429")]
    assert (second.seq, second.end_seq) == (3, 5)
    assert (pending.outcome, pending.started_at_ms, pending.queue_wait_ms) == ("queued", None, None)
    view = timeline_view(rows)
    assert view[1]["queue_wait_ms"] == 70 and view[1]["parks"][0]["until_ms"] == 200


def test_waits_end_with_what_ended_them() -> None:
    rows = timeline(journal(
        NodeWaiting(at_ms=10, node_id="cool", dispatch=1, fire_at_ms=70),
        TimerFired(at_ms=70, node_id="cool", dispatch=1),
        WaitCompleted(at_ms=70, node_id="cool", dispatch=1, by="timer"),
        NodeWaiting(at_ms=70, node_id="bank", dispatch=1, correlation_key="cleared"),
        WaitCompleted(at_ms=90, node_id="bank", dispatch=1, by="event", cancelled="timer"),
        NodeWaiting(at_ms=90, node_id="review", dispatch=1, approval=True, description="Pay?"),
        ApprovalReceived(at_ms=95, node_id="review", dispatch=1, decision="rejected",
                         user_id="bob"),
        NodeWaiting(at_ms=95, node_id="again", dispatch=1, approval=True),
    ))  # fmt: skip
    summary = [(r.node_id, r.kind, r.outcome, r.ended_at_ms, r.decided_by) for r in rows]
    assert summary == [
        ("cool", "timer", "timer", 70, None),
        ("bank", "event", "event", 90, None),
        ("review", "approval", "rejected", 95, "bob"),
        ("again", "approval", "waiting", None, None),
    ]
    assert rows[2].description == "Pay?" and rows[1].description == "cleared"


def test_an_outcome_without_its_hand_out_still_shows() -> None:
    # A continued segment may hold an outcome whose hand-out is in the segment before it.
    [row] = timeline(journal(
        NodeCompleted(at_ms=50, node_id="carry", dispatch=3, attempt=1, duration_ms=5)
    ))  # fmt: skip
    assert (row.node_id, row.outcome, row.queued_at_ms, row.ended_at_ms) == (
        "carry",
        "completed",
        50,
        50,
    )


ATTEMPT = st.tuples(
    st.integers(0, 1000),  # queued after the previous record
    st.lists(st.tuples(st.integers(0, 50), st.integers(0, 500)), max_size=2),  # parks
    st.sampled_from(["completed", "failed", None]),  # None: still in flight
    st.integers(0, 5000),  # reported run time (may exceed the elapsed time: skewed clocks)
    st.integers(0, 100),  # time to the outcome
)


@given(st.lists(ATTEMPT, min_size=1, max_size=5))
def test_no_bar_runs_backwards(
    attempts: list[tuple[int, list[tuple[int, int]], str | None, int, int]],
) -> None:
    records: list[Record] = []
    now = 0
    for n, (gap, parks, outcome, run, took) in enumerate(attempts, start=1):
        now += gap
        records.append(NodeScheduled(at_ms=now, node_id="x", attempt=n, dispatch=n))
        for wait, hold in parks:
            now += wait
            records.append(NodeParked(at_ms=now, node_id="x", dispatch=n, attempt=n,
                                      not_before_ms=now + hold))  # fmt: skip
        if outcome is None:
            break
        now += took
        kind = NodeCompleted if outcome == "completed" else NodeFailed
        extra = {} if outcome == "completed" else {"error": "e"}
        records.append(
            kind(at_ms=now, node_id="x", dispatch=n, attempt=n, duration_ms=run, **extra)
        )
    rows = timeline(journal(*records))
    assert [r.attempt for r in rows] == list(range(1, len(rows) + 1))
    for i, r in enumerate(rows):
        if r.started_at_ms is not None:
            assert r.ended_at_ms is not None
            assert r.queued_at_ms <= r.started_at_ms <= r.ended_at_ms
            assert r.queue_wait_ms is not None and r.queue_wait_ms >= 0
            assert r.run_ms is not None and r.run_ms >= 0
        later = i + 1 < len(rows)
        if r.outcome in ("failed", "retrying"):
            assert r.outcome == ("retrying" if later else "failed")
