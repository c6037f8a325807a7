"""How the ``Broker`` sends: a frame now, or what a loop turn held for a peer as one Batch.

A mixin of :class:`~tether.fleet.broker.Broker`, kept apart so each module stays small.
:meth:`Broker.send` to a peer that reads Batch frames (``Hello.batches``) holds the message in
the :class:`~tether.fleet.outbox.Outbox` and :meth:`_flush` sends what the turn held at its end
(one frame for several messages: see :mod:`tether.fleet.outbox`); a Welcome or a refusal goes
at once, after what was held for its peer, so each peer gets its messages in the order sent.
A send that finds the peer gone or not reading forgets it (``_lost``), as before.
"""

from __future__ import annotations

import zmq

from tether.fleet._aiozmq import NOBLOCK, SNDMORE_NOBLOCK
from tether.fleet.broker_departures import BrokerDepartures
from tether.fleet.outbox import Outbox, wire_frames
from tether.fleet.protocol import ProtocolError, encode

__all__ = ["BrokerSending"]


class BrokerSending(BrokerDepartures):
    """Sending frames and flushing the outbox; the Broker sets the attributes below."""

    # Declared for the type checker only (see BrokerDepartures).
    _sock: zmq.Socket[bytes] | None
    _hwm: int
    _closed: bool
    incarnation: str
    #: What this loop turn sent to peers that read Batch frames, sent at its end.
    _outbox: Outbox
    _flush_soon: bool

    def _flush(self) -> None:
        """Send what this loop turn held for each peer (a peer forgotten since gets nothing:
        a send to it now would have been refused, and its leases are being reclaimed)."""
        self._flush_soon = False
        if self._closed or not self._outbox:
            return
        for identity, frames in self._outbox.take():
            if identity in self._peers:
                self._send_held(identity, frames)

    def _send_held(self, identity: bytes, frames: list[bytes]) -> bool:
        # Stops at the first failure: the peer is forgotten then, the rest would fail too.
        return all(self._send_frame(identity, wire) for wire in wire_frames(frames))

    def _send_now(self, identity: bytes, frame: bytes) -> bool:
        """Send at once what must follow everything sent to ``identity`` so far (a Welcome, a
        refusal): what the turn held for it goes first."""
        held = self._outbox.take_for(identity)
        if held and not self._send_held(identity, held):
            return False
        return self._send_frame(identity, frame)

    def _send_frame(self, identity: bytes, frame: bytes) -> bool:
        sock = self._sock
        assert sock is not None and self._waiter is not None
        try:
            # Two sends rather than send_multipart: with ROUTER_MANDATORY the identity frame
            # fails whole (EAGAIN / EHOSTUNREACH) before any part of the message is queued.
            sock.send(identity, SNDMORE_NOBLOCK)
            sock.send(frame, NOBLOCK)
        except zmq.Again:
            self._lost(identity, f"not reading: its send queue is full ({self._hwm} messages)")
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._lost(identity, "unreachable: its connection is closed")
            return False
        # The send may have consumed the FD edge announcing an incoming message.
        self._waiter.poke()
        return True

    def _refuse(self, identity: bytes, code: str, message: str) -> None:
        refusal = ProtocolError(code=code, message=message, incarnation=self.incarnation)
        self._send_now(identity, encode(refusal))
