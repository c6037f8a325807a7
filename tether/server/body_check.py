"""Reads a request's body up to a bound (413 past it), within a deadline (408 past it), and
judges its JSON shape (:mod:`.json_shape`) before a route decodes it; the route then reads the
same bytes. A caller without a token never gets here: :class:`~tether.server.auth.TokenBeforeBody`
refuses it first.

Example::

    Litestar(route_handlers=[...], middleware=[BodyCheck(1 << 20, read_secs=10)])
"""

from __future__ import annotations

import anyio
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from tether.server.json_shape import json_shape_problem
from tether.server.request_gate import answer, has_body, header_values, takes_bytes


class BodyCheck(ASGIMiddleware):
    """Refuses a body over ``max_bytes`` (413, read no further) or too costly to decode."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, max_bytes: int, read_secs: float = 10) -> None:
        self.max_bytes = max_bytes
        self._read_secs = read_secs

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not has_body(scope["headers"]):
            await next_app(scope, receive, send)
            return
        declared = header_values(scope["headers"], b"content-length")
        too_big = f"the body is over {self.max_bytes} bytes (TETHER_MAX_BODY_BYTES)"
        if declared and declared[0].strip().isdigit() and int(declared[0]) > self.max_bytes:
            await answer(send, 413, too_big)  # refused before a byte of it is read
            return
        # A body dripped a byte at a time would hold the connection (and its place among
        # the bounded connections) for as long as the client likes.
        body: bytes | None = None
        with anyio.move_on_after(self._read_secs) as deadline:
            body = await self._read(receive, send, too_big)
        if deadline.cancelled_caught:
            await answer(send, 408, f"the body did not arrive within {self._read_secs:g} s")
            return
        if body is None:  # answered (413) or gone
            return
        problem = None if takes_bytes(scope) else json_shape_problem(body)
        if problem is not None:
            await answer(send, *problem)
            return
        await next_app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive, send: Send, too_big: str) -> bytes | None:
        """The whole body, or None once it is answered (413) or the client went away."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await answer(send, 413, too_big)
                return None
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the route the body already read, then the client's own
    messages (a disconnect)."""
    sent = False

    async def again() -> ReceiveMessage:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
