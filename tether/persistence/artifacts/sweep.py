"""The retention sweep: artifacts no journal row or snapshot references are removed, never
one that is referenced (I9).

What counts as referenced: any digest after a reference marker in a journal row or a
snapshot (read from the rows themselves, so nothing can drift out of step with them), the
``pending`` digests a live engine has written for turns not yet committed, and anything put
less than ``min_age_ms`` ago. Why that is enough while turns keep committing: ``pending`` is
read before the references. A turn that commits after the references were read had put its
artifacts either before ``pending`` was read (so it is in it: a digest leaves ``pending``
only once its turn committed) or after (so its put is younger than the cut-off, which the
DELETE itself checks). Another engine's turns in flight (Postgres) and artifacts uploaded
through the API are covered by ``min_age_ms`` alone.

Example::

    report = await sweep_artifacts(store, now_ms=clock_ms, min_age_ms=3_600_000)
    print(report.removed)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.persistence.artifacts.spill import REF_MARKER, references

if TYPE_CHECKING:
    from tether.persistence.artifacts.contract import ArtifactStore


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep did: the digests removed and how many it kept, by why."""

    removed: tuple[str, ...]
    referenced: int
    young: int
    total: int


async def sweep_artifacts(
    store: ArtifactStore, now_ms: int, min_age_ms: int, pending: Collection[str] = ()
) -> SweepReport:
    """Remove every artifact not referenced, not ``pending`` and put at least
    ``min_age_ms`` before ``now_ms``; see the module docstring."""
    if min_age_ms < 0:
        raise ValueError(f"min_age must be >= 0, got {min_age_ms} ms")
    cutoff = now_ms - min_age_ms
    busy = frozenset(pending)
    used: set[str] = set()
    for payload in await store.artifact_references(REF_MARKER):
        used |= references(payload)
    infos = await store.list_artifacts()
    doomed = [
        i.digest
        for i in infos
        if i.digest not in used and i.digest not in busy and i.touched_at_ms < cutoff
    ]
    removed = await store.delete_artifacts(doomed, cutoff) if doomed else []
    young = sum(1 for i in infos if i.digest not in used and i.touched_at_ms >= cutoff)
    return SweepReport(tuple(sorted(removed)), len(used & {i.digest for i in infos}), young,
                       len(infos))  # fmt: skip
