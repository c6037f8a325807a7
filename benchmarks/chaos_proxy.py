"""A TCP proxy that loses a reply: the chaos scenario's "reply lost after a commit" fault.

Between a client (the driver's HTTP client, or a ``tether worker``) and the engine. Armed, it
forwards the next request whose bytes hold ``marker`` (``POST /executions``, or a worker's
``result`` frame) and then, when the engine's first reply bytes come back, drops them and
closes both connections: the engine acted on the request and committed, the client never
hears so. The HTTP client times out or sees the connection close and resends with the same
execution id; the worker reconnects, says Hello again and re-sends the results the engine
did not acknowledge.

Example::

    proxy = ReplyDropper(engine_port, b"POST /executions")
    tg.start_soon(proxy.serve)
    proxy.arm()            # the next matching request's reply is lost
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc

from benchmarks.chaos_cluster import free_port

CHUNK = 65536


class ReplyDropper:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``; loses a reply when armed."""

    def __init__(self, target: int, marker: bytes) -> None:
        self.target = target
        self.marker = marker
        self.port = free_port()
        self.armed = 0
        #: Replies dropped so far (each after its request reached the engine).
        self.dropped = 0

    def arm(self) -> None:
        """Lose the reply of the next request that holds the marker."""
        self.armed += 1

    async def serve(self) -> None:
        """Accept and forward until cancelled."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        await listener.serve(self._forward)

    async def _forward(self, client: anyio.abc.SocketStream) -> None:
        try:
            server = await anyio.connect_tcp("127.0.0.1", self.target)
        except OSError:  # the engine is down: the client sees a closed connection, as it would
            await client.aclose()
            return
        doomed = anyio.Event()  # set once a request whose reply is to be lost went through
        async with client, server, anyio.create_task_group() as tg:

            async def up() -> None:
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                                         anyio.ClosedResourceError):  # fmt: skip
                    while True:
                        chunk = await client.receive(CHUNK)
                        await server.send(chunk)
                        if self.armed and not doomed.is_set() and self.marker in chunk:
                            self.armed -= 1
                            doomed.set()
                tg.cancel_scope.cancel()

            async def down() -> None:
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError,
                                         anyio.ClosedResourceError):  # fmt: skip
                    while True:
                        chunk = await server.receive(CHUNK)
                        if doomed.is_set():  # the reply to the doomed request: never sent
                            self.dropped += 1
                            break
                        await client.send(chunk)
                tg.cancel_scope.cancel()

            tg.start_soon(up)
            tg.start_soon(down)
