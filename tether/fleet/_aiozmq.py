"""Await a ZeroMQ socket's readiness on the asyncio loop, without one future per message.

Why not ``zmq.asyncio``: it costs one future and one loop trip per message. Draining the socket
with ``NOBLOCK`` until ``EAGAIN`` and only then waiting for the socket's FD measured about 4x the
round trips per second (figures in :mod:`tether.fleet.broker`).

ZeroMQ's ``FD`` is edge-triggered: it becomes readable when ``EVENTS`` *may* have changed, and any
socket operation (a send, a recv, reading ``EVENTS``) can consume that edge. So the rules are:

* wait only after an operation that showed the wanted event absent (``EAGAIN``, or ``EVENTS``);
* after a send made while someone waits, re-check ``EVENTS`` (:meth:`SocketWaiter.poke`),
  because the send may have eaten the edge that announced an incoming message.

The socket must only be used from the loop's thread.
"""

from __future__ import annotations

import asyncio
from typing import Final

import zmq

# Plain ints: pyzmq's flag enums cost microseconds per message in `|` and conversions, and
# recv_multipart/send_multipart pay that on every frame.
NOBLOCK: Final = int(zmq.NOBLOCK)
#: For :meth:`SocketWaiter.wait`: ``events & zmq.POLLIN`` builds a PollEvent each time.
POLLIN: Final = int(zmq.POLLIN)
POLLOUT: Final = int(zmq.POLLOUT)
_EVENTS: Final = int(zmq.EVENTS)
SNDMORE_NOBLOCK: Final = int(zmq.SNDMORE | zmq.NOBLOCK)
_RCVMORE: Final = int(zmq.RCVMORE)


def recv_frames(sock: zmq.Socket[bytes]) -> list[bytes]:
    """All frames of the next message without blocking; raises ``zmq.Again`` if none."""
    frames = [sock.recv(NOBLOCK)]
    while sock.get(_RCVMORE):
        frames.append(sock.recv(NOBLOCK))
    return frames


class SocketWaiter:
    """Readiness waits for one socket, driven by one ``loop.add_reader`` on its FD.

    Example::

        waiter = SocketWaiter(sock, asyncio.get_running_loop())
        while True:
            try:
                frames = recv_frames(sock)
            except zmq.Again:
                await waiter.wait(POLLIN)
                continue
            ...
        waiter.close()
    """

    __slots__ = ("_closed", "_fd", "_loop", "_poke_scheduled", "_sock", "_waiters")

    def __init__(self, sock: zmq.Socket[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._loop = loop
        self._fd = sock.fileno()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._poke_scheduled = False
        self._closed = False
        loop.add_reader(self._fd, self._check)

    def _events(self) -> int:
        return int(self._sock.get(_EVENTS))

    def _check(self) -> None:
        self._poke_scheduled = False
        if self._closed:
            return
        # Read EVENTS even with nobody waiting: it clears the FD's readiness, so the selector
        # does not spin on it while the consumer is busy elsewhere.
        events = self._events()
        if not self._waiters:
            return
        pending: list[tuple[int, asyncio.Future[None]]] = []
        for mask, fut in self._waiters:
            if fut.done():
                continue
            if events & mask:
                fut.set_result(None)
            else:
                pending.append((mask, fut))
        self._waiters = pending

    def poke(self) -> None:
        """Re-check readiness soon: call after a send or recv made outside :meth:`wait`."""
        if self._waiters and not self._poke_scheduled:
            self._poke_scheduled = True
            self._loop.call_soon(self._check)

    def interrupt(self) -> None:
        """Wake every waiter now (a spurious wake-up: callers re-check their own state)."""
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters = []

    async def wait(self, mask: int) -> None:
        """Return once ``EVENTS & mask`` (:data:`POLLIN`/:data:`POLLOUT`: plain ints), or on
        interrupt."""
        if self._closed:
            raise RuntimeError("socket waiter is closed")
        if self._events() & mask:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        entry = (mask, fut)
        self._waiters.append(entry)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
                if entry in self._waiters:
                    self._waiters.remove(entry)

    def close(self) -> None:
        """Stop watching the FD (before closing the socket) and wake every waiter."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._fd)
        self.interrupt()
