"""How many connections the HTTP port holds, and for how long one may say nothing.

uvicorn arms no timer until a first response, and a byte received cancels its keep-alive
timer: a connection that never completes a request head (idle, or a slowloris dripping a
header byte now and then) was held for ever, and a thousand of them used up the process's
file descriptors. Its ``limit_concurrency`` does not help: it answers 503 to requests once
that many connections are open, so a flood of idle ones turns every real request away.

:func:`bounded_protocol` makes uvicorn's h11 protocol close a connection that has not sent a
complete request head within ``header_timeout_secs`` of opening or of its last response,
and, once ``max_connections`` are open, close the one that has waited longest for a head to
make room (the newest if every one is busy). ``tether.server.file_limits`` lifts the soft
limit on open files to the hard one, so the bound is reached before the kernel's.

Example::

    protocol = bounded_protocol(max_connections=1000, header_timeout_secs=10)
    uvicorn.Config(app, http=protocol, timeout_keep_alive=5, h11_max_incomplete_event_size=16384)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("tether.server.connections")


def bounded_protocol(max_connections: int, header_timeout_secs: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a head timeout and a connection bound (see the module).
    Call it once per server: the connections it bounds are the ones its class opened."""
    # Connections waiting for a request head, oldest first (a dict keeps insertion order).
    waiting: dict[BoundedH11Protocol, None] = {}
    # Closed by us, not yet gone: uvicorn counts a connection until its connection_lost.
    closing: set[BoundedH11Protocol] = set()

    class BoundedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()
            if len(self.connections) - len(closing) > max_connections:
                oldest = next(iter(waiting))  # at worst this one, which waits too
                log.warning(
                    "HTTP connection limit (%d, TETHER_MAX_CONNECTIONS) reached: closed "
                    "the connection that waited longest for a request", max_connections
                )  # fmt: skip
                oldest._close()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # a request head arrived
                self._stop_waiting()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._await_head()  # before super(): it may go on to a pipelined request
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            closing.discard(self)
            super().connection_lost(exc)

        def _await_head(self) -> None:
            self._stop_waiting()
            waiting[self] = None
            self._head_timer = self.loop.call_later(header_timeout_secs, self._head_late)

        def _stop_waiting(self) -> None:
            waiting.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self.conn.their_state is h11.IDLE:
                self._close()

        def _close(self) -> None:
            self._stop_waiting()
            if not self.transport.is_closing():
                closing.add(self)
                self.transport.close()

    return BoundedH11Protocol
