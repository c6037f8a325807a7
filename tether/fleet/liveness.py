"""When a fleet worker is quiet (given no new work) and when it is gone (its leases reclaimed).

A worker that sent nothing at all (heartbeats count) for ``quiet_secs`` (``QUIET_AFTER_HEARTBEATS``
heartbeat intervals, at least ``MIN_QUIET_MS``) is *quiet*: it is stopped or stalled, and the
scheduler gives it no new work until it speaks again, since a step granted to it could not
start until it is reclaimed. Nothing is taken from it yet.

One silent for ``silence_ms`` (``SILENT_AFTER_HEARTBEATS`` intervals, at least
``MIN_SILENCE_MS``, never more than the lease TTL) is gone: the broker forgets it and the
scheduler reclaims its leases at once. If it was only slow, its next message is answered
``hello_required`` and it says Hello again, and any result it sends for a reclaimed lease is
refused by its fence (I5). That is why the silence can be far shorter than the TTL: a stopped
worker's steps run again elsewhere after a few missed heartbeats (issue 19). An engine that
stalls loses nobody: heartbeats queued in its socket are read before a sweep. A lease adopted
by a restarted engine expires by the same silence (``tether.runtime.lease_claims``).

Example::

    rules = Liveness.of(heartbeat_interval_ms=250, lease_ttl_ms=5_000)
    assert (rules.quiet_secs, rules.silence_ms) == (0.625, 1_000)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: Four heartbeats a second: a worker that stopped (SIGSTOP, a stalled host) is quiet after
#: about half a second, where a second's interval let it take a step it could not start for two
#: or three. The cost is four small messages a second per worker each way.
DEFAULT_HEARTBEAT_INTERVAL_MS: Final = 250
#: Missed heartbeat intervals after which a worker is taken as gone: more than two, so one late
#: heartbeat on a loaded machine does not lose a live worker ...
SILENT_AFTER_HEARTBEATS: Final = 2.5
#: ... and never under this: four of the default heartbeats. A worker stalled longer is taken
#: as gone at no cost to correctness (its steps run again elsewhere, its late results are
#: refused by their fence). 2 s here made each step granted to a stopped worker wait 2-3 s
#: (issue 19: chaos p99 7.0 s against 3.7 s with 1 s, 600 runs, 80 faults, same seed).
MIN_SILENCE_MS: Final = 1_000
#: Missed heartbeat intervals after which a worker is quiet ...
QUIET_AFTER_HEARTBEATS: Final = 2.5
#: ... and never under this.
MIN_QUIET_MS: Final = 500


@dataclass(frozen=True, slots=True)
class Liveness:
    """A fleet's quiet and silence thresholds."""

    silence_ms: int
    quiet_secs: float

    @classmethod
    def of(
        cls, heartbeat_interval_ms: int, lease_ttl_ms: int, silence_ms: int | None = None
    ) -> Liveness:
        """The rules for heartbeats every ``heartbeat_interval_ms``; ``silence_ms`` overrides
        the default silence (never more than ``lease_ttl_ms``)."""
        default = max(MIN_SILENCE_MS, int(SILENT_AFTER_HEARTBEATS * heartbeat_interval_ms))
        silence = min(lease_ttl_ms, silence_ms or default)
        quiet_ms = max(MIN_QUIET_MS, QUIET_AFTER_HEARTBEATS * heartbeat_interval_ms)
        return cls(silence, min(silence, quiet_ms) / 1000)
