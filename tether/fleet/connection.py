"""The worker side of the fleet: one DEALER connection to the engine's broker.

:class:`EngineConnection` says Hello, waits for Welcome, then hands the worker the engine's
messages and sends the worker's. It keeps the registration alive across engine restarts and
network blips: ZeroMQ reconnects the DEALER by itself, and when the engine answers
``hello_required`` (it does not know this connection) or a Welcome names another engine, the
connection says Hello again and puts a :class:`Reconnected` in the message stream.

It does not heartbeat or track leases itself: the worker sends ``Heartbeat`` every
``conn.welcome.heartbeat_interval_ms`` with the leases it runs. What one loop turn sends an
engine that reads Batch frames goes as one frame (:mod:`tether.fleet.connection_sending`), and
a Batch the engine sends is handed on message by message.

Rejoining fast after an engine restart: the DEALER reconnects at a bounded interval
(``RECONNECT_IVL_MAX_MS``), and :meth:`EngineConnection.watch_reconnects` says Hello as soon as
ZeroMQ completes a handshake on a new connection, so the new engine welcomes the worker within
milliseconds of being reachable. (A restarted engine cannot announce itself: a ROUTER can only
address a connection that sent it something, and the connect notification that would change
that, ``ZMQ_ROUTER_NOTIFY``, is a draft API that pyzmq's libzmq does not build.) Each Hello
claims the leases ``held()`` lists, so the engine reclaims at once what a predecessor of this
worker id held and this process does not run. An engine that says nothing for
``REPLY_TIMEOUT_HEARTBEATS`` heartbeat intervals (every Heartbeat is answered) is asked again
with a Hello (:meth:`EngineConnection.hello_if_silent`).

With ``keys`` the connection is a CURVE client of the engine's public key. A key the engine does
not accept (or a wrong engine key) never gets a Welcome: a socket monitor sees the failed
handshake and the connection raises :class:`HandshakeRefused` at once instead of waiting out
``connect_timeout_secs``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import Final

import anyio
import msgspec
import zmq
from zmq.utils.monitor import parse_monitor_message

from tether.errors import TetherError
from tether.fleet._aiozmq import NOBLOCK, POLLIN, SocketWaiter, recv_frames
from tether.fleet.broker import DEFAULT_HWM, ZMTP_HEARTBEAT_IVL_MS, ZMTP_HEARTBEAT_TIMEOUT_MS
from tether.fleet.connection_sending import ConnectionSending
from tether.fleet.keys import WorkerKeys
from tether.fleet.protocol import (
    ERR_HELLO_REQUIRED,
    ERR_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    Batch,
    EngineMessage,
    FrameError,
    HeartbeatAck,
    Hello,
    LeaseRef,
    ProtocolError,
    ToolAnnouncement,
    Welcome,
    decode_engine_message,
    encode,
    engine_messages_in,
)
from tether.fleet.zap import curve_client

log = logging.getLogger(__name__)

#: First reconnect after 100 ms, backing off to at most 250 ms while the engine stays away:
#: a restarted engine is found within a quarter second (the cost, a TCP connect attempt four
#: times a second per worker while the engine is down, is nothing).
RECONNECT_IVL_MS: Final = 100
RECONNECT_IVL_MAX_MS: Final = 250
#: Heartbeat intervals without a word from the engine before the worker says Hello again.
REPLY_TIMEOUT_HEARTBEATS: Final = 3
#: The ProtocolError code of a CURVE handshake that failed (never sent by an engine).
ERR_AUTHENTICATION: Final = "authentication"
_CURVE_MISMATCH: Final = (
    "the CURVE handshake failed (is the engine key the engine's public key, and does the "
    "engine use keys?)"
)
_HANDSHAKE_FAILED: Final = {
    int(zmq.EVENT_HANDSHAKE_FAILED_AUTH): "the engine refused this worker's key (is its public "
    "key in the engine's worker keys directory?)",
    int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL): _CURVE_MISMATCH,
    int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL): _CURVE_MISMATCH,
}


class EngineUnreachable(TetherError, ConnectionError):
    """No Welcome from the engine within ``connect_timeout_secs``."""

    def __init__(self, endpoint: str, waited_secs: float) -> None:
        super().__init__(
            f"no engine answered at {endpoint} within {waited_secs:.1f} s "
            "(is the engine running, and is that address reachable from here?)"
        )
        self.endpoint = endpoint
        self.waited_secs = waited_secs


class HandshakeRefused(TetherError, ConnectionError):
    """The engine answered Hello with a ProtocolError (for example another protocol version)."""

    def __init__(self, endpoint: str, code: str, message: str) -> None:
        super().__init__(f"engine at {endpoint} refused this worker ({code}): {message}")
        self.endpoint = endpoint
        self.code = code


class Reconnected(msgspec.Struct, frozen=True, gc=False):
    """The connection said Hello again and was welcomed (engine restarted, or it forgot us).

    Messages sent since the engine lost track of this worker were refused and dropped: re-send
    Results not yet Acked, list the leases still running in the next Heartbeat, and re-announce
    free capacity with Credit if the scheduler expects it.
    """

    engine_id: str
    #: The engine life that welcomed it (``Welcome.incarnation``; empty from older engines).
    incarnation: str = ""


class EngineConnection(ConnectionSending):
    """A worker's connection to the engine, used as an async context manager.

    Example::

        async with EngineConnection("tcp://engine:5555", worker_id="w1", queues=["default"],
                                    capacity=8, tools=["add"]) as conn:
            async for msg in conn.messages():
                if isinstance(msg, Grant):
                    await conn.send(Result(work_item_id=msg.work_item_id, fence=msg.fence,
                                           ok=True, output=42))

    ``held``: the leases this process runs (or finished without an Ack), listed in every Hello
    as its claim; without it the Hello makes no claim and every lease held under
    ``worker_id`` stays this connection's (see ``Hello.incarnation``).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        worker_id: str,
        queues: Sequence[str],
        capacity: int,
        tools: Sequence[str],
        connect_timeout_secs: float = 10.0,
        hwm: int = DEFAULT_HWM,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        keys: WorkerKeys | None = None,
        held: Callable[[], list[LeaseRef]] | None = None,
        announced: Sequence[ToolAnnouncement] = (),
    ) -> None:
        self.endpoint = endpoint
        self._keys = keys
        self.worker_id = worker_id
        #: This connection's life of the worker: a restarted process is another incarnation.
        self.incarnation = secrets.token_hex(8)
        self._held = held
        self._hello_base = Hello(
            protocol=PROTOCOL_VERSION,
            worker_id=worker_id,
            queues=list(queues),
            capacity=capacity,
            tools=list(tools),
            pid=os.getpid(),
            host=socket.gethostname(),
            # Without ``held`` it cannot say which leases it runs: it claims all under its id,
            # as workers did before Hello carried claims.
            incarnation=self.incarnation if held is not None else "",
            announced=list(announced),  # its tools' parameters (tool_announcements)
            batches=True,  # what the engine sends it in one loop turn may come in one frame
        )
        self._connect_timeout = connect_timeout_secs
        self._hwm = hwm
        self._context = context
        self._sock: zmq.Socket[bytes] | None = None
        self._waiter: SocketWaiter | None = None
        self._welcome: Welcome | None = None
        self._pending: deque[EngineMessage] = deque()
        #: The rest of a Batch the engine sent, read before the socket is.
        self._unbatched: deque[EngineMessage] = deque()
        self._rehello_pending = False
        self._hello_sent_at = 0.0
        self._last_heard = 0.0
        #: Said Bye: never Hello again (a refused heartbeat in the last moments must not
        #: register the worker anew just before its connection closes).
        self._leaving = False
        self._closed = False
        self._outgoing: list[bytes] = []  # see ConnectionSending
        self._outgoing_flush = False
        self._full: asyncio.Task[None] | None = None

    @property
    def welcome(self) -> Welcome:
        """The engine's latest Welcome (engine id, heartbeat interval, lease TTL)."""
        if self._welcome is None:
            raise RuntimeError("not connected (use the connection inside `async with`)")
        return self._welcome

    @property
    def engine_id(self) -> str:
        """The id of the engine that welcomed this worker last."""
        return self.welcome.engine_id

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> EngineConnection:
        loop = asyncio.get_running_loop()
        context = self._context or zmq.Context.instance()
        sock = context.socket(zmq.DEALER)
        self._sock = sock
        started = loop.time()
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.setsockopt(zmq.RCVHWM, self._hwm)
            sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
            sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_IVL_MS)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, ZMTP_HEARTBEAT_TIMEOUT_MS)
            if self._keys is not None:
                curve_client(sock, self._keys)
            self._waiter = SocketWaiter(sock, loop)
            with anyio.move_on_after(self._connect_timeout):
                if self._keys is None:
                    sock.connect(self.endpoint)
                    await self._handshake()
                else:
                    await self._watched_handshake(sock, loop)
            if self._welcome is None:
                raise EngineUnreachable(self.endpoint, loop.time() - started)
        except BaseException:
            self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        # LINGER 0: whatever is still queued is dropped; the engine's TTL and the fences
        # take care of a worker that vanished mid-lease.
        if self._closed:
            return
        self._closed = True
        if self._full is not None:
            self._full.cancel()
        if self._waiter is not None:
            self._waiter.close()
        if self._sock is not None:
            self._sock.close(linger=0)

    async def _watched_handshake(
        self, sock: zmq.Socket[bytes], loop: asyncio.AbstractEventLoop
    ) -> None:
        """The handshake, raising HandshakeRefused as soon as a CURVE handshake fails."""
        monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        )
        waiter = SocketWaiter(monitor, loop)
        failure: str | None = None
        refused: Exception | None = None
        try:
            sock.connect(self.endpoint)
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    nonlocal failure
                    while True:
                        try:
                            event = parse_monitor_message(monitor.recv_multipart(NOBLOCK))
                        except zmq.Again:
                            await waiter.wait(POLLIN)
                            continue
                        failure = _HANDSHAKE_FAILED.get(int(event["event"]))
                        if failure is not None:
                            tg.cancel_scope.cancel()
                            return

                async def shake() -> None:
                    nonlocal refused
                    try:
                        await self._handshake()
                    except Exception as exc:  # raised below, not as an ExceptionGroup
                        refused = exc
                    finally:
                        tg.cancel_scope.cancel()

                tg.start_soon(watch)
                tg.start_soon(shake)
        finally:
            waiter.close()
            sock.disable_monitor()
            monitor.close(linger=0)
        if refused is not None:
            raise refused
        if failure is not None and self._welcome is None:
            raise HandshakeRefused(self.endpoint, ERR_AUTHENTICATION, failure)

    def _hello(self) -> bytes:
        """The Hello, claiming the leases held now."""
        if self._held is None:
            return encode(self._hello_base)
        return encode(msgspec.structs.replace(self._hello_base, leases=self._held()))

    async def _handshake(self) -> None:
        await self._send_frame(self._hello())
        while True:
            msg = await self._recv()
            if msg is None:
                raise RuntimeError("connection closed during the handshake")
            if type(msg) is Welcome:
                if msg.protocol != PROTOCOL_VERSION:
                    raise HandshakeRefused(
                        self.endpoint,
                        ERR_PROTOCOL_VERSION,
                        f"engine speaks protocol {msg.protocol}, this worker {PROTOCOL_VERSION}",
                    )
                self._welcome = msg
                return
            if type(msg) is ProtocolError:
                if msg.code == ERR_HELLO_REQUIRED:
                    continue  # an answer to a message queued before our Hello
                raise HandshakeRefused(self.endpoint, msg.code, msg.message)
            self._pending.append(msg)

    # --- receiving ------------------------------------------------------------------------

    async def messages(self) -> AsyncIterator[EngineMessage | Reconnected]:
        """The engine's messages in order (Grant, Cancel, Ack, HeartbeatAck, ProtocolError),
        plus :class:`Reconnected` after a re-handshake. Ends when the connection closes.

        Keep iterating: re-handshakes happen while the stream is read. Welcome and
        ``hello_required`` are handled here and not yielded.

        Example::

            async for msg in conn.messages():
                match msg:
                    case Grant(): ...
                    case Reconnected(): await conn.send(Heartbeat(leases=held))
        """
        while True:
            while self._pending:
                yield self._pending.popleft()
            msg = await self._recv()
            if msg is None:
                return
            if type(msg) is Welcome:
                welcome = self.welcome
                if (
                    self._rehello_pending
                    or msg.engine_id != welcome.engine_id
                    or msg.incarnation != welcome.incarnation
                ):
                    self._rehello_pending = False
                    self._welcome = msg
                    yield Reconnected(engine_id=msg.engine_id, incarnation=msg.incarnation)
                continue
            if type(msg) is ProtocolError and msg.code == ERR_HELLO_REQUIRED:
                await self._rehello()
                continue
            if type(msg) is HeartbeatAck and msg.incarnation not in ("", self.welcome.incarnation):
                await self._rehello()  # answered by another engine life: join it
                continue
            yield msg

    async def _recv(self) -> EngineMessage | None:
        """The next engine message, or None once closed. Skips (and logs) bad frames."""
        while not self._closed:
            if self._unbatched:
                return self._unbatched.popleft()
            sock, waiter = self._sock, self._waiter
            assert sock is not None and waiter is not None
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                await waiter.wait(POLLIN)
                continue
            self._last_heard = asyncio.get_running_loop().time()
            if len(frames) != 1:
                log.warning("engine sent a message of %d frames; dropped", len(frames))
                continue
            try:
                msg = decode_engine_message(frames[0])
            except FrameError as exc:
                log.warning("engine sent a bad frame; dropped: %s", exc)
                continue
            if type(msg) is not Batch:
                return msg
            messages, problems = engine_messages_in(msg)
            for problem in problems:
                log.warning("engine sent a bad message in a batch; dropped: %s", problem)
            self._unbatched.extend(messages)
        return None

    async def _rehello(self, *, spacing: float | None = None) -> None:
        # Several messages may be refused before the engine reads our Hello: say it once, and
        # again only if no Welcome came within ``spacing`` (a heartbeat interval by default;
        # that Hello may have been lost with a dropped TCP connection). Spacing 0: a new
        # connection, where nothing said before counts.
        if self._leaving:
            return
        now = asyncio.get_running_loop().time()
        if spacing is None:
            spacing = self.welcome.heartbeat_interval_ms / 1000
        if self._rehello_pending and now - self._hello_sent_at < spacing:
            return
        self._rehello_pending = True
        self._hello_sent_at = now
        await self._send_frame(self._hello())

    async def hello_if_silent(self) -> bool:
        """Say Hello again if the engine said nothing for ``REPLY_TIMEOUT_HEARTBEATS``
        heartbeat intervals (it answers every Heartbeat): it may be another engine that never
        heard of this worker, or one that lost the Hello. True when a Hello went out.

        Example::

            await conn.hello_if_silent()
            await conn.send(Heartbeat(leases=held))
        """
        timeout = REPLY_TIMEOUT_HEARTBEATS * self.welcome.heartbeat_interval_ms / 1000
        if asyncio.get_running_loop().time() - self._last_heard < timeout:
            return False
        log.warning(
            "worker %s: engine %s said nothing for %.1f s; saying Hello again",
            self.worker_id, self.engine_id, timeout,
        )  # fmt: skip
        await self._rehello(spacing=timeout)
        return True

    async def watch_reconnects(self) -> None:
        """Say Hello whenever ZeroMQ completes a handshake on a new connection to the engine
        (it restarted, or the TCP connection was lost and made again), instead of waiting
        for a heartbeat to be refused. Runs until cancelled or the connection closes.

        Example::

            tg.start_soon(conn.watch_reconnects)
        """
        sock = self._sock
        assert sock is not None
        loop = asyncio.get_running_loop()
        try:
            monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        except zmq.ZMQError as exc:  # heartbeats still find a new engine, only later
            log.warning("worker %s: cannot watch for reconnects: %s", self.worker_id, exc)
            return
        waiter = SocketWaiter(monitor, loop)
        try:
            while not self._closed:
                try:
                    parse_monitor_message(monitor.recv_multipart(NOBLOCK))
                except zmq.Again:
                    await waiter.wait(POLLIN)
                    continue
                await self._rehello(spacing=0.0)
        finally:
            waiter.close()
            if not self._closed:
                sock.disable_monitor()
            monitor.close(linger=0)
