"""SchedulerActor: hands durable work items to workers under fenced leases (I5).

Work items are created in the turn that schedules them (I4). An item that is due and finds a
worker with credit in the :class:`~tether.runtime.ledger.WorkerLedger` is created already
leased to it (fence 1): the execution starts it on the in-process pool itself, or tells the
scheduler (``Leased``) to send the grant; one commit per step. An item leased to the pool
that way gets no row unless its outcome needs one (failed, dead, parked: see
``tether.runtime.pool_items``). Every other item is created pending, and the scheduler
grants it (one ``store.grant``, group-committed with the turns) as credit comes back: a
worker says how many items it can take and gets no more; nobody polls.
Items reach workers over a :class:`WorkerLink` (the pool, or a ZeroMQ peer).

A remote worker's report comes back here, is checked against the live lease (owner, fence)
and handed to the execution actor, whose turn settles the item with the fence; only then is
the report answered (``Settled``): accepted, or refused because the store found the fence
stale. The pool reports to the execution actors directly: it lives and dies with the engine.

Leases of remote workers expire when their worker stops heartbeating them (or leaves); an
expired lease is reclaimed through the execution actor as a retryable ``node_failed`` with the
reason, so the fold's retry policy spends the attempt, backs off, and dead-letters the last
one. A node past its timeout on a remote worker is stopped there and fails the same way. The
pool's leases never expire; after an engine restart they are released back to pending, and
the pool's items that had no row are written pending by their executions' recovery, both
without spending an attempt (the crash was the engine's, not the work's).

Handlers never await a commit: grants run as tasks that report back with ``_Granted``, so
reports keep flowing while a grant commits.

Example (what the runtime does)::

    ledger = WorkerLedger()
    ref = await system.spawn(lambda: SchedulerActor(store, clock, deliver, tg, ledger))
    ref.tell_nowait(WorkerJoined("local", pool_link, None, 64, local_credit=Credit(64)))
    ref.tell_nowait(WorkReady("python_tool", not_before_ms=0))
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.abc
import msgspec

from tether.actors import Actor, MailboxFull
from tether.clock import Clock, now_ms
from tether.persistence.contract import Lease, StorageError, Store
from tether.runtime.announced_tools import AnnouncedTools
from tether.runtime.counters import RuntimeCounters
from tether.runtime.executor import NodeOutcome
from tether.runtime.lease_claims import adopted, extend_grace, first_adopted_expiry
from tether.runtime.lease_reports import outcome_of, report_problem, spec_of
from tether.runtime.ledger import WorkerEntry, WorkerLedger
from tether.runtime.scheduler_messages import (
    ExecutionClosed,
    GetLeases,
    Leased,
    LiveLease,
    Settled,
    SlotsFreed,
    WorkerCredit,
    WorkerHeartbeat,
    WorkerJoined,
    WorkerLeft,
    WorkerReport,
    WorkersCanConnect,
    WorkReady,
)
from tether.runtime.scheduler_workers import WorkerMembership
from tether.runtime.tool_outcome import ERR_TIMEOUT, timeout_error

log = logging.getLogger(__name__)

#: Owner name of the in-process pool's leases.
LOCAL_OWNER: Final = "local"
DEFAULT_LEASE_TTL_MS: Final = 5_000
#: After a grant the store refused, the next try on that queue waits this long.
GRANT_RETRY_MS: Final = 1_000
#: A remote node's timeout is enforced by its worker; the engine stops it this much later.
TIMEOUT_GRACE_SECS: Final = 1.0
#: A lease adopted at engine start expires as below; a live worker that held it gets
#: at least this long after the engine can be reached to rejoin and claim or heartbeat it.
#: Live workers rejoined 0.05 s (p50) and 0.22 s (p95) after the engine's server started
#: (chaos, 2,000 runs, 266 restarts); one later loses the lease, and its step runs again
#: elsewhere (at-least-once, its late result refused by fence). Never more than the TTL: a
#: storm of short engine lives extends a dead worker's lease by at most this much each, so
#: 1 s here held a stopped worker's step ~1 s per restart.
ADOPTION_GRACE_MS: Final = 500
#: An adopted lease whose worker has not rejoined expires this long after its last renewal
#: (never past its persisted expiry): the silence after which a connected worker is taken as
#: gone (the fleet's own, once it says: ``WorkersCanConnect``), not the whole TTL (issue 19:
#: a worker stopped just after its grant lost the step for a TTL whenever the engine restarted
#: meanwhile).
ADOPTED_SILENCE_MS: Final = 1_000

#: Hands an outcome to its execution actor; False when no live actor took it.
Deliver = Callable[[NodeOutcome], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class _Granted:
    worker: WorkerEntry
    queue: str
    asked: int
    generation: int
    leases: list[Lease] = field(default_factory=list)
    error: str | None = None


class _Tick(msgspec.Struct, frozen=True, gc=False):
    pass


class SchedulerActor(WorkerMembership, Actor):
    """See the module docstring. Workers joining, leaving and lost, and the reclaim of their
    leases, are in :mod:`tether.runtime.scheduler_workers`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        deliver: Deliver,
        task_group: anyio.abc.TaskGroup,
        ledger: WorkerLedger,
        *,
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        counters: RuntimeCounters | None = None,
        adoption_grace_ms: int = ADOPTION_GRACE_MS,
        adopted_silence_ms: int = ADOPTED_SILENCE_MS,
        announced: AnnouncedTools | None = None,
    ) -> None:
        self._store = store
        #: Tools joined workers announce (None: the engine binds only its own tools).
        self._announced = announced
        # Reclaims and refused reports, for metrics: nothing else keeps them.
        self._counters = counters if counters is not None else RuntimeCounters()
        self._clock = clock
        self._deliver = deliver
        self._tg = task_group
        self._ttl_ms = lease_ttl_ms
        self._grace_secs = min(adoption_grace_ms, lease_ttl_ms) / 1000
        self._adopted_silence_secs = min(adopted_silence_ms, lease_ttl_ms) / 1000
        self._ledger = ledger
        self._workers = ledger.workers  # owner -> entry (the ledger's own dict)
        self._starved = False  # has any worker ever been starved (see WorkerEntry.starved)
        self._leases: dict[str, LiveLease] = {}
        #: queue -> generation: bumped by each WorkReady; a grant that came back short clears
        #: its queue only if nothing new arrived meanwhile (no lost wakeup).
        self._demand: dict[str, int] = {}
        self._due: list[tuple[int, str]] = []  # (not_before_ms, queue) heap
        self._timer: anyio.CancelScope | None = None
        self._timer_at: float | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def on_start(self) -> None:
        """Release what the in-process pool held when the engine died; learn open items."""
        now = now_ms(self._clock)
        if self.context.restart_count == 0:  # a restarted scheduler: the pool still runs them
            await self._store.release_leases(LOCAL_OWNER, now)
        grace = self._clock.now() + self._grace_secs
        for row in await self._store.open_work_items():
            if row.lease_owner == LOCAL_OWNER:
                continue
            if row.status == "leased" and row.lease_owner is not None:
                # A remote worker may outlive the engine: it has until a silence after the
                # lease's last renewal, or a short grace, to come back and claim, heartbeat or
                # report it (see lease_claims).
                self._leases[row.work_item_id] = adopted(
                    row, grace, self._ttl_ms / 1000, self._adopted_silence_secs
                )
            else:
                self._want(row.queue, row.not_before_ms, now)
        self._arm()

    async def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def on_receive(self, message: object) -> object:
        match message:
            case WorkerReport():
                await self._on_report(message)
            case Settled():
                self._on_settled(message)
            case _Granted():
                self._on_granted(message)
            case Leased():
                self._on_leased(message)
            case SlotsFreed():
                pass  # _pump below grants what waits
            case WorkReady():
                self._want(message.queue, message.not_before_ms, now_ms(self._clock))
            case ExecutionClosed():
                self._on_closed(message)
            case WorkerCredit():
                self._on_credit(message)
            case WorkerHeartbeat():
                self._on_heartbeat(message)
            case _Tick():
                await self._on_tick()
            case WorkerJoined():
                await self._on_joined(message)
            case WorkersCanConnect():
                if message.silence_ms is not None:  # the transport's own silence rule
                    self._adopted_silence_secs = min(message.silence_ms, self._ttl_ms) / 1000
                grace = self._clock.now() + self._grace_secs
                ttl = self._ttl_ms / 1000
                extend_grace(self._leases.values(), grace, ttl, self._adopted_silence_secs)
                # Wake when the first adopted lease expires: a quarter-TTL sweep would reclaim
                # a stopped worker's step up to 1.25 s late.
                self._arm(first_adopted_expiry(self._leases.values()))
            case WorkerLeft():
                await self._on_left(message)
            case GetLeases():
                return dict(self._leases)
            case _:
                raise TypeError(f"SchedulerActor got an unknown message {type(message).__name__}")
        self._pump()
        return None

    # -- demand and grants ----------------------------------------------------------------

    def _want(self, queue: str, not_before_ms: int, now: int) -> None:
        if self._starved:  # new work: a worker that declined the rest may take this
            for worker in self._workers.values():
                worker.starved.discard(queue)
        if not_before_ms > now:
            heapq.heappush(self._due, (not_before_ms, queue))
            self._arm()
        else:
            self._demand[queue] = self._demand.get(queue, 0) + 1

    def _pump(self) -> None:
        """Start a grant for every (worker, queue) with credit and demand, none already asking."""
        if not self._demand:
            return
        now = now_ms(self._clock)
        for queue, generation in list(self._demand.items()):
            for worker in self._workers.values():
                if queue in worker.granting or queue in worker.starved or not worker.serves(queue):
                    continue
                if not worker.local and worker.link.quiet():
                    continue  # stopped or stalled: its next heartbeat pumps again
                credit = worker.credit
                if credit.free <= 0:
                    # Whoever gives the next credit says so (the pool, or the fleet link
                    # applying a worker's Credit to the ledger): see _slots_freed.
                    credit.wanted = True
                    continue
                asked, credit.free = credit.free, 0
                worker.granting.add(queue)
                self._tg.start_soon(self._grant, worker, queue, asked, generation, now)

    async def _grant(
        self, worker: WorkerEntry, queue: str, asked: int, generation: int, now: int
    ) -> None:
        try:
            if worker.declined:
                leases = await self._store.grant(
                    queue, worker.owner, now, self._ttl_ms, asked, exclude=tuple(worker.declined)
                )
            else:  # the common grant, as every store took it before declines
                leases = await self._store.grant(queue, worker.owner, now, self._ttl_ms, asked)
            reply = _Granted(worker, queue, asked, generation, leases)
        except StorageError as exc:
            reply = _Granted(worker, queue, asked, generation, error=str(exc))
        await self._tell_self(reply)

    def _on_granted(self, msg: _Granted) -> None:
        # The worker may have left, or come back on a new connection (a new entry with its
        # full credit): only the one the credit was taken from gets the unused part back.
        worker = msg.worker if self._workers.get(msg.worker.owner) is msg.worker else None
        if msg.error is not None:
            log.error("grant on queue %s to %s failed: %s", msg.queue, msg.worker.owner, msg.error)
            # Try again in a second rather than at once: a failing store would spin.
            self._demand.pop(msg.queue, None)
            self._want(msg.queue, now_ms(self._clock) + GRANT_RETRY_MS, now_ms(self._clock))
        elif len(msg.leases) < msg.asked and self._demand.get(msg.queue) == msg.generation:
            if msg.worker.declined:  # drained for this worker only: others may take the rest
                msg.worker.starved.add(msg.queue)
                self._starved = True
            else:
                del self._demand[msg.queue]  # drained: wait for the next WorkReady or due item
        if worker is not None:
            worker.grant_done(msg.queue, msg.asked - len(msg.leases))
        now = self._clock.now()
        current = self._workers.get(msg.worker.owner)  # the same worker, maybe reconnected
        for granted in msg.leases:
            self._start(granted, current, now)
        if msg.leases and not msg.worker.local:
            self._arm()  # remote leases expire: keep the sweep running

    def _on_leased(self, msg: Leased) -> None:
        now = self._clock.now()
        for row in msg.rows:
            assert row.lease_owner is not None and row.lease_expires_ms is not None
            lease = Lease(row.work_item_id, row.fence, row.lease_owner, row.lease_expires_ms, row)
            self._start(lease, self._workers.get(row.lease_owner), now)
        self._arm()

    def _start(self, granted: Lease, worker: WorkerEntry | None, now: float) -> None:
        row = granted.item
        spec = spec_of(row)
        if worker is not None and worker.local:
            # The pool reports to the execution actor itself and cannot outlive the engine:
            # nothing to track here (its slot was taken with the credit).
            worker.link.start(LiveLease(row, granted.fence, granted.owner, spec, None, None))
            return
        timeout = spec.timeout_secs
        lease = LiveLease(
            row,
            granted.fence,
            granted.owner,
            spec,
            now + self._ttl_ms / 1000,
            now + timeout + TIMEOUT_GRACE_SECS if timeout else None,
        )
        self._leases[row.work_item_id] = lease
        if worker is None:  # left while the grant committed: reclaimed at its expiry
            return
        worker.leases.add(row.work_item_id)
        worker.link.start(lease)  # a worker gone since is reported by its link as left

    # -- reports from workers -------------------------------------------------------------

    async def _on_report(self, msg: WorkerReport) -> None:
        lease = self._leases.get(msg.work_item_id)
        worker = self._workers.get(msg.owner)
        problem = report_problem(msg, lease)
        if problem is not None:
            self._counters.reports_refused += 1
            if worker is not None:
                worker.link.answer(msg.work_item_id, msg.fence, False, problem)
            return
        assert lease is not None
        if msg.declined and worker is not None:
            worker.decline(msg.work_item_id)
        outcome = outcome_of(lease, msg)
        if not await self._deliver(outcome):
            self._drop(lease)
            if worker is not None:
                worker.link.answer(msg.work_item_id, msg.fence, False, "its execution has ended")

    def _on_settled(self, msg: Settled) -> None:
        if msg.accepted and msg.parked_until_ms is not None:
            self._want(msg.queue, msg.parked_until_ms, now_ms(self._clock))
        lease = self._leases.get(msg.work_item_id)
        if lease is None or lease.fence != msg.fence:
            return
        self._drop(lease)
        worker = self._workers.get(lease.owner)
        if worker is not None and not lease.closing:  # a reclaim answers no report
            worker.link.answer(msg.work_item_id, msg.fence, msg.accepted, msg.reason)

    def _on_closed(self, msg: ExecutionClosed) -> None:
        for wid in msg.work_item_ids:
            lease = self._leases.get(wid)
            if lease is None:
                continue
            self._drop(lease)
            self._stop(lease, msg.reason)

    def _drop(self, lease: LiveLease) -> None:
        if self._leases.get(lease.work_item_id) is not lease:
            return
        del self._leases[lease.work_item_id]
        worker = self._workers.get(lease.owner)
        if worker is not None:
            worker.leases.discard(lease.work_item_id)

    def _stop(self, lease: LiveLease, reason: str) -> None:
        worker = self._workers.get(lease.owner)
        if worker is not None:
            worker.link.stop(lease, reason)

    # -- time -----------------------------------------------------------------------------

    async def _on_tick(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._clock.now()
        for lease in list(self._leases.values()):
            if lease.closing:
                continue
            if lease.deadline is not None and now >= lease.deadline:
                self._stop(lease, "timed out")
                # Described as the worker would have (I11); a deadline implies a timeout.
                error = timeout_error(lease.spec.tool, lease.spec.timeout_secs or 0.0)
                await self._fail(lease, error, ERR_TIMEOUT)
            elif lease.expires_at is not None and now >= lease.expires_at:
                await self._reclaim(lease, f"lease expired: no heartbeat from {lease.owner}")
        now_ms_ = int(now * 1000)
        while self._due and self._due[0][0] <= now_ms_:
            _, queue = heapq.heappop(self._due)
            self._demand[queue] = self._demand.get(queue, 0) + 1
        # The next adopted lease's expiry too: a quarter-TTL sweep found a stopped worker's
        # later leases up to 1.25 s late, once the first had been reclaimed (chaos, issue 19).
        self._arm(first_adopted_expiry(self._leases.values()))

    def _arm(self, also_at: float | None = None) -> None:
        """Wake at the next due item, or every quarter TTL while remote leases are live, or at
        ``also_at`` if sooner."""
        wake = also_at
        if self._due:
            due = self._due[0][0] / 1000
            wake = due if wake is None else min(wake, due)
        # Only remote leases are kept here, and every one of them expires.
        if any(not lease.closing for lease in self._leases.values()):
            sweep = self._clock.now() + self._ttl_ms / 4000
            wake = sweep if wake is None else min(wake, sweep)
        if wake is None or (self._timer_at is not None and self._timer_at <= wake):
            return
        if self._timer is not None:
            self._timer.cancel()
        scope = anyio.CancelScope()
        self._timer, self._timer_at = scope, wake
        self._tg.start_soon(self._sleep_until, wake, scope)

    async def _sleep_until(self, at: float, scope: anyio.CancelScope) -> None:
        with scope:
            await self._clock.sleep(max(0.0, at - self._clock.now()))
            await self._tell_self(_Tick())

    async def _tell_self(self, msg: object) -> None:
        ref = self.context.self_ref
        if not ref.is_alive:
            return
        try:
            ref.tell_nowait(msg)
        except MailboxFull:
            await ref.tell(msg)
