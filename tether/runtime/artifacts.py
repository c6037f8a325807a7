"""What the ``Runtime`` does with artifacts (I9): large values of the journal and snapshots
kept in the content-addressed store (:mod:`tether.persistence.artifacts`), artifacts put and
read directly, the journal as stored (references in place of values), and the retention sweep.

A mixin of :class:`~tether.runtime.runtime.Runtime` (kept apart so each module stays small).

Example::

    async with Runtime("sqlite:///rt.db", artifact_threshold=8192) as rt:
        digest = await rt.put_artifact(b"...")
        assert await rt.get_artifact(digest) == b"..."
        report = await rt.sweep_artifacts(min_age=3600)   # what no journal references
"""

from __future__ import annotations

from typing import Any, cast

from tether.clock import Clock, now_ms
from tether.errors import TetherError
from tether.persistence import Store
from tether.persistence.artifacts.contract import ArtifactStore
from tether.persistence.artifacts.front import SpillingStore
from tether.persistence.artifacts.front import checked_threshold as front_threshold
from tether.persistence.artifacts.sweep import SweepReport, sweep_artifacts
from tether.runtime.artifact_places import SPILL_PLACES
from tether.runtime.records import JournalEntry, decode_rows
from tether.runtime.services import Services


class ArtifactsUnavailable(TetherError):
    """This runtime's store keeps no artifacts (a store written before them, or a custom one)."""


def checked_threshold(threshold: int | None) -> int | None:
    """``threshold`` when usable (None: artifacts off); ValueError saying why not."""
    return None if threshold is None else front_threshold(threshold)


def spilling(store: Store, threshold: int | None, clock: Clock) -> Store:
    """``store`` with large values kept as artifacts, when on and the store keeps them."""
    if threshold is None or not isinstance(store, ArtifactStore):
        return store
    return cast(Store, SpillingStore(store, threshold, clock, SPILL_PLACES))


class RuntimeArtifacts:
    """Artifacts through the runtime; the Runtime provides the hook below."""

    @property
    def _svc(self) -> Services:
        raise NotImplementedError

    def _artifact_store(self) -> ArtifactStore:
        store: Any = self._svc.store
        if not isinstance(store, ArtifactStore):
            raise ArtifactsUnavailable("this runtime's store keeps no artifacts")
        return store

    async def put_artifact(self, data: bytes) -> str:
        """Keep ``data`` under its SHA-256 (once: the same bytes again change nothing);
        its digest. A sweep removes it after ``min_age`` unless a journal references it."""
        [digest] = await self._artifact_store().put_artifacts([data], now_ms(self._svc.clock))
        return digest

    async def get_artifact(self, digest: str) -> bytes | None:
        """The artifact's bytes, verified (ArtifactCorruption when they fail); None when
        there is none. ValueError for a malformed digest."""
        return await self._artifact_store().get_artifact(digest)

    async def stored_journal(self, execution_id: str, from_seq: int = 1) -> list[JournalEntry]:
        """The journal as stored: large values as references (``msgspec.msgpack.Ext``; see
        :func:`tether.persistence.artifacts.spill.shown`), where ``journal`` has them whole."""
        store: Any = self._svc.store
        inner: Store = store.inner if isinstance(store, SpillingStore) else store
        return decode_rows(await inner.read(execution_id, from_seq))

    async def sweep_artifacts(self, min_age: float = 3600.0) -> SweepReport:
        """Remove the artifacts no journal row or snapshot references, put at least
        ``min_age`` seconds ago, sparing those of turns being committed here (see
        :mod:`tether.persistence.artifacts.sweep`; ``min_age`` covers other engines on the
        same database and uploads not yet used)."""
        if not min_age >= 0:
            raise ValueError(f"min_age must be >= 0 seconds, got {min_age}")
        store: Any = self._svc.store
        age_ms = int(min_age * 1000)
        if isinstance(store, SpillingStore):
            return await store.sweep_artifacts(age_ms)
        return await sweep_artifacts(self._artifact_store(), now_ms(self._svc.clock), age_ms)
