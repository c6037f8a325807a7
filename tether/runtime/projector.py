"""The projector: follows the journal's status changes into the run views, off the turn.

A turn that changes an execution's status writes one feed row in its own transaction (see
:mod:`tether.persistence.views`); after it commits, the execution actor nudges the projector
(setting an event: nothing else happens on the turn's path). The projector's task then moves
the views on in transactions of their own, a batch of status changes at a time, until the
feed is drained. Reads that promise the present (``rt.pending_approvals()``) call
:meth:`Projector.catch_up` first; the dashboard's pages and counts read the views as they are.

How far behind the views can be is the time a nudge waits for the projection that follows it:
:attr:`Projector.lag` keeps the latest and the worst, in seconds of the clock's monotonic time.

Example::

    projector = Projector(store, clock)
    tg.start_soon(projector.run)
    services.views_changed = projector.nudge
    ...
    await projector.catch_up()          # every status change committed so far is in the views
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tether.clock import Clock
from tether.persistence.contract import Store

log = logging.getLogger(__name__)

#: Status changes per projection transaction: big enough to drain a burst in a few commits,
#: small enough that one never holds the writer long.
BATCH = 1000
#: After a nudge the projector waits this long before projecting, so the status changes of
#: many runs share one transaction: a projection per run start and end cost the chain
#: benchmark 10-20% of its steps/s (an extra commit, with its fsync, each). It is the views'
#: added lag; reads that promise the present do not wait for it. Real time on the event loop,
#: not the runtime's clock: it batches work and decides nothing, and a virtual clock's tests
#: would otherwise see it as one more timer to advance.
COALESCE_SECS = 0.05


@dataclass
class ProjectorLag:
    """Seconds from a nudge (a status change committed) to the end of the projection that
    took it, and the status changes projected."""

    last_s: float = 0.0
    max_s: float = 0.0
    #: Summed over the projections that followed a nudge (``total_s / nudged``: the mean).
    total_s: float = 0.0
    nudged: int = 0
    projected: int = 0
    projections: int = 0


class Projector:
    """Keeps the store's run views in step with its journal; see the module docstring."""

    def __init__(
        self, store: Store, clock: Clock, batch: int = BATCH, coalesce: float = COALESCE_SECS
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self._coalesce = coalesce
        self._wanted = asyncio.Event()
        self._lock = asyncio.Lock()
        #: When the oldest nudge not yet projected came (None: none waiting).
        self._nudged_at: float | None = None
        #: A projection drained the feed and no status change committed since.
        self._clean = False
        #: Status-changing turns being written: committed or not, not nudged yet (so a read
        #: that comes between one's commit and its nudge still projects).
        self._writing = 0
        self.lag = ProjectorLag()

    def nudge(self) -> None:
        """A status change committed: project it soon (the turn's only cost: this call)."""
        if self._nudged_at is None:
            self._nudged_at = self._clock.monotonic()
        self._clean = False
        self._wanted.set()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around the append of a turn that changes a status: until it is over, the views
        are not taken as clean (its commit becomes visible to readers before this nudges);
        then, written or failed, it nudges.

        Example::

            with projector.writing():
                await store.append(turn)
        """
        self._writing += 1
        self._clean = False
        try:
            yield
        finally:
            self._writing -= 1
            self.nudge()

    async def run(self) -> None:
        """Project whenever nudged, until cancelled. The first pass takes what the feed held
        when the engine started (a restart resumes from the persisted position)."""
        self.nudge()
        while True:
            await self._wanted.wait()
            await asyncio.sleep(self._coalesce)
            try:
                await self.catch_up()
            except Exception as exc:  # the views only trail: the next change tries again
                log.warning("run views: projection failed: %s", exc)

    async def catch_up(self) -> int:
        """Project until the views hold every status change committed before this call;
        return how many were projected. One projection at a time; none at all when no
        status change committed since the last one drained the feed."""
        async with self._lock:
            if self._clean:
                return 0
            self._wanted.clear()
            since = self._nudged_at
            self._nudged_at = None
            total = 0
            try:
                while True:
                    n = await self._store.project_views(self._batch)
                    total += n
                    if n < self._batch:
                        break
            except BaseException:
                if since is not None and self._nudged_at is None:
                    self._nudged_at = since  # not projected: still waiting
                raise
            # Clean only if no nudge came while it projected and no status turn is being
            # written (one may have committed after this projection's read).
            self._clean = self._nudged_at is None and self._writing == 0
            self._measure(since, total)
            return total

    def _measure(self, since: float | None, projected: int) -> None:
        lag = self.lag
        lag.projections += 1
        lag.projected += projected
        if since is not None:
            lag.last_s = self._clock.monotonic() - since
            lag.max_s = max(lag.max_s, lag.last_s)
            lag.total_s += lag.last_s
            lag.nudged += 1
