"""The engine's side of the fleet: the broker's peers as the scheduler's workers.

:class:`FleetLink` is the :class:`~tether.fleet.handler.BrokerHandler` the runtime gives its
:class:`~tether.fleet.broker.Broker`: it turns wire messages into scheduler messages (Hello into
``WorkerJoined``, Result and RateLimited into ``WorkerReport``, ...). Each peer becomes a
:class:`PeerLink`, the scheduler's way back to that worker (Grant, Cancel, Ack, HeartbeatAck).

Example (what ``ZmqFleet("tcp://127.0.0.1:7701")`` does in a Runtime)::

    async with FleetLink.broker("tcp://127.0.0.1:7701", scheduler_ref, engine_id="eng") as broker:
        print(broker.endpoint)
"""

from __future__ import annotations

import contextlib

from tether.actors import ActorRef, ActorStopped, MailboxFull
from tether.fleet.broker import DEFAULT_MAX_WORKERS_PER_PRINCIPAL, Broker
from tether.fleet.handler import Peer
from tether.fleet.keys import EngineKeys
from tether.fleet.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Ack,
    Cancel,
    Credit,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    RateLimited,
    Result,
    WorkerMessage,
)
from tether.fleet.tool_announcements import signatures_of
from tether.runtime.ledger import WorkerLedger
from tether.runtime.scheduler_messages import (
    LiveLease,
    WorkerCredit,
    WorkerHeartbeat,
    WorkerJoined,
    WorkerLeft,
    WorkerReport,
)
from tether.telemetry.trace_ids import TraceParents


class PeerLink:
    """The scheduler's :class:`~tether.runtime.scheduler.WorkerLink` to one connected worker."""

    def __init__(self, broker: Broker, identity: bytes, traces: TraceParents) -> None:
        self._broker = broker
        self._traces = traces
        #: The peer's ROUTER identity: which connection this link reaches.
        self.identity = identity

    def start(self, lease: LiveLease) -> bool:
        row, spec = lease.row, lease.spec
        grant = Grant(
            work_item_id=row.work_item_id,
            fence=lease.fence,
            execution_id=row.execution_id,
            node_id=row.node_id,
            attempt=row.attempt,
            dispatch=row.dispatch,
            tool=spec.tool,
            input=spec.input,
            timeout_secs=spec.timeout_secs,
            traceparent=self._traces.of(row.execution_id, row.node_id, row.dispatch),
        )
        return self._broker.send(self.identity, grant)

    def quiet(self) -> bool:
        return self._broker.quiet(self.identity)

    def stop(self, lease: LiveLease, reason: str) -> None:
        self._broker.send(self.identity, Cancel(lease.work_item_id, lease.fence, reason))

    def answer(self, work_item_id: str, fence: int, accepted: bool, reason: str) -> None:
        self._broker.send(self.identity, Ack(work_item_id, fence, accepted, reason))

    def unknown(self, leases: list[tuple[str, int]]) -> None:
        expired = [LeaseRef(wid, fence) for wid, fence in leases]
        answer = HeartbeatAck(expired=expired, incarnation=self._broker.incarnation)
        self._broker.send(self.identity, answer)


class FleetLink:
    """Forwards what the broker hears to the scheduler actor, in arrival order.

    A Credit from a worker the scheduler has already joined on this very connection goes
    straight to its ``ledger`` entry instead (one actor hop less per step): credit only adds
    up, so its order against the messages still queued for the scheduler does not matter, and
    the credit is there for the next step's ``ledger.take`` sooner. The scheduler, if items
    were waiting for credit, hears of it (``Credit.wanted``, see ``SchedulerActor._pump``).
    A Credit from a connection not (or no longer) in the ledger takes the ordered way, after
    its ``WorkerJoined``.
    """

    def __init__(self, scheduler: ActorRef, ledger: WorkerLedger | None = None) -> None:
        self._scheduler = scheduler
        self._ledger = ledger
        self._broker: Broker | None = None
        self._traces = TraceParents()  # the Grants' traceparents, shared by the peers

    @classmethod
    def broker(
        cls,
        endpoint: str,
        scheduler: ActorRef,
        *,
        engine_id: str,
        heartbeat_interval_ms: int,
        lease_ttl_ms: int,
        keys: EngineKeys | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_workers_per_principal: int = DEFAULT_MAX_WORKERS_PER_PRINCIPAL,
        silence_ms: int | None = None,
        ledger: WorkerLedger | None = None,
    ) -> Broker:
        """A Broker on ``endpoint`` whose peers work for ``scheduler`` (enter it to bind);
        ``keys`` and the limits are the Broker's; ``ledger``: the scheduler's, where Credits
        go directly (None: every Credit goes to the scheduler)."""
        link = cls(scheduler, ledger)
        broker = Broker(
            endpoint,
            link,
            engine_id=engine_id,
            heartbeat_interval_ms=heartbeat_interval_ms,
            lease_ttl_ms=lease_ttl_ms,
            keys=keys,
            max_message_bytes=max_message_bytes,
            max_workers_per_principal=max_workers_per_principal,
            silence_ms=silence_ms,
            result_credits=True,  # on_message counts them
        )
        link._broker = broker
        return broker

    async def _tell(self, message: object) -> None:
        # Waits while the mailbox is full: a full scheduler pushes back on the broker's
        # reading (and so on the workers) instead of dropping a report. Stopped: the engine
        # is shutting down. tell_nowait first: no coroutine per message when there is room.
        try:
            self._scheduler.tell_nowait(message)
        except MailboxFull:
            with contextlib.suppress(ActorStopped):
                await self._scheduler.tell(message)
        except ActorStopped:
            pass

    def _credit_applied(self, peer: Peer, n: int) -> bool:
        """Give ``n`` credits to ``peer``'s ledger entry if the scheduler joined it on this
        connection (see the class docstring); False: tell the scheduler instead."""
        entry = self._ledger.get(peer.worker_id) if self._ledger is not None else None
        if entry is None:
            return False
        link = entry.link
        if type(link) is not PeerLink or link.identity != peer.identity:
            return False  # an earlier connection's entry: its WorkerJoined is still queued
        entry.credit.give(n)
        return True

    async def on_worker_joined(self, peer: Peer) -> None:
        assert self._broker is not None
        link = PeerLink(self._broker, peer.identity, self._traces)
        joined = WorkerJoined(
            peer.worker_id, link, frozenset(peer.queues), peer.capacity, claims=peer.claims,
            announced=signatures_of(peer.announced),
        )  # fmt: skip
        await self._tell(joined)

    async def on_worker_left(self, peer: Peer, reason: str) -> None:
        await self._tell(WorkerLeft(peer.worker_id, reason))

    async def on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        owner = peer.worker_id
        if type(msg) is Result:
            report = WorkerReport(
                owner, msg.work_item_id, msg.fence, msg.ok, msg.output, msg.error,
                msg.error_type, msg.retryable, msg.duration_ms, traceback=msg.traceback,
            )  # fmt: skip
            await self._report(peer, report, msg.credit)
        elif type(msg) is Credit:
            if not self._credit_applied(peer, msg.n):
                await self._tell(WorkerCredit(owner, msg.n))
        elif type(msg) is Heartbeat:
            refs = [(lease.work_item_id, lease.fence) for lease in msg.leases]
            await self._tell(WorkerHeartbeat(owner, refs))
        elif type(msg) is RateLimited:
            parked = WorkerReport(
                owner, msg.work_item_id, msg.fence, ok=False, error=msg.error,
                error_type="RateLimited", retry_after_secs=msg.retry_after_secs,
            )  # fmt: skip
            await self._report(peer, parked, msg.credit)

    async def _report(self, peer: Peer, report: WorkerReport, credit: int) -> None:
        """Tell ``report``; the slot it carries (``credit``), as the Credit that would have
        followed it: applied to the ledger at once, or told after the report."""
        told = credit and not self._credit_applied(peer, credit)
        await self._tell(report)
        if told:
            await self._tell(WorkerCredit(peer.worker_id, credit))
