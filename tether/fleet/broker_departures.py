"""How the ``Broker`` takes a worker as gone without its Bye: silent for too long, its
connection closed, or a send that found it unreachable or not reading.

A mixin of :class:`~tether.fleet.broker.Broker`, kept apart so each module stays small; none of
it is on a message's path (the pump sweeps a few times a second and probes after a dropped
connection). Each way forgets the peer at once and queues it with its reason; the pump reports
the queue (``on_worker_left``), so handler callbacks never run concurrently or re-entrantly.

A worker whose connection closed (its process died) is found sooner than by its silence:
ZeroMQ's monitor says a connection dropped (:mod:`tether.fleet.disconnects`), and
``DISCONNECT_PROBE_DELAY_SECS`` later every peer ZeroMQ no longer reaches is gone. The delay lets
a live worker whose connection merely dropped reconnect and say Hello first (it does within
``RECONNECT_IVL_MAX_MS``), keeping its leases.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from tether.fleet._aiozmq import SocketWaiter
from tether.fleet.handler import Peer
from tether.fleet.peer_table import PeerTable
from tether.fleet.router_socket import RouterSocket

__all__ = ["DISCONNECT_PROBE_DELAY_SECS", "BrokerDepartures"]

#: After ZeroMQ reports a dropped connection, peers it no longer reaches are gone this much
#: later: time for a live worker to reconnect (at most 250 ms) and say Hello again.
DISCONNECT_PROBE_DELAY_SECS: Final = 0.5


class BrokerDepartures:
    """Forgetting peers and queueing their departures; the Broker sets the attributes below."""

    # Declared for the type checker only. Properties here (as other mixins use for their
    # hooks) would put a descriptor in front of the broker's per-message attribute lookups.
    _peers: dict[bytes, Peer]
    _table: PeerTable
    _departures: deque[tuple[Peer, str]]
    _waiter: SocketWaiter | None
    _router: RouterSocket
    _probe_at: float | None

    def _forget(self, peer: Peer) -> None:
        self._table.remove(peer)

    def _reachable(self, identity: bytes) -> bool:
        """Whether ZeroMQ still has a connection with this identity (a harmless probe)."""
        return self._router.reachable(identity)

    def _probe_soon(self) -> None:
        """A connection dropped: see which peers are gone once a live one could be back."""
        if self._probe_at is not None or self._waiter is None:
            return
        loop = asyncio.get_running_loop()
        self._probe_at = loop.time() + DISCONNECT_PROBE_DELAY_SECS
        loop.call_at(self._probe_at, self._waiter.interrupt)

    def _forget_unreachable(self) -> None:
        self._probe_at = None
        for peer in list(self._peers.values()):
            if not self._reachable(peer.identity):
                self._forget(peer)
                self._departures.append((peer, "its connection closed"))

    def _lost(self, identity: bytes, reason: str) -> None:
        # Called from send(), possibly outside the pump: report from the pump, so handler
        # callbacks never run concurrently or re-entrantly.
        peer = self._peers.get(identity)
        if peer is None:
            return
        self._forget(peer)
        self._departures.append((peer, reason))
        if self._waiter is not None:
            self._waiter.interrupt()

    def _sweep(self, now: float, silence: float) -> None:
        for peer in list(self._peers.values()):
            silent = now - peer.last_seen
            if silent >= silence:
                self._forget(peer)
                self._departures.append((peer, f"silent for {int(silent * 1000)} ms"))
