"""The scheduler's side of worker membership: workers joining (and claiming the leases they
still run), giving credit, heartbeating and leaving, and the reclaim of the leases a lost or
silent worker held, failed through their executions as retryable (I5).

A mixin of :class:`~tether.runtime.scheduler.SchedulerActor`, kept apart so the scheduler's
module holds what each step goes through (reports, settles, grants, leases started); what is
here runs as workers come, go and speak, not per step.

Example (what a worker transport tells the scheduler)::

    scheduler.tell_nowait(WorkerJoined("w1", link, frozenset({"gpu"}), capacity=8))
    scheduler.tell_nowait(WorkerHeartbeat("w1", leases=[("run-1/fetch/1", 3)]))
    scheduler.tell_nowait(WorkerLeft("w1", "connection closed"))
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from tether.actors import ActorContext, ActorStopped, MailboxFull
from tether.clock import Clock
from tether.logs import lifecycle_logger
from tether.persistence.contract import TERMINAL_STATUSES, Store
from tether.runtime.announced_tools import AnnouncedTools
from tether.runtime.counters import RuntimeCounters
from tether.runtime.lease_claims import sort_claims
from tether.runtime.lease_reports import outcome_of
from tether.runtime.ledger import Credit, WorkerEntry, WorkerLedger
from tether.runtime.records import CAUSE_LEASE_LOST
from tether.runtime.scheduler_messages import (
    LiveLease,
    SlotsFreed,
    WorkerCredit,
    WorkerHeartbeat,
    WorkerJoined,
    WorkerLeft,
    WorkerReport,
)

if TYPE_CHECKING:
    from tether.runtime.scheduler import Deliver

# The scheduler's own logger: its events keep the name they are filtered by.
lifecycle = lifecycle_logger("tether.runtime.scheduler")


class WorkerMembership:
    """Workers and their lost leases, for a SchedulerActor, which provides what is below."""

    context: ActorContext
    _store: Store
    _announced: AnnouncedTools | None
    _counters: RuntimeCounters
    _clock: Clock
    _deliver: Deliver
    _ttl_ms: int
    _ledger: WorkerLedger
    _workers: dict[str, WorkerEntry]
    _leases: dict[str, LiveLease]

    def _drop(self, lease: LiveLease) -> None:
        raise NotImplementedError

    def _stop(self, lease: LiveLease, reason: str) -> None:
        raise NotImplementedError

    async def _on_joined(self, msg: WorkerJoined) -> None:
        # A worker back after an engine restart (or on a new connection) still runs the leases
        # it held: they stay its own. It announces its full capacity and withholds the credit
        # of those leases itself when they finish. A new incarnation under the same id (the
        # process restarted) runs none of its predecessor's: only what its Hello claims stays.
        renewed = self._clock.now() + self._ttl_ms / 1000
        held, lost = sort_claims(self._leases, msg.owner, msg.claims, renewed)
        credit = msg.local_credit
        entry_credit = credit if credit is not None else Credit(msg.capacity)
        entry_credit.on_free(self._slots_freed)
        entry = WorkerEntry(
            msg.owner,
            msg.link,
            msg.queues,
            entry_credit,
            local=credit is not None,
            leases=held,
            excluded=msg.excluded,
        )
        self._ledger.join(entry)
        if self._announced is not None and credit is None:
            self._announced.join(msg.owner, msg.queues, msg.announced)
        if credit is None:  # the in-process pool joins once per runtime: not news
            lifecycle.event(
                "worker_joined", worker_id=msg.owner, capacity=msg.capacity,
                queues=sorted(msg.queues) if msg.queues is not None else ["*"],
                leases_held=len(held), leases_lost=len(lost),
            )  # fmt: skip
        for lease in lost:
            if not lease.closing:
                why = f"lease lost: worker {msg.owner} came back as a new process without it"
                await self._reclaim(lease, why)

    def _slots_freed(self) -> None:
        # A worker's credit came back outside this actor (the pool's slots, a fleet worker's
        # Credit applied by its link) while items were waiting for it: pump the grants.
        ref = self.context.self_ref
        with contextlib.suppress(MailboxFull, ActorStopped):
            # A full mailbox is busy anyway: every handled message pumps the grants.
            ref.tell_nowait(SlotsFreed())

    def _on_credit(self, msg: WorkerCredit) -> None:
        worker = self._workers.get(msg.owner)
        if worker is not None and msg.n >= 0:
            worker.credit.wanted = False  # this message pumps the grants itself
            worker.credit.give(msg.n)
        elif worker is not None:
            worker.withdraw(-msg.n)

    def _on_heartbeat(self, msg: WorkerHeartbeat) -> None:
        worker = self._workers.get(msg.owner)
        if worker is None:
            return
        expires = self._clock.now() + self._ttl_ms / 1000
        unknown: list[tuple[str, int]] = []
        for wid, fence in msg.leases:
            lease = self._leases.get(wid)
            if lease is None or lease.fence != fence or lease.owner != msg.owner or lease.closing:
                unknown.append((wid, fence))
                continue
            lease.expires_at, lease.adopted = expires, False
            worker.leases.add(wid)
        # Answered every time, also when all is well: the answer is the engine's sign of life
        # (a fleet worker that hears none for a few heartbeats says Hello again).
        worker.link.unknown(unknown)

    async def _on_left(self, msg: WorkerLeft) -> None:
        if msg.reason == "replaced":
            return  # the same worker on a new connection: WorkerJoined follows
        entry = self._ledger.leave(msg.owner)
        if entry is None:
            return
        if self._announced is not None:
            self._announced.leave(msg.owner)
        said_bye = msg.reason.startswith("bye")  # a drained worker leaving: not a fault
        lifecycle.event(
            "worker_left" if said_bye else "worker_lost",
            logging.INFO if said_bye else logging.WARNING,
            worker_id=msg.owner, reason=msg.reason, leases_held=len(entry.leases),
        )  # fmt: skip
        for wid in list(entry.leases):
            lease = self._leases.get(wid)
            if lease is not None and lease.owner == msg.owner and not lease.closing:
                await self._reclaim(lease, f"lease expired: worker {msg.owner} {msg.reason}")

    async def _reclaim(self, lease: LiveLease, reason: str) -> None:
        row = lease.row
        self._counters.leases_reclaimed += 1
        lifecycle.event(
            "lease_reclaimed", logging.WARNING, execution_id=row.execution_id,
            node_id=row.node_id, attempt=row.attempt, worker_id=lease.owner, reason=reason,
        )  # fmt: skip
        self._stop(lease, reason)
        # The worker died or went silent: not the tool's failure (see fold_routes.will_retry).
        await self._fail(lease, reason, "LeaseExpired", CAUSE_LEASE_LOST)

    async def _fail(self, lease: LiveLease, error: str, error_type: str, cause: str = "") -> None:
        """Fail the lease's attempt through its execution (retryable; the fold decides)."""
        lease.closing = True
        report = WorkerReport(
            lease.owner, lease.work_item_id, lease.fence, ok=False, error=error,
            error_type=error_type, retryable=True, cause=cause,
        )  # fmt: skip
        if await self._deliver(outcome_of(lease, report)):
            return
        row = await self._store.get_execution(lease.row.execution_id)
        if row is None or row.status in TERMINAL_STATUSES:
            self._drop(lease)  # its run ended: the last turn settled the item
            return
        # The run is not live here (yet): keep the lease and try again at a later sweep, so
        # the item is not left leased to nobody.
        lease.closing = False
        lease.expires_at = self._clock.now() + self._ttl_ms / 1000
