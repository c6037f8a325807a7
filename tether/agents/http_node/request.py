"""An ``http`` node's arguments, checked into a :class:`HttpRequest`; each problem is an
:class:`HttpArgsError` of one line naming the field.

The arguments are plain JSON values the engine rendered and journaled: placeholders
(``${NAME}``) stay as written here; :mod:`.placeholders` fills them where the call runs.

Example::

    request = parse_request({"method": "post", "url": "https://api.example.com/items",
                             "body": {"name": "x"}, "expect_status": [201]})
    request.method, request.content_type        # ('POST', 'application/json')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import msgspec

from tether.agents.http_node.errors import HttpArgsError
from tether.agents.http_node.placeholders import PLACEHOLDER

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_SECS",
    "METHODS",
    "HttpRequest",
    "ResponseMode",
    "check_header_value",
    "parse_request",
]

DEFAULT_TIMEOUT_SECS: Final = 30.0
DEFAULT_MAX_BYTES: Final = 10 * 1024 * 1024
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ResponseMode = Literal["auto", "json", "text"]
_FIELDS: Final = frozenset(
    {"method", "url", "headers", "body", "expect_status", "timeout_secs", "response"}
    | {"max_bytes"}
)
#: A header name is an RFC 9110 token.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A checked ``http`` node call, placeholders unfilled. ``content`` is the encoded body
    (None: no body) and ``content_type`` what it is, unless a header says otherwise."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    content: bytes | None
    content_type: str | None
    expect_status: frozenset[int] | None
    timeout_secs: float
    response: ResponseMode
    max_bytes: int


def parse_request(args: Mapping[str, Any]) -> HttpRequest:
    """The request ``args`` describe, or an HttpArgsError naming the field that is wrong.

    Example::

        parse_request({"url": "https://example.com"}).timeout_secs      # 30.0
    """
    if not isinstance(args, Mapping):
        raise HttpArgsError(f"http: the arguments must be an object, got {_kind(args)}")
    unknown = sorted(str(key) for key in args if key not in _FIELDS)
    if unknown:
        known = ", ".join(sorted(_FIELDS))
        raise HttpArgsError(f"http: unknown argument {unknown[0]!r:.80} (known: {known})")
    content, content_type = _body(args.get("body"))
    return HttpRequest(
        method=_method(args.get("method")),
        url=_url(args.get("url")),
        headers=_headers(args.get("headers")),
        content=content,
        content_type=content_type,
        expect_status=_expect_status(args.get("expect_status")),
        timeout_secs=_timeout(args.get("timeout_secs")),
        response=_response(args.get("response")),
        max_bytes=_max_bytes(args.get("max_bytes")),
    )


def _method(value: object) -> str:
    if value is None:
        return "GET"
    if not isinstance(value, str) or value.upper() not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise HttpArgsError(f"http: method must be one of {known}, got {value!r:.80}")
    return value.upper()


def _url(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise HttpArgsError(f"http: url must be a non-empty string, got {_kind(value)}")
    before_query, _, query = value.partition("?")
    _, _, fragment = query.partition("#")
    if PLACEHOLDER.search(before_query) or PLACEHOLDER.search(fragment):
        # A value in the host or path could send the call (and its headers) elsewhere.
        raise HttpArgsError("http: url: ${NAME} is filled in the query only, not before '?'")
    import httpx

    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise HttpArgsError(f"http: url is not a URL ({exc}): {value:.200}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise HttpArgsError(f"http: url must be http(s)://host/..., got {value:.200}")
    return value


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise HttpArgsError(f"http: headers must be an object of strings, got {_kind(value)}")
    for name, text in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise HttpArgsError(f"http: headers: {name!r:.80} is not a header name")
        if not isinstance(text, str):
            raise HttpArgsError(f"http: headers.{name} must be a string, got {_kind(text)}")
        check_header_value(name, text)
    return tuple(value.items())


def check_header_value(name: str, value: str, *, filled: bool = False) -> None:
    """HttpArgsError unless ``value`` can go on the wire as header ``name`` (ASCII, one line).
    A ``filled`` value was resolved from placeholders, so the message does not show it."""
    if value.isascii() and not any(c in value for c in "\r\n\0"):
        return
    whose = "a value filled into it" if filled else "it"
    raise HttpArgsError(f"http: headers.{name}: {whose} must be ASCII, on one line")


def _body(value: object) -> tuple[bytes | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        return value.encode(), "text/plain; charset=utf-8"
    try:
        return msgspec.json.encode(value), "application/json"
    except (msgspec.EncodeError, TypeError) as exc:
        raise HttpArgsError(f"http: body must be a string or a JSON value ({exc})") from None


def _expect_status(value: object) -> frozenset[int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(_is_int(code) and 100 <= code <= 599 for code in value)
    ):
        message = "a non-empty list of HTTP statuses (100..599)"
        raise HttpArgsError(f"http: expect_status must be {message}, got {value!r:.80}")
    return frozenset(value)


def _timeout(value: object) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_SECS
    if not _is_number(value) or not 0 < cast(float, value) < math.inf:
        message = "a positive number of seconds"
        raise HttpArgsError(f"http: timeout_secs must be {message}, got {value!r:.80}")
    return float(cast(float, value))


def _response(value: object) -> ResponseMode:
    if value is None:
        return "auto"
    if value == "auto" or value == "json" or value == "text":
        return value
    raise HttpArgsError(f"http: response must be auto, json or text, got {value!r:.80}")


def _max_bytes(value: object) -> int:
    if value is None:
        return DEFAULT_MAX_BYTES
    if not _is_int(value) or cast(int, value) <= 0:
        message = "a positive whole number of bytes"
        raise HttpArgsError(f"http: max_bytes must be {message}, got {value!r:.80}")
    return cast(int, value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
