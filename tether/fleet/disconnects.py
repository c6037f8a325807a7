"""Hearing at once that a worker's connection closed, so its leases need not wait out a TTL.

A worker process that dies (SIGKILL, a crash, an OOM kill) closes its TCP connection; ZeroMQ
drops the ROUTER's pipe for it but says nothing to the application, so the broker learned of it
only from a lease TTL of silence. :class:`DisconnectWatch` reads the socket's monitor: each
``EVENT_DISCONNECTED`` (which names a file descriptor, not a worker) calls ``on_disconnect``,
and the broker then asks ZeroMQ which of its peers it still reaches.

Example::

    watch = DisconnectWatch(sock, loop, broker.probe_soon)
    ...
    await watch.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import zmq
from zmq.utils.monitor import parse_monitor_message

from tether.fleet._aiozmq import NOBLOCK, POLLIN, SocketWaiter

__all__ = ["DisconnectWatch"]

log = logging.getLogger(__name__)


class DisconnectWatch:
    """Calls ``on_disconnect()`` (on the event loop) whenever a connection of ``sock`` drops."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        loop: asyncio.AbstractEventLoop,
        on_disconnect: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._on_disconnect = on_disconnect
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._waiter = SocketWaiter(self._monitor, loop)
        self._task = loop.create_task(self._run(), name="fleet disconnect watch")

    async def _run(self) -> None:
        while True:
            try:
                parse_monitor_message(self._monitor.recv_multipart(NOBLOCK))
            except zmq.Again:
                await self._waiter.wait(POLLIN)
                continue
            self._on_disconnect()

    async def aclose(self) -> None:
        """Stop watching (before the socket closes)."""
        self._task.cancel()
        await asyncio.wait([self._task])
        if not self._task.cancelled() and self._task.exception() is not None:
            log.error("fleet disconnect watch failed", exc_info=self._task.exception())
        self._waiter.close()
        with contextlib.suppress(zmq.ZMQError):
            self._sock.disable_monitor()
        self._monitor.close(linger=0)
