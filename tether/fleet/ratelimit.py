"""Provider rate limits: what a tool raises on a 429, and reading ``Retry-After``.

A tool that hears "429 Too Many Requests" raises :class:`RateLimited`; the worker turns it into
the wire message ``RateLimited`` and the engine parks the work item until ``retry_after``
without spending an attempt (I5, ``node_parked``).

Example::

    from tether import RateLimited
    from tether.fleet.ratelimit import retry_after_from_http

    @tool
    async def search(query: str) -> dict:
        resp = await client.get(URL, params={"q": query})
        wait = retry_after_from_http(resp.status_code, resp.headers, time.time())
        if wait is not None:
            raise RateLimited(wait, "search API: 429")
        return resp.json()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

from tether.errors import RateLimited

__all__ = ["DEFAULT_RETRY_AFTER_SECS", "RateLimited", "retry_after_from_http"]

#: A 429 without a usable ``Retry-After``: wait this long rather than hammer the provider.
DEFAULT_RETRY_AFTER_SECS: Final = 1.0


def retry_after_from_http(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait for an HTTP answer, or None when ``status`` is not 429.

    ``Retry-After`` may be delta-seconds (``"120"``) or an HTTP date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``), read against ``now`` (seconds since the epoch). A
    date in the past gives 0; a missing or unreadable header gives
    :data:`DEFAULT_RETRY_AFTER_SECS`. Header names are matched case-insensitively.

    Example::

        retry_after_from_http(429, {"Retry-After": "7"}, time.time())     # 7.0
        retry_after_from_http(200, {"Retry-After": "7"}, time.time())     # None
    """
    if status != 429:
        return None
    value = _header(headers, "retry-after")
    if value is None:
        return DEFAULT_RETRY_AFTER_SECS
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if math.isfinite(seconds):
            return max(0.0, seconds)
        return DEFAULT_RETRY_AFTER_SECS
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER_SECS
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means the zone was omitted
        return DEFAULT_RETRY_AFTER_SECS
    return max(0.0, when.timestamp() - now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name)
    if found is not None:
        return found
    # Plain dicts are case-sensitive; HTTP header names are not.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
