"""The store as the runtime sees it when large values are artifacts (I9).

Where the boundary is: at the store. Everything above it (the live fold, replay, recovery,
the code-first replayer, the governance bundle) sees whole values, always; only the rows
below it hold references. :meth:`SpillingStore.append` spills each record and snapshot
longer than the threshold (the only cost on the common step's path is that length compare),
writes the artifacts in their own transaction first, then appends the turn with the
references in place of the values (artifacts of turns arriving together share one
transaction: :mod:`.put_batches`). The reads that feed a fold (``read``, ``latest_snapshot``,
``load_executions``) put the values back, verified. The live state was folded from the
record the runtime made, the replayed one from the record put back, and the two decode
equal (:mod:`.spill`), so replay gives the live state (I2).

A crash after the artifacts committed and before the turn did leaves them unreferenced
(the turn never happened, I1; the next attempt puts the same bytes under the same digests),
and a crash after the turn committed leaves a journal whose references all resolve. An
artifact that is missing or fails its check is a :class:`JournalCorruption` of the row that
references it (I7): that execution stops with the row and digest named, others go on.

Example::

    front = SpillingStore(store, 8192, clock, places)     # places: where values may be large
    await front.append(turn)                # large values become artifacts first
    rows = await front.read("exec_1")       # and come back whole
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from tether.clock import Clock, now_ms
from tether.persistence.artifacts.put_batches import PutBatches
from tether.persistence.artifacts.resolve import UnresolvedReference, resolve_references
from tether.persistence.artifacts.spill import REF_MARKER, SpillPlaces, spilled
from tether.persistence.artifacts.sweep import SweepReport, sweep_artifacts
from tether.persistence.contract import (
    JournalCorruption,
    LoadedExecution,
    NewRecord,
    Snapshot,
    SnapshotCorruption,
    StoredRecord,
    Turn,
)

if TYPE_CHECKING:
    from tether.persistence.artifacts.contract import ArtifactStore
    from tether.persistence.contract import Store

#: Values whose encoding is longer than this many bytes go to the artifact store by default.
DEFAULT_ARTIFACT_THRESHOLD: Final = 8 * 1024
#: The smallest threshold taken: a reference is 35 bytes, so below this nothing is saved.
MIN_ARTIFACT_THRESHOLD: Final = 64


def checked_threshold(threshold: int) -> int:
    """``threshold`` when usable; ValueError saying why not."""
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ValueError(f"artifact_threshold must be an integer of bytes, got {threshold!r}")
    if threshold < MIN_ARTIFACT_THRESHOLD:
        raise ValueError(
            f"artifact_threshold must be at least {MIN_ARTIFACT_THRESHOLD} bytes, got "
            f"{threshold} (None turns artifacts off)"
        )
    return threshold


class SpillingStore:
    """``inner`` with values over ``threshold`` bytes kept as artifacts (module docstring).

    Every method not written here is the inner store's own.
    """

    def __init__(self, inner: Any, threshold: int, clock: Clock, places: SpillPlaces) -> None:
        self.threshold = checked_threshold(threshold)
        self.inner: Store = inner
        self._artifacts: ArtifactStore = inner
        self._clock = clock
        self._places = places
        # Artifacts of turns arriving together share a transaction.
        self._puts = PutBatches(self._artifacts.put_artifacts)
        #: Digests written for a turn not yet acknowledged: a sweep leaves them alone.
        self.pending: Counter[str] = Counter()

    # ------------------------------------------------------------------------------ writes

    def append(self, turn: Turn) -> Awaitable[int]:
        """The inner store's append of ``turn``, its large values spilled first. Not a
        coroutine of its own: the common turn costs a length compare per record, no frame."""
        limit = self.threshold
        for record in turn.records:
            if len(record.payload) > limit:
                return self._append_spilled(turn)
        if turn.snapshot is not None and len(turn.snapshot) > limit:
            return self._append_spilled(turn)
        return self.inner.append(turn)

    async def _append_spilled(self, turn: Turn) -> int:
        limit = self.threshold
        blobs: dict[str, bytes] = {}
        records: list[NewRecord] = []
        for record in turn.records:
            payload, found = spilled(record.payload, limit, self._places.records)
            blobs.update(found)
            records.append(NewRecord(record.type, payload) if found else record)
        snapshot = turn.snapshot
        if snapshot is not None:
            places, prefix = self._places.snapshots, self._places.snapshot_prefix
            snapshot, found = spilled(snapshot, limit, places, prefix)
            blobs.update(found)
        if not blobs:  # large, but of many small values: nothing to split out
            return await self.inner.append(turn)
        digests = list(blobs)
        self.pending.update(digests)
        try:
            # The artifacts first, in their own transaction: a crash before the turn commits
            # leaves them unreferenced, never a reference without its artifact.
            await self._puts.put(list(blobs.values()), now_ms(self._clock))
            thin = msgspec.structs.replace(turn, records=tuple(records), snapshot=snapshot)
            return await self.inner.append(thin)
        finally:
            self.pending.subtract(digests)
            for digest in digests:
                if self.pending[digest] <= 0:
                    del self.pending[digest]

    async def sweep_artifacts(self, min_age_ms: int) -> SweepReport:
        """Remove the artifacts nothing references (see :func:`.sweep.sweep_artifacts`),
        sparing those of turns in flight here."""
        busy = frozenset(self.pending)  # taken before the references are read
        return await sweep_artifacts(self._artifacts, now_ms(self._clock), min_age_ms, busy)

    # ------------------------------------------------------------------------------- reads

    async def read(self, execution_id: str, from_seq: int = 1) -> list[StoredRecord]:
        rows = await self.inner.read(execution_id, from_seq)
        try:
            return await self._resolved_rows(rows, {})
        except _Row as bad:
            raise JournalCorruption(execution_id, bad.seq, str(bad.__cause__)) from bad

    async def latest_snapshot(self, execution_id: str) -> Snapshot | None:
        snap = await self.inner.latest_snapshot(execution_id)
        if snap is None or REF_MARKER not in snap.payload:
            return snap
        try:
            payload = await self._resolved(snap.payload, {}, self._places.snapshot_prefix)
        except UnresolvedReference as exc:
            raise _snapshot_problem(execution_id, snap.seq, str(exc)) from exc
        return Snapshot(execution_id, snap.seq, payload)

    async def load_executions(self, execution_ids: Sequence[str]) -> dict[str, LoadedExecution]:
        loaded = await self.inner.load_executions(execution_ids)
        cache: dict[str, bytes] = {}
        out: dict[str, LoadedExecution] = {}
        for eid, one in loaded.items():
            try:
                snap = one.snapshot
                if snap is not None and REF_MARKER in snap.payload:
                    prefix = self._places.snapshot_prefix
                    payload = await self._resolved(snap.payload, cache, prefix)
                    snap = Snapshot(eid, snap.seq, payload)
                records = await self._resolved_rows(one.records, cache)
            except (UnresolvedReference, _Row):
                continue  # left out: loading it alone names the problem (the contract's rule)
            out[eid] = LoadedExecution(one.row, snap, records)
        return out

    async def _resolved_rows(
        self, rows: list[StoredRecord], cache: dict[str, bytes]
    ) -> list[StoredRecord]:
        if not any(REF_MARKER in row.payload for row in rows):
            return rows
        out: list[StoredRecord] = []
        for row in rows:
            if REF_MARKER not in row.payload:
                out.append(row)
                continue
            try:
                payload = await self._resolved(row.payload, cache)
            except UnresolvedReference as exc:
                raise _Row(row.seq) from exc
            out.append(StoredRecord(row.execution_id, row.seq, row.type, payload))
        return out

    async def _resolved(self, payload: bytes, cache: dict[str, bytes], prefix: int = 0) -> bytes:
        return await resolve_references(self._artifacts, payload, cache, prefix)

    def __getattr__(self, name: str) -> Any:  # everything else is the store's own
        return getattr(self.inner, name)


class _Row(Exception):
    """A row whose references did not resolve (its seq; the cause says why)."""

    def __init__(self, seq: int) -> None:
        super().__init__(seq)
        self.seq = seq


def _snapshot_problem(execution_id: str, seq: int, problem: str) -> SnapshotCorruption:
    error = SnapshotCorruption(execution_id, seq)
    error.args = (f"execution {execution_id}: snapshot at seq {seq} {problem}",)
    error.problem = problem
    return error
