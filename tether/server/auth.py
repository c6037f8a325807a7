"""Who may call the API: the bearer-token guard every route but the public ones passes, and the
same check made before a request's body is read.

The tokens are :class:`~tether.server.api_keys.ApiKeys`: the shared ``TETHER_TOKEN`` and the
named tokens of ``TETHER_TOKENS_FILE``. The scheme name is matched without regard to case
(RFC 7235 makes ``bearer`` and ``Bearer`` the same scheme); tokens are compared in constant
time. A request with two ``Authorization`` headers is refused: proxies and servers disagree
about which one counts, and that disagreement is how a forged header slips past a check.

Example::

    keys = ApiKeys("a-token-of-16-chars+")
    app = Litestar(route_handlers=[...], middleware=[TokenBeforeBody(keys)],
                   guards=[bearer_guard(keys)])
"""

from __future__ import annotations

from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from tether.server.api_keys import ApiKeys, Caller
from tether.server.request_gate import answer, has_body, header_values

#: Route handlers whose ``opt`` has this key set answer without a token (``/health``).
PUBLIC: Final = "public"


def bearer_guard(keys: ApiKeys) -> Any:
    """A Litestar guard admitting requests that send ``Authorization: Bearer <token>`` with a
    token of ``keys``; with no token configured, every request."""

    def check(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if handler.opt.get(PUBLIC):
            return
        problem = keys.problem(connection.headers.getall("authorization", []))
        if problem is not None:
            raise _refused(problem)

    return check


def authenticated_caller(
    keys: ApiKeys, connection: ASGIConnection[Any, Any, Any, Any]
) -> Caller | None:
    """The user the request's named token stands for (None: the shared token, or none)."""
    return keys.caller(connection.headers.getall("authorization", []))


class TokenBeforeBody(ASGIMiddleware):
    """Refuses (401) a request with a body that brings no accepted token before a byte of the
    body is read: reading and judging a body is work an anonymous caller must not get."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, keys: ApiKeys) -> None:
        self._keys = keys

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self._keys.required and has_body(scope["headers"]):
            refused = self._keys.problem(header_values(scope["headers"], b"authorization"))
            if refused is not None:
                await answer(send, 401, refused, CHALLENGE)
                return
        await next_app(scope, receive, send)


#: Sent with every 401, by the guard and by TokenBeforeBody.
CHALLENGE: Final = ("WWW-Authenticate", 'Bearer realm="tether"')


def _refused(message: str) -> NotAuthorizedException:
    return NotAuthorizedException(message, headers=dict([CHALLENGE]))
