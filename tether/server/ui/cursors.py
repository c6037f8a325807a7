"""Page cursors of the cross-run routes: a :class:`PagePosition` as an opaque URL-safe token.

A client passes back the ``next_cursor`` a page gave it; it never builds one. The token is
the position's JSON in base64url, so a tampered one either fails to decode (422, naming the
parameter) or names a position that simply starts the listing elsewhere: it reveals nothing
the listing itself does not show.

Example::

    token = encode_cursor(PagePosition(1_765_000_000_000, "exec_01J..."))
    assert decode_cursor(token) == PagePosition(1_765_000_000_000, "exec_01J...")
"""

from __future__ import annotations

import base64
import binascii

import msgspec

from tether.errors import InvalidInput
from tether.persistence.pages import PagePosition

#: Longer than any position this API hands out (an id is at most a few hundred characters).
MAX_CURSOR_CHARS = 2048


def encode_cursor(position: PagePosition | None) -> str | None:
    """The token for ``position`` (None stays None: there is no next page)."""
    if position is None:
        return None
    raw = msgspec.json.encode([position.created_at_ms, position.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None) -> PagePosition | None:
    """The position a token stands for; InvalidInput (422) for one this API did not give."""
    if token is None or token == "":
        return None
    problem = f"cursor {token[:40]!r} is not one this API gave: pass back a page's next_cursor"
    if len(token) > MAX_CURSOR_CHARS:
        raise InvalidInput(problem)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at_ms, row_id = msgspec.json.decode(raw, type=tuple[int, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidInput(problem) from None
    if not -(2**63) <= at_ms < 2**63:
        raise InvalidInput(problem)
    return PagePosition(at_ms, row_id)
