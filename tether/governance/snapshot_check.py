"""Snapshots against the chain: a snapshot is not part of the audit chain (it is derived
state, rewritten as a run goes on), but recovery starts from it, so a tampered snapshot would
change what a run does next without touching a chained row. The check folds the chained
records up to the snapshot's seq and compares, field for field (I2 says they are equal).

Graph workflows only: a code-first run's fold needs its body, which an auditor's process
does not have; for those the check says it was not made.

Example::

    problem = await check_snapshot(store, "exec_1", rows)   # None: it matches (or none)
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from tether.ir.types import decode_workflow
from tether.persistence.artifacts.contract import ArtifactStore
from tether.persistence.artifacts.resolve import UnresolvedReference, resolve_references
from tether.persistence.audit_chain import ChainedRow
from tether.persistence.contract import JournalCorruption, Store, StoredRecord
from tether.runtime.artifact_places import SPILL_PLACES
from tether.runtime.graph import Graph
from tether.runtime.records import MalformedRecord, UnknownRecordType, decode_rows
from tether.runtime.snapshots import decode_state
from tether.runtime.state import replay


class SnapshotFinding(msgspec.Struct, frozen=True, gc=False):
    """What checking an execution's latest snapshot found: ``problem`` None when it equals
    the fold of the chained records up to ``seq`` (or ``checked`` False, and why)."""

    seq: int | None
    checked: bool
    problem: str | None = None
    note: str = ""


async def check_snapshot(
    store: Store, execution_id: str, rows: Sequence[ChainedRow]
) -> SnapshotFinding:
    """Compare the latest snapshot with the fold of ``rows`` (already verified) up to it."""
    try:
        snap = await store.latest_snapshot(execution_id)
    except JournalCorruption as exc:  # a snapshot failing its own checksum
        return SnapshotFinding(exc.seq, True, f"the snapshot at seq {exc.seq} {exc.problem}")
    if snap is None:
        return SnapshotFinding(None, False, note="no snapshot")
    row = await store.get_execution(execution_id)
    found = await store.get_workflow(row.workflow_id, row.workflow_version) if row else None
    if found is None:
        return SnapshotFinding(snap.seq, False, note="its workflow is not in the registry")
    workflow = decode_workflow(found.ir)
    if workflow.code is not None:
        return SnapshotFinding(snap.seq, False, note="a code-first run: its fold needs its body")
    upto = [StoredRecord(execution_id, r.seq, r.type, r.payload) for r in rows if r.seq <= snap.seq]
    if len(upto) < snap.seq:
        return SnapshotFinding(
            snap.seq, True, f"the snapshot at seq {snap.seq} is past the chained records"
        )
    try:
        upto, payload = await _as_values(store, upto, snap.payload)
        folded = replay(Graph(workflow), (e.record for e in decode_rows(upto)))
        stored = decode_state(payload)
    except UnresolvedReference as exc:
        return SnapshotFinding(snap.seq, True, f"the snapshot's run {exc}")
    except (MalformedRecord, UnknownRecordType, msgspec.DecodeError) as exc:
        return SnapshotFinding(
            snap.seq, True, f"the snapshot at seq {snap.seq} cannot be checked: {exc}"
        )
    if folded != stored:
        fields = [n for n in stored.__struct_fields__ if getattr(folded, n) != getattr(stored, n)]
        return SnapshotFinding(
            snap.seq,
            True,
            f"the snapshot at seq {snap.seq} is not the fold "
            f"of the chained records (differs in "
            f"{', '.join(fields)}): edited",
        )
    return SnapshotFinding(snap.seq, True)


async def _as_values(
    store: Store, rows: list[StoredRecord], snapshot: bytes
) -> tuple[list[StoredRecord], bytes]:
    """The rows and the snapshot with their artifacts' values in place of references: a
    value spilled in a record and the same value in a snapshot's state may be cut apart
    differently, so they are compared as values (I9)."""
    if not isinstance(store, ArtifactStore):
        return rows, snapshot
    cache: dict[str, bytes] = {}
    prefix = SPILL_PLACES.snapshot_prefix
    out = [
        StoredRecord(
            r.execution_id, r.seq, r.type, await resolve_references(store, r.payload, cache)
        )
        for r in rows
    ]
    return out, await resolve_references(store, snapshot, cache, prefix)
