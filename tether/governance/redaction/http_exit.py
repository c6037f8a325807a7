"""The HTTP API's exit: every JSON answer redacted on its way out, errors included.

Applied to every path but the ones whose callers need the values themselves: the worker
protocol (``/work-items``: a worker runs the step on its real input), the A2A protocol
(``/a2a``, ``/agents``, ``/.well-known``: a peer agent receives the task it asked for), the
registry (``/workflows``: the IR as its author wrote it) and the engine's own pages
(``/health``, ``/metrics``, ``/openapi.json``, ``/ui`` static files). The views the CLI and
the dashboard read (``/executions...``, ``/views/...``, ``/schedules``) are all covered.

Example::

    Litestar(route_handlers=[...], middleware=[RedactResponses(engine_redaction)])
"""

from __future__ import annotations

from typing import Any, Final, cast

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tether.governance.redaction.engine import EngineRedaction

#: Paths answered as they are (see the module docstring).
UNREDACTED_PREFIXES: Final = (
    "/work-items",
    "/a2a",
    "/agents",
    "/.well-known",
    "/workflows",
    "/health",
    "/metrics",
    "/openapi.json",
    "/ui",
)


class RedactResponses(ASGIMiddleware):
    """Redacts JSON bodies with the engine's current policy (none: passes them through)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, redaction: EngineRedaction) -> None:
        self._redaction = redaction

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        redactor = self._redaction.current
        if redactor is None or scope["path"].startswith(UNREDACTED_PREFIXES):
            await next_app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def redacting_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _is_json(message):
                    start = cast(dict[str, Any], message)  # held until the body is here
                    return
                await send(message)
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            if body:
                body = msgspec.json.encode(redactor.value(msgspec.json.decode(body)))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send(cast(Message, {**start, "headers": headers}))
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await next_app(scope, receive, redacting_send)


def _is_json(start: Message) -> bool:
    headers: Any = cast(dict[str, Any], start).get("headers", ())
    for key, value in headers:
        if key.lower() == b"content-type":
            return bytes(value).split(b";")[0].strip().lower() == b"application/json"
    return False
