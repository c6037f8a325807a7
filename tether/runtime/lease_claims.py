"""Leases across engine and worker restarts: when a lease adopted at engine start expires, and
which leases held under a worker id a (re)joining worker keeps.

An adopted lease never gets a fresh TTL: engines restarting faster than the TTL would otherwise
keep a dead worker's lease alive for ever. It expires when a connected worker as long silent
would be taken as gone (its grant or last persisted renewal plus the silence, never past the
persisted expiry): the previous engine life may have been too short to see that its worker
stopped, and this one cannot hear a worker that has not rejoined. It gets a short grace from
when workers can reach the engine, for a live worker to come back and claim it (they rejoin
within a fraction of a second). A worker that joins with a claim (the leases its process runs)
keeps only those; the rest were a predecessor's under the same id and are reclaimed at once.

Example::

    lease = adopted(row, grace_until=now + 1.0, ttl_secs=5.0, silence_secs=1.0)
    kept, lost = sort_claims(leases, "w1", frozenset({("e/n/1", 3)}), renewed_until=now + 5.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tether.persistence.contract import WorkItemRow
from tether.runtime.lease_reports import spec_of
from tether.runtime.scheduler_messages import LiveLease


def adopted(
    row: WorkItemRow, grace_until: float, ttl_secs: float, silence_secs: float
) -> LiveLease:
    """A remote lease found at engine start (see ``adopted_expiry``)."""
    assert row.lease_owner is not None
    expires = adopted_expiry(row, grace_until, ttl_secs, silence_secs)
    return LiveLease(row, row.fence, row.lease_owner, spec_of(row), expires, None, adopted=True)


def adopted_expiry(
    row: WorkItemRow, grace_until: float, ttl_secs: float, silence_secs: float
) -> float:
    """``silence_secs`` after the lease was last renewed (its persisted expiry less
    ``ttl_secs``; never after that expiry), or ``grace_until`` if later (clock seconds)."""
    persisted = (row.lease_expires_ms or 0) / 1000
    return max(min(persisted, persisted - ttl_secs + silence_secs), grace_until)


def extend_grace(
    leases: Iterable[LiveLease], grace_until: float, ttl_secs: float, silence_secs: float
) -> None:
    """Workers can reach the engine from now, and a worker silent ``silence_secs`` is gone
    there: adopted leases not heard from since expire by that rule, with their grace from
    now."""
    for lease in leases:
        if lease.adopted and lease.expires_at is not None:
            lease.expires_at = adopted_expiry(lease.row, grace_until, ttl_secs, silence_secs)


def first_adopted_expiry(leases: Iterable[LiveLease]) -> float | None:
    """When the first adopted lease not heard from expires (the scheduler wakes then rather
    than at its next quarter-TTL sweep), or None. One already reclaimed (closing) is left
    out: its expiry has passed, and waking for it again would spin."""
    return min(
        (
            lease.expires_at
            for lease in leases
            if lease.adopted and not lease.closing and lease.expires_at is not None
        ),
        default=None,
    )


def sort_claims(
    leases: Mapping[str, LiveLease],
    owner: str,
    claims: frozenset[tuple[str, int]] | None,
    renewed_until: float,
) -> tuple[set[str], list[LiveLease]]:
    """The leases held under ``owner`` that it keeps (renewed to ``renewed_until``) and those
    its claim leaves out (a predecessor's: to reclaim). ``claims`` None keeps them all."""
    held = {wid for wid, lease in leases.items() if lease.owner == owner}
    lost: list[LiveLease] = []
    if claims is None:
        return held, lost
    for wid in list(held):
        lease = leases[wid]
        if (wid, lease.fence) in claims:
            lease.expires_at, lease.adopted = renewed_until, False
        else:
            held.discard(wid)
            lost.append(lease)
    return held, lost
