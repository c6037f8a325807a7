"""What a failed model call comes to, named for what the runtime does with it.

* :class:`ProviderRateLimited`: park the step until ``retry_after_secs``, spending no attempt
  (it is a :class:`tether.RateLimited`, which the runtime already parks: I5).
* :class:`ProviderTransient`: retry with backoff (5xx, timeouts, connection errors).
* :class:`ProviderRejected`: fail at once, retrying cannot help (other 4xx: a bad key, a bad
  request); a :class:`tether.NonRetryableError`, its message one line saying what the provider
  said.
* :class:`MalformedAnswer`: the provider answered 2xx with something that is not the JSON its
  API promises; fails the attempt, ``raw`` keeps the answer (bounded) for diagnosis.

Clients never retry: the runtime owns retries, so every attempt is a journaled step (I12).

Example::

    try:
        reply = await client.complete(request)
    except ProviderRateLimited as exc:
        exc.retry_after_secs          # 20.0, from the provider's Retry-After
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from typing import Final

from tether.errors import NonRetryableError, RateLimited, TetherError

__all__ = [
    "DEFAULT_RETRY_AFTER_SECS",
    "MalformedAnswer",
    "ModelConfigError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderTransient",
    "parse_retry_after",
]

#: How long a 429 parks when the provider gave no hint of its own.
DEFAULT_RETRY_AFTER_SECS: Final = 5.0


class ProviderError(TetherError):
    """A model call that did not give a reply. ``status`` is the HTTP status (0: none came)."""

    def __init__(self, provider: str, message: str, *, status: int = 0) -> None:
        # Exception's own init, not super(): in ProviderRateLimited the next class in line is
        # RateLimited, whose first argument is a number of seconds.
        Exception.__init__(self, message)
        self.provider = provider
        self.status = status
        self.message = message


class ProviderTransient(ProviderError):
    """Retry with backoff: the provider failed (5xx), timed out or could not be reached."""


class ProviderRejected(ProviderError, NonRetryableError):
    """Fail without retrying: the provider refused the call (a 4xx other than 429)."""


class MalformedAnswer(ProviderError):
    """Fail the attempt: the answer was not the JSON the provider's API promises.

    ``raw`` is the answer as received, bounded (see ``types.RAW_LIMIT``)."""

    def __init__(self, provider: str, message: str, *, raw: str, status: int = 200) -> None:
        super().__init__(provider, message, status=status)
        self.raw = raw


class ProviderRateLimited(ProviderError, RateLimited):
    """Park without spending an attempt: the provider asked to come back in
    ``retry_after_secs`` seconds (a 429, or a 503/529 that said when)."""

    def __init__(
        self, provider: str, message: str, *, retry_after_secs: float, status: int
    ) -> None:
        RateLimited.__init__(self, retry_after_secs, message)
        self.provider = provider
        self.status = status
        self.retry_after_secs = self.retry_after  # RateLimited's sanitised value


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds, or an HTTP date
    taken against ``now``, epoch seconds); None when neither is present or readable.

    ``headers`` is looked up in lower case (httpx's headers are case-insensitive already)."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return max(millis / 1000.0, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT by definition (RFC 9110)
        return None
    return max(when.timestamp() - now, 0.0)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


class ModelConfigError(TetherError, ValueError):
    """A models configuration (or environment) that cannot work; the message names the field.

    Example::

        ModelConfigError("models.smart.fallback: 'fastt' is not a model here (known: fast)")
    """
