"""Replay checks for users' own workflows: replay equals live state (I2), and the journal
settles every hand-out at most once (I3).

Example::

    run = await rt.start(wf, input={"n": 0})
    await run.result()
    await check_replay(rt, run.id)        # raises ReplayMismatch naming the differing fields
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tether.runtime.execution import decode_state
from tether.runtime.records import (
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    NodeScheduled,
)
from tether.runtime.state import ExecutionState, replay

if TYPE_CHECKING:
    from tether.runtime.runtime import Runtime

_TERMINAL = (ExecutionCompleted, ExecutionFailed, ExecutionCancelled)


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
    if entries and not isinstance(entries[0].record, ExecutionStarted):
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
    graph = await rt.graph(live.workflow_id, live.workflow_version)
    replayed = replay(graph, [e.record for e in entries])
    diff = state_diff(live, replayed)
    if diff:
        raise ReplayMismatch(
            f"{execution_id}: replay differs from live state:\n  " + "\n  ".join(diff)
        )
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
