"""A worker process's runtime: take grants from the engine, run tools, report, drain on stop.

:class:`Worker` keeps one :class:`EngineConnection` and runs each ``Grant`` as a task, at most
``concurrency`` at once. What it keeps to, and why:

* **Credit.** The Hello announces ``concurrency`` free slots; every lease, once finished
  (reported, or cancelled by the engine), gives its slot back with ``Credit(n=1)``, or, when
  reported to an engine whose Welcome says ``result_credits``, with ``credit=1`` in its Result
  (one frame less per step). The engine never restores credit on its own, so a cancelled lease
  must be credited here.
* **Results until Acked.** Each Result (or RateLimited) is kept until the engine Acks it and
  re-sent after :class:`Reconnected`; an ``Ack(accepted=False)`` (stale fence, I5) is logged
  and dropped.
* **Heartbeats** every ``heartbeat_interval_ms`` of the Welcome list the leases held (running,
  or waiting for a slot). ``HeartbeatAck(expired=...)`` and ``Cancel`` stop those tools; nothing
  is sent for them. The engine answers every heartbeat; after a few unanswered the worker says
  Hello again.
* **Claims.** Every Hello lists the leases this process holds (running, waiting, or finished
  with the Result not yet Acked): a process restarted under the same ``worker_id`` claims none
  of its predecessor's, and the engine reclaims those at once.
* **Engine restart.** The new engine starts from the Hello's full capacity while this worker
  still runs its old leases, so the next that many finished slots are not credited (``debt``),
  and a grant that finds no free slot waits for one: the concurrency limit always holds.
* **Drain.** :meth:`Worker.request_stop` stops crediting; grants already credited still run
  (dropping them would cost a lease TTL each), then Results are Acked (bounded by
  ``drain_ack_timeout_secs``), a ``Bye`` goes out and :meth:`Worker.run` returns.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterable
from typing import Final

import anyio
from msgspec.structs import replace

from tether.clock import Clock, SystemClock
from tether.fleet.connection import EngineConnection, Reconnected
from tether.fleet.keys import WorkerKeys
from tether.fleet.protocol import (
    Ack,
    Bye,
    Cancel,
    Credit,
    EngineMessage,
    Grant,
    Heartbeat,
    HeartbeatAck,
    LeaseRef,
    ProtocolError,
    WorkerMessage,
)
from tether.fleet.tool_announcements import announcements
from tether.fleet.worker_leases import Lease, LeaseKey, Outcome, fitting, run_grant
from tether.logs import lifecycle_logger
from tether.runtime.secrets import EnvSecrets, SecretSource
from tether.runtime.tools import Tool, ToolRegistry
from tether.telemetry.worker_spans import WorkerSpans

__all__ = ["Worker"]

log = logging.getLogger(__name__)
lifecycle = lifecycle_logger(__name__)

#: Time for ZeroMQ's I/O thread to put the Bye on the wire: the connection closes with
#: LINGER 0, which drops whatever is still queued. Without the Bye the engine notices the
#: worker gone after one lease TTL instead, which is harmless once nothing is held.
_BYE_GRACE_SECS: Final = 0.05


class Worker:
    """Runs granted tool calls for the engine at ``endpoint`` until asked to stop.

    Example::

        worker = Worker("tcp://engine:7701", tools=[fetch, summarize], concurrency=8)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            ...
            worker.request_stop()      # finishes in-flight tools, reports them, returns
    """

    def __init__(
        self,
        endpoint: str,
        *,
        tools: ToolRegistry | Iterable[Tool],
        queues: Iterable[str] = ("python_tool",),
        concurrency: int = 8,
        worker_id: str | None = None,
        connect_timeout_secs: float = 10.0,
        drain_ack_timeout_secs: float = 10.0,
        clock: Clock | None = None,
        keys: WorkerKeys | None = None,
        secrets: SecretSource | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.endpoint = endpoint
        self.registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.queues = list(queues)
        self.concurrency = concurrency
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.connect_timeout_secs = connect_timeout_secs
        self.drain_ack_timeout_secs = drain_ack_timeout_secs
        self._keys = keys
        #: Values of ``${secret:NAME}`` inputs, looked up here: the engine never holds them.
        self._secrets: SecretSource = secrets if secrets is not None else EnvSecrets()
        self._clock: Clock = clock or SystemClock()
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._leases: dict[LeaseKey, Lease] = {}
        self._waiting: deque[Lease] = deque()  # granted, no free slot yet (after a restart)
        self._running = 0
        self._unacked: dict[LeaseKey, Outcome] = {}
        self._debt = 0
        self._stopping = False
        self._stop = anyio.Event()
        self._changed = anyio.Event()
        self._conn: EngineConnection | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._connect_scope: anyio.CancelScope | None = None
        #: Spans of the steps run here, when the environment names an OTLP endpoint.
        self._spans = WorkerSpans.from_env(os.environ, self.worker_id)

    # --- public ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Leases held now: running, or granted and waiting for a slot."""
        return len(self._leases)

    @property
    def stopping(self) -> bool:
        """True once :meth:`request_stop` was called."""
        return self._stopping

    def held_leases(self) -> list[LeaseRef]:
        """The leases held now, as the next Heartbeat lists them."""
        return [LeaseRef(work_item_id=w, fence=f) for w, f in self._leases]

    def _claims(self) -> list[LeaseRef]:
        """What a Hello claims: the leases held and those finished but not yet Acked."""
        keys = dict.fromkeys([*self._leases, *self._unacked])
        return [LeaseRef(work_item_id=w, fence=f) for w, f in keys]

    def request_stop(self) -> None:
        """Drain: no more credit, finish and report what is held, then :meth:`run` returns.

        Safe to call from the event loop at any time, also before :meth:`run` connected.
        """
        self._stopping = True
        self._stop.set()
        if self._connect_scope is not None:
            self._connect_scope.cancel()
        self._notify()

    async def run(self) -> None:
        """Connect, serve grants until :meth:`request_stop`, drain, say Bye, return.

        Raises :class:`~tether.fleet.EngineUnreachable` when no engine answers within
        ``connect_timeout_secs`` and :class:`~tether.fleet.HandshakeRefused` when it refuses.

        Example::

            await Worker("tcp://127.0.0.1:7701", tools=[add_one]).run()
        """
        conn = EngineConnection(
            self.endpoint,
            worker_id=self.worker_id,
            queues=self.queues,
            capacity=self.concurrency,
            tools=self.registry.names(),
            connect_timeout_secs=self.connect_timeout_secs,
            keys=self._keys,
            held=self._claims,
            announced=announcements(self.registry),  # the engine binds by these
        )
        with anyio.CancelScope() as connect_scope:
            self._connect_scope = connect_scope
            if self._stopping:
                return
            await conn.__aenter__()
        self._connect_scope = None
        if connect_scope.cancelled_caught:
            return  # asked to stop before the engine answered: nothing is held
        self._conn = conn
        lifecycle.event(
            "worker_connected", worker_id=self.worker_id, engine_id=conn.engine_id,
            endpoint=self.endpoint, queues=list(self.queues), slots=self.concurrency,
            tools=list(self.registry.names()),
        )  # fmt: skip
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._read, conn)
                tg.start_soon(self._heartbeat, conn)
                tg.start_soon(conn.watch_reconnects)
                await self._drain()
                await self._send(Bye(reason="drained"))
                await anyio.sleep(_BYE_GRACE_SECS)
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            await conn.__aexit__(None, None, None)
            await anyio.to_thread.run_sync(self._spans.close)  # exports the last spans

    # --- bookkeeping ----------------------------------------------------------------------

    def _notify(self) -> None:
        if not self._stopping:
            return  # only the drain waits on changes: no event per message before that
        self._changed.set()
        self._changed = anyio.Event()

    async def _send(self, msg: WorkerMessage, frame: bytes | None = None) -> None:
        """Send ``msg`` (``frame``: its encoding, when the caller has it already)."""
        conn = self._conn
        if conn is None:
            return
        try:
            if frame is not None:
                await conn.send_frame(frame)
            else:
                await conn.send(msg)
        except RuntimeError:
            # Closed under us while shutting down: the engine's TTL and fences cover it.
            log.debug("worker %s: connection closed; %s not sent", self.worker_id, msg)

    async def _drain(self) -> None:
        await self._stop.wait()
        log.info("worker %s: draining %d lease(s)", self.worker_id, len(self._leases))
        while True:
            while self._leases:
                await self._changed.wait()
            with anyio.move_on_after(self.drain_ack_timeout_secs):
                while self._unacked and not self._leases:
                    await self._changed.wait()
            if not self._leases:
                break  # a grant already credited may arrive meanwhile: run it, then re-check
        if self._unacked:
            log.warning(
                "worker %s: leaving with %d result(s) the engine did not acknowledge within "
                "%.1fs; their leases will expire and be retried",
                self.worker_id,
                len(self._unacked),
                self.drain_ack_timeout_secs,
            )

    def _start_waiting(self) -> None:
        tg = self._tg
        assert tg is not None
        while self._waiting and self._running < self.concurrency:
            lease = self._waiting.popleft()
            if lease.revoked:
                continue
            lease.scope = anyio.CancelScope()
            self._running += 1
            tg.start_soon(self._run_lease, lease, name=f"tool {lease.grant.tool} {lease.key}")

    async def _run_lease(self, lease: Lease) -> None:
        scope = lease.scope
        assert scope is not None
        outcome: Outcome | None = None
        try:
            with scope:
                g = lease.grant
                with self._spans.step(g.traceparent, g.tool, g.execution_id, g.node_id, g.attempt):
                    outcome = await run_grant(g, self.registry, self._limiter, self._secrets)
        finally:
            self._running -= 1
            if self._leases.get(lease.key) is lease:
                del self._leases[lease.key]
        if lease.revoked or outcome is None:
            log.info(
                "worker %s: lease %s revoked; its outcome is dropped", self.worker_id, lease.key
            )
        else:
            frame = None
            credit = self._credit_in_result()
            if self._conn is not None:
                limit = self._conn.welcome.max_message_bytes
                outcome, frame = fitting(outcome, lease.grant.tool, limit, credit)
            # Kept without the credit: a Result re-sent after a reconnect frees no slot again.
            self._unacked[lease.key] = replace(outcome, credit=0) if credit else outcome
            await self._send(outcome, frame)
            if credit:
                self._start_waiting()
                self._notify()
                return
        await self._slot_freed()

    def _credit_in_result(self) -> int:
        """1 when the finished lease's slot is credited in its Result (the engine counts it,
        and the slot is not kept back: no debt, not draining), else 0."""
        conn = self._conn
        if conn is None or not conn.welcome.result_credits or self._debt or self._stopping:
            return 0
        return 1

    async def _slot_freed(self) -> None:
        if self._debt > 0:
            self._debt -= 1
        elif not self._stopping:
            await self._send(Credit(n=1))
        self._start_waiting()
        self._notify()

    def _revoke(self, key: LeaseKey, why: str) -> None:
        if self._unacked.pop(key, None) is not None:
            # Finished here, but the engine took the lease back first: its result is void.
            log.warning(
                "worker %s: engine took back lease %s after it finished (%s); its result is "
                "refused",
                self.worker_id,
                key,
                why,
            )
        lease = self._leases.pop(key, None)
        if lease is None:
            return
        lease.revoked = True
        log.info("worker %s: engine revoked lease %s (%s)", self.worker_id, key, why)
        if lease.scope is not None:
            lease.scope.cancel()  # its task frees the slot and credits it
        else:
            # Never started: it held no slot, but the engine spent credit on it.
            self._waiting.remove(lease)
            if self._tg is not None:
                self._tg.start_soon(self._slot_freed)
        self._notify()

    # --- engine messages ------------------------------------------------------------------

    async def _read(self, conn: EngineConnection) -> None:
        async for msg in conn.messages():
            await self._on_message(msg)

    async def _on_message(self, msg: EngineMessage | Reconnected) -> None:
        if isinstance(msg, Grant):
            self._on_grant(msg)
        elif isinstance(msg, Ack):
            self._on_ack(msg)
        elif isinstance(msg, Cancel):
            for key in [k for k in (*self._leases, *self._unacked) if k[0] == msg.work_item_id]:
                # A Cancel for an older fence must not stop a newer grant of the same item.
                if key[1] <= msg.fence:
                    self._revoke(key, f"cancelled: {msg.reason}")
        elif isinstance(msg, HeartbeatAck):
            for ref in msg.expired:
                self._revoke((ref.work_item_id, ref.fence), "lease expired")
        elif isinstance(msg, Reconnected):
            await self._on_reconnected(msg)
        elif isinstance(msg, ProtocolError):
            log.warning(
                "worker %s: engine refused a message (%s): %s",
                self.worker_id,
                msg.code,
                msg.message,
            )

    def _on_grant(self, grant: Grant) -> None:
        key = (grant.work_item_id, grant.fence)
        if key in self._leases or key in self._unacked:
            log.warning("worker %s: duplicate grant %s ignored", self.worker_id, key)
            return
        lease = Lease(grant)
        self._leases[key] = lease
        self._waiting.append(lease)
        self._start_waiting()
        self._notify()

    def _on_ack(self, ack: Ack) -> None:
        key = (ack.work_item_id, ack.fence)
        if self._unacked.pop(key, None) is None and ack.accepted:
            return  # an Ack for a Result re-sent after a restart and already settled
        if not ack.accepted:  # said even when the lease was revoked meanwhile (I5)
            log.warning(
                "worker %s: engine refused the result for %s fence %d: %s",
                self.worker_id,
                ack.work_item_id,
                ack.fence,
                ack.reason or "no reason given",
            )
        self._notify()

    async def _on_reconnected(self, msg: Reconnected) -> None:
        # The engine now counts the Hello's full capacity as free although these leases still
        # hold slots: do not credit the next that many finished slots.
        self._debt = len(self._leases)
        log.warning(
            "worker %s: re-registered with engine %s (life %s); %d lease(s) held, %d result(s) "
            "to re-send",
            self.worker_id,
            msg.engine_id,
            msg.incarnation or "?",
            len(self._leases),
            len(self._unacked),
        )
        await self._send(Heartbeat(leases=self.held_leases()))
        for outcome in list(self._unacked.values()):
            await self._send(outcome)

    async def _heartbeat(self, conn: EngineConnection) -> None:
        while True:
            # Re-read each time: a restarted engine may ask for another interval.
            await self._clock.sleep(conn.welcome.heartbeat_interval_ms / 1000)
            await conn.hello_if_silent()
            await self._send(Heartbeat(leases=self.held_leases()))
