"""Who may call the API: the bearer-token guard every route but the public ones passes.

The scheme name is matched without regard to case (RFC 7235 makes ``bearer`` and ``Bearer``
the same scheme); the token is compared in constant time. A request with two
``Authorization`` headers is refused: proxies and servers disagree about which one counts,
and that disagreement is how a forged header slips past a check.

Example::

    app = Litestar(route_handlers=[...], guards=[bearer_guard("a-token-of-16-chars+")])
"""

from __future__ import annotations

import hmac
from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

#: Route handlers whose ``opt`` has this key set answer without a token (``/health``).
PUBLIC: Final = "public"
SCHEME: Final = "bearer"


def bearer_guard(token: str | None) -> Any:
    """A Litestar guard admitting requests that send ``Authorization: Bearer <token>``;
    with no token configured, every request."""
    expected = token.encode() if token else None

    def check(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if expected is None or handler.opt.get(PUBLIC):
            return
        problem = token_problem(connection.headers.getall("authorization", []), expected)
        if problem is not None:
            raise _refused(problem)

    return check


def token_problem(given: list[str], expected: bytes) -> str | None:
    """Why the ``Authorization`` header values ``given`` do not carry ``expected``, or None.
    Also asked before a request's body is read (:mod:`.body_check`): a caller without the
    token costs the engine no body."""
    if len(given) > 1:
        return "send one Authorization header, not several"
    scheme, _, credentials = (given[0] if given else "").strip().partition(" ")
    if scheme.lower() != SCHEME or not hmac.compare_digest(
        credentials.strip().encode(), expected
    ):  # constant time: the comparison does not tell how much of a guess was right
        return "missing or wrong token: send 'Authorization: Bearer <TETHER_TOKEN>'"
    return None


#: Sent with every 401, by the guard and by the body check.
CHALLENGE: Final = ("WWW-Authenticate", 'Bearer realm="tether"')


def _refused(message: str) -> NotAuthorizedException:
    return NotAuthorizedException(message, headers=dict([CHALLENGE]))
