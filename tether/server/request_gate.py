"""The gate every request passes before a route sees it: from whom the browser may carry a
request (``Host``, ``Origin``) and what a body may be (JSON, declared as such).

A web page can make the browser send a POST to ``127.0.0.1:7700`` without asking first if
the body is ``text/plain``, form-encoded or untyped (a "simple" request); it reaches the
engine by its own origin, or by a name of its own that resolves to 127.0.0.1 (DNS
rebinding). So a body must be declared ``application/json`` (415 otherwise: a page cannot
send that type without a CORS preflight, which this server never grants), ``Host`` must name
this engine (421) and ``Origin``, when a browser sends one, too (403). ``/health`` is left
out: it is public and reads nothing.

Example::

    Litestar(route_handlers=[...], middleware=[RequestGate(AllowedHosts.for_server(
        "127.0.0.1", 7700))])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tether.server.host_names import AllowedHosts

#: Route handlers whose ``opt`` sets this answer whatever Host or Origin asks (``/health``).
ANY_HOST: Final = "any_host"
JSON_TYPE: Final = "application/json"
#: Route handlers whose ``opt`` sets this take raw bytes too (``POST /artifacts``), declared
#: as this type: no more a "simple" request than JSON, so it needs the same preflight.
BYTES_BODY: Final = "bytes_body"
BYTES_TYPE: Final = "application/octet-stream"


class RequestGate(ASGIMiddleware):
    """Refuses, before routing reaches a handler, a request a browser may have sent for a
    page that is not this engine's (see the module docstring)."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = ANY_HOST

    def __init__(self, hosts: AllowedHosts) -> None:
        self.hosts = hosts

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        refusal = self.refusal(scope["headers"], takes_bytes(scope))
        if refusal is None:
            await next_app(scope, receive, send)
        else:
            await answer(send, *refusal)

    def refusal(
        self, raw: Iterable[tuple[bytes, bytes]], bytes_ok: bool = False
    ) -> tuple[int, str] | None:
        """The status and message refusing a request with these headers, or None."""
        hosts = header_values(raw, b"host")
        if len(hosts) != 1:
            return 400, f"send one Host header (got {len(hosts)})"
        if not self.hosts.admits_host(hosts[0]):
            return 421, (
                f"Host {hosts[0][:100]!r} is not a name this engine answers to "
                f"({self.hosts.describe()}); add it to TETHER_ALLOWED_HOSTS to allow it"
            )
        origins = header_values(raw, b"origin")
        if origins and not all(self.hosts.admits_origin(o) for o in origins):
            return 403, (
                f"Origin {origins[0][:100]!r} is not this engine's: a page elsewhere cannot "
                "drive it (add the host to TETHER_ALLOWED_HOSTS to allow it)"
            )
        if has_body(raw):
            declared = header_values(raw, b"content-type")
            media = declared[0].partition(";")[0].strip().lower() if declared else ""
            allowed = (JSON_TYPE, BYTES_TYPE) if bytes_ok else (JSON_TYPE,)
            if len(declared) != 1 or media not in allowed:
                got = repr(declared[0][:100]) if declared else "none"
                wanted = " or ".join(allowed)
                return 415, f"request bodies are JSON: send Content-Type: {wanted} (got {got})"
        return None


def takes_bytes(scope: Scope) -> bool:
    """Whether the route takes a raw body (its handler's ``opt`` sets :data:`BYTES_BODY`)."""
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(BYTES_BODY))


def header_values(raw: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """Every value of one header (ASGI header names are lower case)."""
    return [v.decode("latin-1") for k, v in raw if k == name]


def has_body(raw: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request carries a body: a non-zero Content-Length, or chunks."""
    for k, v in raw:
        if k == b"transfer-encoding" or (k == b"content-length" and v.strip() not in (b"0", b"")):
            return True
    return False


async def answer(
    send: Send, status: int, message: str, extra: tuple[str, str] | None = None
) -> None:
    """A refusal in the API's ``{"error": ...}`` shape, sent before any route ran."""
    body = msgspec.json.encode({"error": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if extra is not None:
        headers.append((extra[0].lower().encode(), extra[1].encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
