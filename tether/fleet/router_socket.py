"""The broker's ROUTER socket and what it needs around it, opened and closed as one.

Around the socket: a private ZeroMQ context unless one is passed in (closing it then waits
until the port is free), the CURVE server and its ZAP handler with ``keys``
(:mod:`tether.fleet.zap`), the waiter on its FD (:mod:`tether.fleet._aiozmq`), the monitor that
hears of dropped connections (:mod:`tether.fleet.disconnects`), and the probe that asks ZeroMQ
whether it still reaches a connection. The options: ``ROUTER_MANDATORY``, so that a send to a
connection ZeroMQ no longer knows, or to a peer whose queue reached ``hwm``, fails instead of
being dropped silently; ``MAXMSGSIZE``, so that ZeroMQ closes the connection of a peer that
sends a larger frame; ZMTP heartbeats, so that a machine that died without a FIN is dropped.

It stands apart from :mod:`tether.fleet.broker` because none of it runs per message: the broker
keeps the socket and waiter opened here as its own attributes, so its pump and its sends pay
nothing for this module. The high-water mark and the ZMTP heartbeats are the worker's settings
too (:mod:`tether.fleet.connection`).

Example::

    router = RouterSocket("tcp://127.0.0.1:0", context=None, keys=None, hwm=DEFAULT_HWM,
                          max_message_bytes=1 << 20, probe=encode(HeartbeatAck(...)))
    endpoint = router.bind(loop, on_disconnect)     # tcp://127.0.0.1:41235
    ...
    await router.stop_watching()
    router.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import ExitStack
from typing import Final

import zmq

from tether.fleet._aiozmq import NOBLOCK, SNDMORE_NOBLOCK, SocketWaiter
from tether.fleet.disconnects import DisconnectWatch
from tether.fleet.keys import EngineKeys, InsecureEndpoint, beyond_loopback
from tether.fleet.zap import curve_server

__all__ = ["DEFAULT_HWM", "ZMTP_HEARTBEAT_IVL_MS", "ZMTP_HEARTBEAT_TIMEOUT_MS", "RouterSocket"]

#: Messages queued per peer and direction before a send reports the peer as not reading.
DEFAULT_HWM: Final = 50_000
#: ZMTP-level pings: ZeroMQ drops a TCP connection that stopped answering (a machine that died
#: without a FIN), so later sends fail fast with EHOSTUNREACH instead of filling a dead queue.
ZMTP_HEARTBEAT_IVL_MS: Final = 1_000
ZMTP_HEARTBEAT_TIMEOUT_MS: Final = 10_000


class RouterSocket:
    """The broker's socket and its companions; nothing is open until :meth:`bind`, and the
    settings are checked here (``InsecureEndpoint``: no keys on a network endpoint, I14).

    ``probe`` is the frame :meth:`reachable` sends: one a worker ignores.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        context: zmq.Context[zmq.Socket[bytes]] | None,
        keys: EngineKeys | None,
        hwm: int,
        max_message_bytes: int,
        probe: bytes,
    ) -> None:
        if hwm < 1:
            raise ValueError("hwm must be >= 1")
        if max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be >= 1024")
        if keys is None and beyond_loopback(endpoint):
            raise InsecureEndpoint(endpoint)  # I14: never open to a network by accident
        self._endpoint = endpoint
        self._context = context
        self._own_context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._keys = keys
        self._hwm = hwm
        self._max_message_bytes = max_message_bytes
        self._probe = probe
        self._zap = ExitStack()
        self.sock: zmq.Socket[bytes] | None = None
        self.waiter: SocketWaiter | None = None
        self._disconnects: DisconnectWatch | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, on_disconnect: Callable[[], None]) -> str:
        """Open the socket, bind it and start watching it; the endpoint it bound (a port 0
        made concrete). ``on_disconnect()`` runs on ``loop`` whenever a connection drops."""
        if self._context is None:
            # A private context, so that closing can wait (ctx.term, under a millisecond with
            # LINGER 0) until the listener has really released the port: a Broker started
            # right after on the same endpoint then binds at once.
            self._own_context = zmq.Context()
        context = self._context or self._own_context
        assert context is not None
        sock = context.socket(zmq.ROUTER)
        try:
            if self._keys is not None:
                self._zap.enter_context(curve_server(context, sock, self._keys))
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, self._max_message_bytes)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.setsockopt(zmq.RCVHWM, self._hwm)
            sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.setsockopt(zmq.HEARTBEAT_IVL, ZMTP_HEARTBEAT_IVL_MS)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, ZMTP_HEARTBEAT_TIMEOUT_MS)
            sock.bind(self._endpoint)
            bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            sock.close(linger=0)
            self._zap.close()
            self._term_context()
            raise
        self.sock = sock
        self.waiter = SocketWaiter(sock, loop)
        self._disconnects = DisconnectWatch(sock, loop, on_disconnect)
        return bound

    def reachable(self, identity: bytes) -> bool:
        """Whether ZeroMQ still has a connection with this identity (a harmless probe)."""
        sock = self.sock
        assert sock is not None and self.waiter is not None
        try:
            sock.send(identity, SNDMORE_NOBLOCK)
            sock.send(self._probe, NOBLOCK)
        except zmq.Again:
            return True  # connected, not reading
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            return False
        self.waiter.poke()
        return True

    async def stop_watching(self) -> None:
        """Stop the disconnect monitor (before :meth:`close`)."""
        if self._disconnects is not None:
            await self._disconnects.aclose()

    def close(self) -> None:
        """Close the socket; once it returns the port is free again (unless a ``context`` was
        passed in: then its owner terminates it)."""
        if self.waiter is not None:
            self.waiter.close()
        if self.sock is not None:
            self.sock.close(linger=0)
        self._zap.close()  # the ZAP handler's socket, before the context ends
        self._term_context()

    def _term_context(self) -> None:
        if self._own_context is not None:
            self._own_context.term()
            self._own_context = None
