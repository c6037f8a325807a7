"""How a worker's :class:`~tether.fleet.connection.EngineConnection` sends.

A mixin, kept apart so each module stays small. To an engine that reads Batch frames
(``Welcome.batches``) the messages one loop turn sends (the Results of the tools that finished,
their Credits, a Heartbeat) are held and go out at the turn's end as one frame (see
:mod:`tether.fleet.outbox`), no larger than the engine reads (``Welcome.max_message_bytes``).
To an older engine each message is a frame, sent at once. Either way the engine gets them in the
order sent. A Hello never waits: it is sent at once, as the engine must read it alone.

:meth:`send` waits only while ZeroMQ's send queue is full (the engine is not reading): then the
held frames go out from a task that waits for room, and every send waits for it.
"""

from __future__ import annotations

import asyncio

import zmq

from tether.fleet._aiozmq import NOBLOCK, POLLOUT, SocketWaiter
from tether.fleet.outbox import MAX_BATCH_BYTES, wire_frames
from tether.fleet.protocol import Bye, Welcome, WorkerMessage, encode

__all__ = ["ConnectionSending"]


class ConnectionSending:
    """Sending frames, now or at the end of the loop turn; the connection sets these."""

    # Declared for the type checker only.
    _sock: zmq.Socket[bytes] | None
    _waiter: SocketWaiter | None
    _welcome: Welcome | None
    _closed: bool
    _leaving: bool
    #: Frames held for the end of this loop turn, and the task sending them when the socket
    #: was full (None while it is not).
    _outgoing: list[bytes]
    _outgoing_flush: bool
    _full: asyncio.Task[None] | None

    async def send(self, msg: WorkerMessage) -> None:
        """Send one message; waits only while ZeroMQ's send queue is full.

        Example::

            await conn.send(Credit(n=1))
        """
        if type(msg) is Bye:
            self._leaving = True
        await self.send_frame(encode(msg))

    async def send_frame(self, frame: bytes) -> None:
        """Send a message already encoded (:func:`~tether.fleet.protocol.encode`): a worker
        that sized its Result against the engine's limit sends those bytes, not a second
        encoding of them."""
        welcome = self._welcome
        if welcome is None or not welcome.batches:
            await self._send_frame(frame)
            return
        if self._closed:
            raise RuntimeError("the engine connection is closed")
        self._outgoing.append(frame)
        if not self._outgoing_flush:
            self._outgoing_flush = True
            asyncio.get_running_loop().call_soon(self._flush)
        full = self._full
        if full is not None:
            await asyncio.wait([full])  # the engine is not reading: wait, as a send would

    def _flush(self) -> None:
        self._outgoing_flush = False
        if self._closed or self._full is not None or not self._outgoing:
            return  # closed: dropped with the socket; full: the sending task takes them
        sock, waiter, welcome = self._sock, self._waiter, self._welcome
        assert sock is not None and waiter is not None and welcome is not None
        frames, self._outgoing = self._outgoing, []
        wires = list(wire_frames(frames, _batch_limit(welcome)))
        for i, wire in enumerate(wires):
            try:
                sock.send(wire, NOBLOCK)
            except zmq.Again:
                loop = asyncio.get_running_loop()
                self._full = loop.create_task(self._send_when_room(wires[i:]))
                break
        # The sends may have consumed the FD edge announcing an incoming message.
        waiter.poke()

    async def _send_when_room(self, wires: list[bytes]) -> None:
        try:
            for wire in wires:
                await self._send_frame(wire)
            while self._outgoing:  # held meanwhile: after these, in order
                assert self._welcome is not None
                frames, self._outgoing = self._outgoing, []
                for wire in wire_frames(frames, _batch_limit(self._welcome)):
                    await self._send_frame(wire)
        except RuntimeError:
            pass  # closed meanwhile: dropped with the socket (the engine's TTL covers it)
        finally:
            self._full = None

    async def _send_frame(self, frame: bytes) -> None:
        while True:
            if self._closed:
                raise RuntimeError("the engine connection is closed")
            sock, waiter = self._sock, self._waiter
            assert sock is not None and waiter is not None
            try:
                sock.send(frame, NOBLOCK)
            except zmq.Again:
                await waiter.wait(POLLOUT)
                continue
            # The send may have consumed the FD edge announcing an incoming message.
            waiter.poke()
            return


def _batch_limit(welcome: Welcome) -> int:
    """The largest Batch for the engine that welcomed us last (0: one frame per message, for an
    engine that does not read Batch frames: one that took over since the frames were held)."""
    return min(MAX_BATCH_BYTES, welcome.max_message_bytes) if welcome.batches else 0
