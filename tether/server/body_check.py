"""Reads a request's body up to a bound (413 past it) and judges its JSON shape
(:mod:`.json_shape`) before a route decodes it; the route then reads the same bytes.

Example::

    Litestar(route_handlers=[...], middleware=[BodyCheck(max_bytes=1 << 20)])
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from tether.server.json_shape import json_shape_problem
from tether.server.request_gate import answer, has_body, header_values


class BodyCheck(ASGIMiddleware):
    """Refuses a body over ``max_bytes`` (413, read no further) or too costly to decode."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if not has_body(scope["headers"]):
            await next_app(scope, receive, send)
            return
        declared = header_values(scope["headers"], b"content-length")
        too_big = f"the body is over {self.max_bytes} bytes (TETHER_MAX_BODY_BYTES)"
        if declared and declared[0].strip().isdigit() and int(declared[0]) > self.max_bytes:
            await answer(send, 413, too_big)  # refused before a byte of it is read
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await answer(send, 413, too_big)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = json_shape_problem(body)
        if problem is not None:
            await answer(send, *problem)
            return
        await next_app(scope, _replay(body, receive), send)


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
