"""The workflow ``http`` node: one HTTP request from a durable step, its keys resolved only
where it runs and never journaled (I14).

* :func:`call_http` makes the call; the built-in tool of the ``http`` node calls it.
* :mod:`.errors`: what a failed call comes to, named for what the runtime does with it.

Example::

    reply = await call_http({"url": "https://api.example.com/items",
                             "headers": {"Authorization": "Bearer ${API_TOKEN}"}})
"""

from __future__ import annotations

from tether.agents.http_node.call import SAFE_HEADERS, call_http
from tether.agents.http_node.errors import (
    HttpArgsError,
    HttpMalformed,
    HttpRateLimited,
    HttpRejected,
    HttpTooLarge,
    HttpTransient,
)
from tether.agents.http_node.request import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECS

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_SECS",
    "SAFE_HEADERS",
    "HttpArgsError",
    "HttpMalformed",
    "HttpRateLimited",
    "HttpRejected",
    "HttpTooLarge",
    "HttpTransient",
    "call_http",
]
