"""A fork: a new execution whose journal starts as a copy of another's first N records.

The state at record N of the origin is the fold of its records 1..N (I2). A fork's journal
holds those records, the first one (``execution_started``) naming the new execution and its
origin (``forked_from``, ``forked_at_seq``), committed in one turn like any start (I1, I4).
Its actor then starts from that journal exactly as a runtime restarting after a crash at
record N would (I3):

- a step whose outcome is in records 1..N is not run again: its result is in the state;
- a step handed out at or before N without its outcome by N was in flight there: it runs
  again (the same attempt: it was the origin's engine, not the step, that the fork cut
  off), even when the origin committed its outcome later. Its side effects happen again;
  :class:`ForkResult` names these steps (``runs_again``) and which of them the origin had
  finished after N (``finished_in_origin``), so nobody is surprised;
- waits, pending approvals, events not taken and timers go on as they stood (a timer due
  in the past fires at once); a code-first body replays its recorded calls and goes on
  from N; an agent resumes its loop at the call after N.

A fork runs on the origin's workflow version (what the records were folded against). A
fork of a continued segment (``~2.``) starts from that segment's first record, the state it
went on from, renamed: the fork is a run of its own (its first segment, no previous one to
wait for), and a continue-as-new of the fork opens the fork's own next segment.

Example::

    records, state = fork_prefix(graph, journal, at_seq=4, fork_id="exec_02...",
                                 origin_id="exec_01...")
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tether.errors import ExecutionNotFound, InvalidInput
from tether.runtime.graph import Graph
from tether.runtime.records import (
    ExecutionStarted,
    JournalEntry,
    NodeCompleted,
    NodeFailed,
    Record,
    SegmentStarted,
)
from tether.runtime.state import ExecutionState, replay


class RecordNotFound(ExecutionNotFound):
    """No record with that sequence number in the execution's journal (a 404)."""


class ForkRefused(InvalidInput):
    """A fork that cannot start from that record (it ends the run); nothing is written."""


class ForkResult(msgspec.Struct, frozen=True):
    """What :meth:`Runtime.fork` started, and what of the origin it runs again."""

    execution_id: str
    forked_from: str
    at_seq: int
    status: str
    #: Steps in flight at ``at_seq``: they run again in the fork.
    runs_again: tuple[str, ...] = ()
    #: Those of ``runs_again`` whose outcome the origin committed after ``at_seq``.
    finished_in_origin: tuple[str, ...] = ()


def record_at(entries: Sequence[JournalEntry], execution_id: str, at_seq: int) -> JournalEntry:
    """The record ``at_seq`` of a journal read from seq 1, or RecordNotFound naming the range."""
    if not 1 <= at_seq <= len(entries):
        held = f"records 1-{len(entries)}" if entries else "no records"
        raise RecordNotFound(f"execution {execution_id!r} has no record {at_seq} (it holds {held})")
    entry = entries[at_seq - 1]
    assert entry.seq == at_seq, (entry.seq, at_seq)  # the store verified there are no gaps
    return entry


def fork_prefix(
    graph: Graph,
    entries: Sequence[JournalEntry],
    *,
    at_seq: int,
    fork_id: str,
    origin_id: str,
) -> tuple[list[Record], ExecutionState]:
    """The fork's first records (the origin's 1..``at_seq``, the start renamed) and the state
    they fold to. Raises RecordNotFound or ForkRefused; computes only, writes nothing."""
    record_at(entries, origin_id, at_seq)
    records: list[Record] = [
        _renamed_start(entries[0].record, fork_id, origin_id, at_seq),
        *(e.record for e in entries[1:at_seq]),
    ]
    state = replay(graph, records)
    if state.is_terminal or state.status == "continued":
        raise ForkRefused(
            f"record {at_seq} of execution {origin_id!r} ends the run ({state.status}): "
            f"fork at an earlier record, before its {entries[at_seq - 1].type}"
        )
    return records, state


def _renamed_start(first: Record, fork_id: str, origin_id: str, at_seq: int) -> Record:
    """The origin's first record naming the fork and its origin instead."""
    if isinstance(first, ExecutionStarted):
        return msgspec.structs.replace(
            first, execution_id=fork_id, forked_from=origin_id, forked_at_seq=at_seq
        )
    if isinstance(first, SegmentStarted):
        # A run of its own: its next segments are named after it, not after the origin's
        # root (whose own next segments would have the same ids), and it waits for no
        # previous segment to hand over.
        return msgspec.structs.replace(
            first, execution_id=fork_id, root_execution_id=fork_id, segment=1,
            previous_execution_id="", forked_from=origin_id, forked_at_seq=at_seq,
        )  # fmt: skip
    # The store keeps no journal that starts otherwise (the runtime writes one of these two
    # first); say what was found rather than fold it.
    raise ForkRefused(
        f"execution {origin_id!r} cannot be forked: its journal starts with {first.type}, "
        "not execution_started or segment_started"
    )


def in_flight_report(
    state: ExecutionState, entries: Sequence[JournalEntry], at_seq: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The steps the fork runs again (in flight at ``at_seq``), and those of them whose
    outcome the origin committed after ``at_seq``."""
    flying = {node_id: run.dispatch for node_id, run in state.in_flight()}
    finished = []
    for entry in entries[at_seq:]:
        rec = entry.record
        if isinstance(rec, NodeCompleted | NodeFailed) and flying.get(rec.node_id) == rec.dispatch:
            finished.append(rec.node_id)
    return tuple(flying), tuple(dict.fromkeys(finished))
