"""What a failed ``http`` node call comes to, named for what the runtime does with it.

* :class:`HttpRateLimited`: park until ``retry_after_secs`` without spending an attempt (a 429,
  or a 503/529 that said when to come back); a :class:`tether.RateLimited`.
* :class:`HttpTransient`: retry with backoff (other 5xx, 408, timeouts, connection errors).
* :class:`HttpRejected`: fail at once (a 4xx, or any status the node did not expect).
* :class:`HttpMalformed`: fail at once, the body is not the JSON asked for; ``raw`` keeps it.
* :class:`HttpTooLarge`: fail at once, the body is over the node's ``max_bytes``.
* :class:`HttpArgsError`: fail at once, the node's arguments cannot make a request.

Every message has the resolved ``${NAME}`` values taken out before it is built.

Example::

    try:
        reply = await call_http({"url": "https://api.example.com/items"})
    except HttpRejected as exc:
        exc.status      # 404
"""

from __future__ import annotations

from tether.errors import NonRetryableError, RateLimited, TetherError

__all__ = [
    "HttpArgsError",
    "HttpMalformed",
    "HttpRateLimited",
    "HttpRejected",
    "HttpTooLarge",
    "HttpTransient",
]


class HttpArgsError(NonRetryableError):
    """The node's arguments cannot make a request; the message names the field (or the
    ``${NAME}`` that has no value), never a resolved value.

    Example::

        HttpArgsError("http: timeout_secs must be a positive number of seconds, got -1")
    """


class HttpTransient(TetherError):
    """Retry with backoff: the server failed (5xx, 408), timed out or could not be reached.
    ``status`` is the HTTP status, 0 when no answer came.

    Example::

        HttpTransient("http: GET https://api.example.com/x: 502 ...", status=502)
    """

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class HttpRateLimited(RateLimited):
    """Park without spending an attempt: the server asked to come back in
    ``retry_after_secs`` seconds.

    Example::

        HttpRateLimited("http: GET ... rate limited (429)", retry_after_secs=20, status=429)
    """

    def __init__(self, message: str, *, retry_after_secs: float, status: int) -> None:
        super().__init__(retry_after_secs, message)
        self.status = status
        self.retry_after_secs = self.retry_after  # RateLimited's sanitised value


class HttpRejected(NonRetryableError):
    """Fail without retrying: a status the node does not accept. ``excerpt`` is the start of
    the body, on one line.

    Example::

        HttpRejected("http: GET https://api.example.com/x: 404 (expected 2xx): not found",
                     status=404, excerpt="not found")
    """

    def __init__(self, message: str, *, status: int, excerpt: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.excerpt = excerpt


class HttpMalformed(NonRetryableError):
    """Fail without retrying: the body was to be JSON and is not. ``raw`` is the body as
    text, bounded.

    Example::

        HttpMalformed("http: GET ...: 200 body is not JSON (...)", status=200, raw="<html>")
    """

    def __init__(self, message: str, *, status: int, raw: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.raw = raw


class HttpTooLarge(NonRetryableError):
    """Fail without retrying: the body is over ``limit`` bytes, the node's ``max_bytes``.

    Example::

        HttpTooLarge("http: GET ...: 200 body is over 10485760 bytes", status=200, limit=10485760)
    """

    def __init__(self, message: str, *, status: int, limit: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.limit = limit
