"""The engine side of the worker fleet: one ZeroMQ ROUTER, peers, liveness, typed messages.

The broker moves messages and reports peers; it knows nothing of journals, leases or
scheduling. A :class:`BrokerHandler` (the scheduler) hears who joined, who left and why, and
every other message; it answers through :meth:`Broker.send`. This module is the path every
message takes; the socket around it is :mod:`tether.fleet.router_socket`'s, what a Hello
becomes is :mod:`tether.fleet.joining`'s, and how a worker is found gone without a Bye is
:mod:`tether.fleet.broker_departures`'s.

Reading: one pump task drains the socket with ``NOBLOCK`` until ``EAGAIN`` and only then waits
on the socket's FD (see :mod:`tether.fleet._aiozmq`). Measured with
``python -m benchmarks.zmq_roundtrip --repeats 5`` (2 vCPU VM, CPython 3.11.7, pyzmq 27.3 /
libzmq 4.3.5, 200-byte messages, 500 in flight, peer in another process; two runs, medians,
round trips/s; the VM was shared, load 1-2, so runs differ by up to 2x)::

                                           run 1     run 2
    blocking REQ/REP, 1 in flight          5.7k      5.9k    (75-100 us = 10-13k/s when quiet)
    zmq.asyncio ROUTER, one await/message  13.8k     16.7k
    batched reader (add_reader + drain)    91.0k     62.4k
    Broker <- blocking protocol peer       92.1k     37.9k
    Broker <- EngineConnection peer        60.9k     36.6k

The batched reader beat one await per message 3.7x-6.6x in every run, hence this design. The
Broker stays close to the bare reader because its hot path passes flags as plain ints and sends
the two frames itself: pyzmq's flag enums and ``send_multipart`` cost the Broker about 40%.

Sending: :meth:`Broker.send` never blocks. The ROUTER has ``ROUTER_MANDATORY`` set, so a message
to a connection ZeroMQ no longer knows raises ``EHOSTUNREACH`` instead of vanishing, and a peer
whose queue reached the high-water mark raises ``EAGAIN`` instead of being silently dropped
(what a default ROUTER does at 1,000 queued messages). Both mean the worker is gone or not
reading: the broker forgets it and reports ``on_worker_left``; it never raises to the caller.
What one loop turn sends a worker that reads Batch frames goes as one frame at the turn's end
(:mod:`tether.fleet.broker_sending`). The high-water mark (``hwm``, default 50,000 per peer and
direction) is far above anything the credit flow lets build up (about a worker's capacity in
grants, plus acks): reaching it means the peer is stuck, not busy.

Liveness (:mod:`tether.fleet.liveness`): a worker that sent nothing (heartbeats count) for a
few heartbeat intervals is *quiet* and gets no new work until it speaks; one silent for
``silence_ms`` is reported ``on_worker_left(peer, "silent for N ms")`` and forgotten, and the
scheduler reclaims its leases at once (safe by fence, I5). Silence is measured on the event
loop's clock, swept every fifth of ``silence_ms`` once the socket is drained (a heartbeat still
queued is read first; a socket that never drains is swept a fifth late at the most). A worker
whose connection closed (its process died) is reported sooner, ``"its connection closed"``, a
moment after ZeroMQ says a connection dropped (see :mod:`tether.fleet.broker_departures`).

All handler callbacks run one at a time, in order, on the pump task; while one awaits, the broker
reads nothing more (the sockets' queues then push back on the workers).

Who may join (I14): with ``keys`` the socket is a CURVE server and only the workers' public keys
in ``keys.workers`` connect at all (see :mod:`tether.fleet.zap`); each message's ``User-Id`` is
its connection's key, the peer's principal. Without keys only a loopback (or ``ipc://``) endpoint
binds: :class:`~tether.fleet.keys.InsecureEndpoint` otherwise. Which Hello joins is
:class:`~tether.fleet.peer_table.PeerTable`'s rule: one worker id per connection, no takeover of a
live id, at most ``max_workers_per_principal`` workers per key. Frames above
``max_message_bytes`` (``ZMQ_MAXMSGSIZE``) make ZeroMQ close the sender's connection; the worker
learns the limit from Welcome and never sends one.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Mapping
from types import MappingProxyType, TracebackType
from typing import Final

import zmq

from tether.fleet._aiozmq import NOBLOCK, POLLIN, SocketWaiter, recv_frames
from tether.fleet.broker_departures import (
    DISCONNECT_PROBE_DELAY_SECS as DISCONNECT_PROBE_DELAY_SECS,
)
from tether.fleet.broker_sending import BrokerSending
from tether.fleet.handler import BrokerHandler, Peer
from tether.fleet.joining import joined_peer, protocol_refusal
from tether.fleet.keys import EngineKeys
from tether.fleet.liveness import DEFAULT_HEARTBEAT_INTERVAL_MS, Liveness
from tether.fleet.outbox import Outbox
from tether.fleet.peer_table import PeerTable, Refusal
from tether.fleet.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ERR_BAD_FRAME,
    ERR_HELLO_REQUIRED,
    PROTOCOL_VERSION,
    Batch,
    Bye,
    EngineMessage,
    FrameError,
    HeartbeatAck,
    Hello,
    Welcome,
    WorkerMessage,
    decode_worker_message,
    encode,
)
from tether.fleet.router_socket import DEFAULT_HWM as DEFAULT_HWM
from tether.fleet.router_socket import ZMTP_HEARTBEAT_IVL_MS as ZMTP_HEARTBEAT_IVL_MS
from tether.fleet.router_socket import ZMTP_HEARTBEAT_TIMEOUT_MS as ZMTP_HEARTBEAT_TIMEOUT_MS
from tether.fleet.router_socket import RouterSocket

__all__ = ["Broker", "BrokerHandler", "Peer"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL_MS: Final = 5_000
#: Messages handled per pump turn before yielding to other tasks (fairness).
_BATCH: Final = 256
#: Workers one key (or, without keys, all loopback connections together) may register.
DEFAULT_MAX_WORKERS_PER_PRINCIPAL: Final = 256
_RCVMORE: Final = int(zmq.RCVMORE)


class Broker(BrokerSending):
    """The engine's ROUTER socket, used as an async context manager.

    Example::

        async with Broker("tcp://127.0.0.1:0", scheduler, engine_id="eng-1") as broker:
            print(broker.endpoint)                  # tcp://127.0.0.1:41235
            ...
            broker.send(peer.identity, grant)       # False if that worker is gone
    """

    def __init__(
        self,
        endpoint: str,
        handler: BrokerHandler,
        *,
        engine_id: str,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        lease_ttl_ms: int = DEFAULT_LEASE_TTL_MS,
        hwm: int = DEFAULT_HWM,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        keys: EngineKeys | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_workers_per_principal: int = DEFAULT_MAX_WORKERS_PER_PRINCIPAL,
        silence_ms: int | None = None,
        result_credits: bool = False,
    ) -> None:
        """``result_credits``: the handler counts ``Result.credit`` as a Credit (the Welcome
        says so, and workers stop sending a Credit after each Result)."""
        if heartbeat_interval_ms < 1:
            raise ValueError("heartbeat_interval_ms must be >= 1")
        if lease_ttl_ms < 2 * heartbeat_interval_ms:
            raise ValueError(
                f"lease_ttl_ms ({lease_ttl_ms}) must be at least twice heartbeat_interval_ms "
                f"({heartbeat_interval_ms}), or one late heartbeat loses the worker"
            )
        self.endpoint = endpoint
        self.engine_id = engine_id
        #: This life of the engine, in every Welcome, HeartbeatAck and refusal.
        self.incarnation = secrets.token_hex(8)
        # Checks hwm, max_message_bytes and the endpoint (I14); opens nothing yet. The probe
        # sees whether ZeroMQ still reaches a connection; a worker ignores an empty HeartbeatAck.
        self._router = RouterSocket(
            endpoint,
            context=context,
            keys=keys,
            hwm=hwm,
            max_message_bytes=max_message_bytes,
            probe=encode(HeartbeatAck(incarnation=self.incarnation)),
        )
        self._handler = handler
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._lease_ttl_ms = lease_ttl_ms
        self._liveness = Liveness.of(heartbeat_interval_ms, lease_ttl_ms, silence_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hwm = hwm
        self._keys = keys
        self._welcome = encode(
            Welcome(
                protocol=PROTOCOL_VERSION,
                engine_id=engine_id,
                heartbeat_interval_ms=heartbeat_interval_ms,
                lease_ttl_ms=lease_ttl_ms,
                max_message_bytes=max_message_bytes,
                incarnation=self.incarnation,
                result_credits=result_credits,
                batches=True,
            )
        )
        self._table = PeerTable(max_per_principal=max_workers_per_principal)
        self._peers = self._table.by_identity
        self._departures: deque[tuple[Peer, str]] = deque()
        self._sock: zmq.Socket[bytes] | None = None
        self._waiter: SocketWaiter | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe_at: float | None = None
        self._closed = False
        self._outbox = Outbox()  # see BrokerSending
        self._flush_soon = False

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Broker:
        loop = self._loop = asyncio.get_running_loop()
        router = self._router
        self.endpoint = router.bind(loop, self._probe_soon)
        # The pump and sends use these directly: no lookup through the router per message.
        self._sock, self._waiter = router.sock, router.waiter
        self._task = loop.create_task(self._pump(), name=f"fleet broker {self.engine_id}")
        self._task.add_done_callback(self._pump_done)
        return self

    def _pump_done(self, task: asyncio.Task[None]) -> None:
        # Say so at once: otherwise a dead pump shows only as silence until aclose() raises.
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "fleet broker %s stopped reading: its pump failed",
                self.engine_id,
                exc_info=task.exception(),
            )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading and close the socket; pending outgoing messages are dropped.

        Once it returns the port is free again (unless a ``context`` was passed in: then its
        owner terminates it).
        """
        if self._closed:
            return
        self._flush()  # what was sent before the close goes out (or is dropped with LINGER 0)
        self._closed = True
        task = self._task
        try:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])
            await self._router.stop_watching()
        finally:
            self._router.close()
        if task is not None and not task.cancelled() and task.exception() is not None:
            raise RuntimeError("the fleet broker's pump failed") from task.exception()

    # --- public API -----------------------------------------------------------------------

    @property
    def peers(self) -> Mapping[bytes, Peer]:
        """The workers known now, by ROUTER identity (a read-only live view)."""
        return MappingProxyType(self._peers)

    def peer_for(self, worker_id: str) -> Peer | None:
        """The connected peer with this worker id, if any."""
        return self._table.peer_for(worker_id)

    @property
    def silence_ms(self) -> int:
        """How long a worker may say nothing before it is taken as gone."""
        return self._liveness.silence_ms

    def quiet(self, identity: bytes) -> bool:
        """Has the worker at ``identity`` said nothing (heartbeats count) for a few heartbeat
        intervals? Then it is stopped or stalled, and the scheduler gives it no new work until
        it speaks again: a step granted to it would wait for the longer silence that reclaims
        it. True for a worker the broker does not know.

        Example::

            if not broker.quiet(peer.identity): ...   # may take a grant now
        """
        peer = self._peers.get(identity)
        if peer is None or self._loop is None:
            return True
        return self._loop.time() - peer.last_seen > self._liveness.quiet_secs

    def send(self, identity: bytes, msg: EngineMessage) -> bool:
        """Queue ``msg`` for the worker at ``identity`` without blocking.

        True when queued. False when that worker is not (or no longer) known; if this very
        send found it unreachable or not reading, it is forgotten and ``on_worker_left`` follows.
        To a worker that reads Batch frames the message goes at the end of this loop turn with
        the others the turn sends it (see :mod:`tether.fleet.broker_sending`); a failure then
        forgets it the same way.

        Example::

            if not broker.send(peer.identity, Cancel(work_item_id=w, fence=3, reason="cancelled")):
                ...  # the worker is gone; its leases expire and are reclaimed
        """
        if self._sock is None or self._closed:
            raise RuntimeError("the broker is not running (use it inside `async with`)")
        peer = self._peers.get(identity)
        if peer is None:
            return False
        if not peer.batches:
            return self._send_frame(identity, encode(msg))
        # Held to the end of this loop turn: with what else the turn sends it, one frame.
        self._outbox.add(identity, encode(msg))
        if not self._flush_soon:
            self._flush_soon = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)
        return True

    # --- the pump -------------------------------------------------------------------------

    async def _pump(self) -> None:
        sock, waiter = self._sock, self._waiter
        assert sock is not None and waiter is not None
        loop = asyncio.get_running_loop()
        silence = self._liveness.silence_ms / 1000
        sweep_every = silence / 5
        next_sweep = loop.time() + sweep_every
        timer = loop.call_at(next_sweep, waiter.interrupt)
        try:
            while True:
                handled = 0
                now = loop.time()
                while handled < _BATCH:
                    try:
                        frames, principal = self._recv(sock)
                    except zmq.Again:
                        break
                    handled += 1
                    await self._on_frames(frames, principal, now)
                busy = handled > 0
                if self._probe_at is not None and loop.time() >= self._probe_at:
                    self._forget_unreachable()
                while self._departures:
                    peer, reason = self._departures.popleft()
                    await self._call(self._handler.on_worker_left(peer, reason))
                    busy = True
                now = loop.time()
                # Once drained (a heartbeat still queued is read first), or a sweep interval
                # late at the most: a socket that never drains must not stop the sweeps.
                if now >= next_sweep and (handled < _BATCH or now >= next_sweep + sweep_every):
                    self._sweep(now, silence)
                    next_sweep = now + sweep_every
                    timer.cancel()
                    timer = loop.call_at(next_sweep, waiter.interrupt)
                    busy = True
                if handled == _BATCH:
                    await asyncio.sleep(0)
                elif not busy:
                    # The last socket operation was a recv that hit EAGAIN, so waiting on the
                    # FD is safe (see _aiozmq); sends from other tasks poke the waiter.
                    await waiter.wait(POLLIN)
        finally:
            timer.cancel()

    def _recv(self, sock: zmq.Socket[bytes]) -> tuple[list[bytes], str | None]:
        """The next message's frames and its connection's principal (the CURVE key, z85)."""
        if self._keys is None:
            return recv_frames(sock), None
        frames = [sock.recv(NOBLOCK)]
        principal: str | None = None
        while sock.get(_RCVMORE):
            # Not copied as bytes at once: the frame carries the ZAP handler's User-Id.
            frame = sock.recv(NOBLOCK, copy=False)
            user = frame.get("User-Id")
            principal = user if isinstance(user, str) else None
            frames.append(frame.bytes)
        return frames, principal

    async def _on_frames(self, frames: list[bytes], principal: str | None, now: float) -> None:
        identity = frames[0]
        peer = self._peers.get(identity)
        if peer is not None and peer.principal != principal:
            # Another key behind an identity the broker remembers (a peer may choose its
            # ROUTER identity, and an old connection's lingers until it is forgotten).
            peer = None
        if peer is not None:
            peer.last_seen = now
        if len(frames) != 2:
            self._refuse(
                identity,
                ERR_BAD_FRAME,
                f"expected one frame per message, got {len(frames) - 1} frames",
            )
            return
        try:
            msg = decode_worker_message(frames[1])
        except FrameError as exc:
            self._refuse(identity, ERR_BAD_FRAME, str(exc))
            return
        if type(msg) is Hello:
            await self._on_hello(identity, principal, msg, now)
        elif peer is None:
            self._refuse(
                identity,
                ERR_HELLO_REQUIRED,
                f"engine {self.engine_id!r} does not know this connection: send Hello first",
            )
        elif type(msg) is Batch:
            await self._on_batch(peer, msg)
        else:
            await self._on_message(peer, msg)

    async def _on_batch(self, peer: Peer, batch: Batch) -> None:
        """Each message of a worker's Batch, in order, as if it came in a frame of its own."""
        identity = peer.identity
        for frame in batch.frames:
            if self._peers.get(identity) is not peer:
                return  # it said Bye (or was forgotten) part way: the rest is not its to say
            try:
                msg = decode_worker_message(frame)
            except FrameError as exc:
                self._refuse(identity, ERR_BAD_FRAME, f"in a batch: {exc}")
                continue
            if type(msg) is Hello or type(msg) is Batch:
                kind = type(msg).__name__
                self._refuse(identity, ERR_BAD_FRAME, f"a batch may not carry a {kind}")
                continue
            await self._on_message(peer, msg)

    async def _on_message(self, peer: Peer, msg: WorkerMessage) -> None:
        if type(msg) is Bye:
            self._forget(peer)
            reason = f"bye: {msg.reason}" if msg.reason else "bye"
            await self._call(self._handler.on_worker_left(peer, reason))
            return
        try:  # _call inlined: one coroutine less on every message's path
            await self._handler.on_message(peer, msg)
        except Exception:
            log.exception("fleet broker %s: handler callback failed; serving on", self.engine_id)

    async def _on_hello(
        self, identity: bytes, principal: str | None, hello: Hello, now: float
    ) -> None:
        refusal = protocol_refusal(self.engine_id, hello)
        if refusal is not None:
            self._refuse(identity, refusal.code, refusal.message)
            return
        verdict = self._table.admit(identity, principal, hello, self._reachable)
        if isinstance(verdict, Refusal):
            log.warning(
                "fleet broker %s: refused Hello from worker %r (%s): %s",
                self.engine_id, hello.worker_id, verdict.code, verdict.message,
            )  # fmt: skip
            self._refuse(identity, verdict.code, verdict.message)
            return
        if not self._send_now(identity, self._welcome):
            return
        # The same worker reconnected (new identity, same worker_id and key), or said Hello
        # twice on one connection: "replaced" tells the scheduler a WorkerJoined for the same
        # worker follows, so its leases stay its own.
        for old in verdict.replaced:
            if self._table.remove(old):
                await self._call(self._handler.on_worker_left(old, "replaced"))
        peer = joined_peer(identity, principal, hello, now)
        self._table.add(peer)
        await self._call(self._handler.on_worker_joined(peer))

    async def _call(self, callback: Awaitable[None]) -> None:
        try:
            await callback
        except Exception:
            log.exception("fleet broker %s: handler callback failed; serving on", self.engine_id)
