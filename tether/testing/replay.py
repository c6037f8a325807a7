"""Replay checks for users' own workflows: replay equals live state (I2), the journal
settles every hand-out at most once (I3), and the work-item table agrees with the journal
(I4, I5).

Example::

    run = await rt.start(wf, input={"n": 0})
    await run.result()
    await check_replay(rt, run.id)        # raises ReplayMismatch naming the differing fields
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.persistence import OPEN_WORK_STATUSES, WorkItemRow
from tether.runtime.executor import work_item_id
from tether.runtime.internals import runtime_internals
from tether.runtime.records import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeParked,
    NodeScheduled,
    SegmentBoundary,
    SegmentStarted,
)
from tether.runtime.snapshots import decode_state
from tether.runtime.state import ExecutionState, replay

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime

_TERMINAL = (ExecutionCompleted, ExecutionFailed, ExecutionCancelled, SegmentBoundary)


class ReplayMismatch(AssertionError):
    """Replaying the journal did not rebuild the live state, or the journal breaks a rule."""


def state_diff(a: ExecutionState, b: ExecutionState) -> list[str]:
    """Names and values of the fields where two states differ."""
    out = []
    for name in a.__struct_fields__:
        left, right = getattr(a, name), getattr(b, name)
        if left != right:
            out.append(f"{name}: {left!r} != {right!r}")
    return out


def check_journal(entries: Sequence[JournalEntry]) -> None:
    """Structural rules: consecutive sequence numbers from 1, one start first, at most one
    terminal record and nothing after it, and every (node, dispatch) scheduled once and
    settled at most once."""
    problems: list[str] = []
    for expected, entry in enumerate(entries, start=1):
        if entry.seq != expected:
            problems.append(f"record {entry.seq} found where {expected} was expected")
            break
    if entries and not isinstance(entries[0].record, ExecutionStarted | SegmentStarted):
        problems.append(f"first record is {entries[0].type}, not execution_started")
    scheduled: Counter[tuple[str, int]] = Counter()
    settled: Counter[tuple[str, int]] = Counter()
    terminal_at: int | None = None
    for entry in entries:
        rec = entry.record
        if terminal_at is not None:
            problems.append(f"record {entry.seq} ({entry.type}) after the terminal record")
        if isinstance(rec, _TERMINAL):
            terminal_at = entry.seq
        elif isinstance(rec, NodeScheduled):
            scheduled[(rec.node_id, rec.dispatch)] += 1
        elif isinstance(rec, NodeCompleted | NodeFailed) and rec.dispatch > 0:
            key = (rec.node_id, rec.dispatch)
            settled[key] += 1
            if scheduled[key] == 0:
                problems.append(f"record {entry.seq} settles {key} which was never scheduled")
    problems += [f"{key} scheduled {n} times" for key, n in scheduled.items() if n > 1]
    problems += [f"{key} settled {n} times" for key, n in settled.items() if n > 1]
    if problems:
        raise ReplayMismatch("journal breaks its rules:\n  " + "\n  ".join(problems))


async def check_replay(rt: Runtime, execution_id: str) -> ExecutionState:
    """Replay the journal (from the start, and from the latest snapshot) and compare both with
    the live state this runtime holds in memory, field for field. Returns the replayed state.

    Call it while the runtime that ran the execution is still open (a finished run's final
    state is kept for a while); a runtime that holds no live state for it raises.
    """
    live = await rt.live_state(execution_id)
    if live is None:
        raise ReplayMismatch(
            f"{execution_id}: this runtime holds no live state to compare (it did not run it, "
            "or it finished long ago); call check_replay in the runtime that ran it"
        )
    entries = await rt.journal(execution_id)
    check_journal(entries)
    if live.running != len(live.in_flight()):
        raise ReplayMismatch(
            f"{execution_id}: running count {live.running} but "
            f"{len(live.in_flight())} nodes are in flight"
        )
    graph = await runtime_internals(rt).graph(live.workflow_id, live.workflow_version)
    replayed = replay(graph, [e.record for e in entries])
    diff = state_diff(live, replayed)
    if diff:
        raise ReplayMismatch(
            f"{execution_id}: replay differs from live state:\n  " + "\n  ".join(diff)
        )
    await check_work_items(rt, execution_id, entries, live)
    snap = await rt.store.latest_snapshot(execution_id)
    if snap is not None:
        base = decode_state(snap.payload)
        tail = [e.record for e in entries if e.seq > snap.seq]
        diff = state_diff(live, replay(graph, tail, base))
        if diff:
            raise ReplayMismatch(
                f"{execution_id}: replay from snapshot {snap.seq} differs:\n  " + "\n  ".join(diff)
            )
    return replayed


async def check_work_items(
    rt: Runtime,
    execution_id: str,
    entries: Sequence[JournalEntry],
    state: ExecutionState,
) -> None:
    """The work-item table says what the journal says: at most one item per hand-out, settled
    as its record says (completed, failed while retried, dead on the last attempt, cancelled
    when the run ended first), parked as often as it was, open while in flight; no other
    items. The in-process pool writes no item for a hand-out it completes or that is cancelled
    while it runs it, nor while it runs it (never parked): those may have none when the
    runtime has a pool, the last only while its pool runs it; a failed, dead or parked one
    must have one."""
    rows = {r.work_item_id: r for r in await _all_items(rt, execution_id)}
    expected = _expected_items(execution_id, entries, state)
    problems = []
    for wid, (attempt, status, parks) in expected.items():
        row = rows.pop(wid, None)
        if row is None:
            if not status.startswith("unbound") and not _may_be_rowless(
                rt, execution_id, wid, status, parks
            ):
                problems.append(f"{wid}: no work item for a hand-out the journal has")
            continue
        if (row.attempt, row.parks) != (attempt, parks) or not _status_fits(row, status):
            problems.append(
                f"{wid}: item has attempt {row.attempt}, status {row.status}, parks "
                f"{row.parks}; the journal says attempt {attempt}, {status}, parks {parks}"
            )
    problems += [f"{wid}: item with no hand-out in the journal" for wid in rows]
    if problems:
        raise ReplayMismatch(
            f"{execution_id}: work items disagree with the journal:\n  " + "\n  ".join(problems)
        )


async def _all_items(rt: Runtime, execution_id: str) -> list[WorkItemRow]:
    rows: list[WorkItemRow] = []
    while True:
        page = await rt.store.list_work_items(
            execution_id=execution_id, limit=500, offset=len(rows)
        )
        rows += page
        if len(page) < 500:
            return rows


def _may_be_rowless(rt: Runtime, execution_id: str, wid: str, status: str, parks: int) -> bool:
    """Could the in-process pool have run this hand-out without a row? Only if the runtime
    has a pool and the outcome never needed one (a park, a failure or a dead letter writes
    it), and, while the hand-out is open, only if the pool runs it now: an open hand-out
    anywhere else (pending, remote, reissued after a restart) must have its row."""
    services = runtime_internals(rt).services  # the checker reads the runtime's bookkeeping
    if parks or services.local is None:
        return False
    if status == "open":
        return services.runs_rowless(execution_id, wid)
    return status in ("completed", "cancelled")


def _status_fits(row: WorkItemRow, status: str) -> bool:
    if status.startswith("unbound "):  # failed at once, or its arguments never bound
        status = status.removeprefix("unbound ")
    if status == "open":
        return row.status in OPEN_WORK_STATUSES
    return row.status == status


def _expected_items(
    execution_id: str, entries: Sequence[JournalEntry], state: ExecutionState
) -> dict[str, tuple[int, str, int]]:
    """work item id -> (attempt, status, parks) as the journal has it."""
    out: dict[str, tuple[int, str, int]] = {}
    latest: dict[str, str] = {}  # node id -> its latest hand-out's item id
    previous: object = None
    for entry in entries:
        rec = entry.record
        if isinstance(rec, NodeScheduled):
            replaced = latest.get(rec.node_id)  # the node's previous hand-out, if still open
            if replaced is not None and out[replaced][1] == "open":
                attempt, _, parks = out[replaced]
                out[replaced] = (attempt, "cancelled", parks)
            wid = work_item_id(execution_id, rec.node_id, rec.dispatch)
            latest[rec.node_id] = wid
            out[wid] = (rec.attempt, "open", 0)
        elif isinstance(rec, NodeCompleted | NodeFailed | NodeParked) and rec.dispatch > 0:
            wid = work_item_id(execution_id, rec.node_id, rec.dispatch)
            attempt, _, parks = out[wid]
            if isinstance(rec, NodeParked):
                out[wid] = (attempt, "open", parks + 1)
            elif isinstance(rec, NodeCompleted):
                out[wid] = (attempt, "completed", parks)
            else:
                run = state.nodes.get(rec.node_id)
                final = run is not None and run.dispatch == rec.dispatch and run.status == "failed"
                status = "dead" if final else "failed"
                # Straight after its scheduling and not retryable: maybe its arguments did not
                # bind, in the turn that scheduled it, before any item existed.
                unbound = _maybe_unbound(previous, rec)
                out[wid] = (attempt, f"unbound {status}" if unbound else status, parks)
        previous = rec
    if state.is_terminal:
        for wid, (attempt, status, parks) in out.items():
            if status == "open":
                out[wid] = (attempt, "cancelled", parks)
    return out


def _maybe_unbound(previous: object, rec: NodeFailed) -> bool:
    """A hand-out whose arguments did not bind fails in the turn that schedules it, before any
    item exists: its node_failed directly follows its node_scheduled, not retryable."""
    return (
        isinstance(previous, NodeScheduled)
        and (previous.node_id, previous.dispatch) == (rec.node_id, rec.dispatch)
        and not rec.retryable
    )
