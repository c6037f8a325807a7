"""The runner of the workflow ``http`` node: one HTTP request, and what its answer comes to.

A status the node accepts gives ``{"status", "headers", "body"}``; anything else raises one of
:mod:`.errors`, named for what the runtime does with it. No retries or redirects here: the
runtime owns retries (each attempt a journaled step), and a redirect would carry the node's
headers (its filled-in keys) to wherever the server points.

Example::

    reply = await call_http({"url": "https://api.example.com/items?page=2",
                             "headers": {"Authorization": "Bearer ${API_TOKEN}"}})
    reply["status"], reply["body"]          # (200, {"items": [...]})
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import anyio
import msgspec

from tether.agents.http_node.errors import (
    HttpArgsError,
    HttpMalformed,
    HttpRateLimited,
    HttpRejected,
    HttpTooLarge,
    HttpTransient,
)
from tether.agents.http_node.placeholders import (
    Lookup,
    Scrubber,
    fill_text,
    lookup_in,
    quote_value,
)
from tether.agents.http_node.request import HttpRequest, check_header_value, parse_request
from tether.agents.providers.errors import DEFAULT_RETRY_AFTER_SECS, parse_retry_after
from tether.agents.providers.types import bounded
from tether.runtime.secrets import SecretSource

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

__all__ = ["SAFE_HEADERS", "call_http"]

#: The response headers a reply keeps: what describes the body or the next call. Others
#: (cookies, tracing, whatever a server echoes) would only bloat the journal, or leak.
SAFE_HEADERS: Final = (
    "content-type", "content-length", "content-language", "cache-control", "etag",
    "last-modified", "location", "link", "retry-after", "x-request-id",
)  # fmt: skip
#: How much of a body a failed call's message quotes, and keeps of a body that is not JSON.
_EXCERPT_CHARS: Final = 300
_RAW_CHARS: Final = 2048
#: How much of a refused answer's body is read: the excerpt is all it is for.
_ERROR_READ_BYTES: Final = 8192


@dataclass(frozen=True, slots=True)
class _Wire:
    """The request as sent: placeholders filled, and the scrubber that takes them back."""

    url: str
    headers: tuple[tuple[str, str], ...]
    scrubber: Scrubber


async def call_http(
    args: Mapping[str, Any],
    *,
    secrets: SecretSource | None = None,
    environ: Mapping[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """Make the request ``args`` describe; ``${NAME}`` in header values and the URL's query
    come from ``secrets``, then ``environ`` (default ``os.environ``). Raises HttpArgsError,
    HttpRateLimited, HttpTransient, HttpRejected, HttpMalformed or HttpTooLarge.

    Example::

        await call_http({"method": "POST", "url": "http://127.0.0.1:8080/items",
                         "body": {"name": "x"}, "expect_status": [201]})
        # {"status": 201, "headers": {"content-type": "application/json"}, "body": {...}}
    """
    request = parse_request(args)
    wire = _fill(request, lookup_in(secrets, os.environ if environ is None else environ))
    if client is not None:
        return await _exchange(client, request, wire)
    import httpx

    async with httpx.AsyncClient() as own:
        return await _exchange(own, request, wire)


def _fill(request: HttpRequest, lookup: Lookup) -> _Wire:
    used: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for name, template in request.headers:
        filled = fill_text(template, f"headers.{name}", lookup)
        check_header_value(name, filled.text, filled=bool(filled.used))
        headers.append((name, filled.text))
        used |= filled.used
    if request.content_type and not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", request.content_type))
    before_query, mark, query = request.url.partition("?")
    # Escaped as a query value: a key with '&' or '#' in it must not end the parameter.
    filled_query = fill_text(query, "url", lookup, encode=quote_value)
    used |= filled_query.used
    return _Wire(before_query + mark + filled_query.text, tuple(headers), Scrubber.of(used))


async def _exchange(client: httpx.AsyncClient, request: HttpRequest, wire: _Wire) -> dict[str, Any]:
    what = _what(request)
    failure: Exception
    import httpx

    try:
        # httpx's timeout bounds each read; this bounds the whole call, a trickling body too.
        with anyio.fail_after(request.timeout_secs):
            async with client.stream(
                request.method, wire.url, headers=list(wire.headers), content=request.content,
                timeout=request.timeout_secs, follow_redirects=False,
            ) as response:  # fmt: skip
                return await _answer(response, request, wire.scrubber)
    except (TimeoutError, httpx.TimeoutException):
        failure = HttpTransient(f"http: {what}: no answer within {request.timeout_secs:g}s")
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
        problem = wire.scrubber.text(str(exc) or type(exc).__name__)
        failure = HttpArgsError(f"http: {what}: cannot be sent: {problem}")
    except httpx.HTTPError as exc:
        problem = wire.scrubber.text(str(exc) or type(exc).__name__)
        failure = HttpTransient(f"http: {what}: failed before an answer: {problem}")
    # Raised here, not in the handler: httpx's exception, chained as the context, could
    # hold the filled-in request.
    raise failure


async def _answer(
    response: httpx.Response, request: HttpRequest, scrubber: Scrubber
) -> dict[str, Any]:
    status = response.status_code
    if not _accepted(status, request.expect_status):
        data, _ = await _read_at_most(response, _ERROR_READ_BYTES)
        raise _refusal(request, status, response.headers, scrubber.text(_decode(data, response)))
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > request.max_bytes:
        raise _too_large(request, status)
    data, more = await _read_at_most(response, request.max_bytes)
    if more:
        raise _too_large(request, status)
    body = _body(data, response, request, scrubber)
    headers = {name: response.headers[name] for name in SAFE_HEADERS if name in response.headers}
    return {"status": status, "headers": scrubber.value(headers), "body": scrubber.value(body)}


def _accepted(status: int, expect_status: frozenset[int] | None) -> bool:
    return 200 <= status < 300 if expect_status is None else status in expect_status


async def _read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the (decompressed) body, and whether there was more: read
    chunk by chunk, so a huge or endless body costs no more than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _body(data: bytes, response: httpx.Response, request: HttpRequest, scrubber: Scrubber) -> Any:
    media_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    is_json = media_type in ("application/json", "text/json") or media_type.endswith("+json")
    if request.response == "text" or (request.response == "auto" and not is_json):
        return _decode(data, response)
    if not data.strip():
        return None  # a 204, or an empty body under a JSON content type
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raw = bounded(scrubber.text(_decode(data, response)), _RAW_CHARS)
        message = f"http: {_what(request)}: {response.status_code} body is not JSON ({exc})"
        raise HttpMalformed(message, status=response.status_code, raw=raw) from None


def _decode(data: bytes, response: httpx.Response) -> str:
    try:
        return data.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def _refusal(
    request: HttpRequest, status: int, headers: httpx.Headers, text: str
) -> HttpRateLimited | HttpTransient | HttpRejected:
    """The error of a status the node does not accept; ``text`` is the scrubbed body."""
    what = _what(request)
    excerpt = bounded(" ".join(text.split()), _EXCERPT_CHARS) or "(no body)"
    wait = parse_retry_after(headers, time.time())
    if status == 429 or (status in (503, 529) and wait is not None):
        secs = DEFAULT_RETRY_AFTER_SECS if wait is None else wait
        message = f"http: {what}: rate limited ({status}), retry after {secs:g}s: {excerpt}"
        return HttpRateLimited(message, retry_after_secs=secs, status=status)
    if status >= 500 or status == 408:
        return HttpTransient(f"http: {what}: server failed ({status}): {excerpt}", status=status)
    expected = ", ".join(map(str, sorted(request.expect_status or ()))) or "2xx"
    message = f"http: {what}: {status} (expected {expected}): {excerpt}"
    return HttpRejected(message, status=status, excerpt=excerpt)


def _too_large(request: HttpRequest, status: int) -> HttpTooLarge:
    message = (
        f"http: {_what(request)}: {status} body is over max_bytes ({request.max_bytes} bytes); "
        "raise max_bytes or ask for less"
    )
    return HttpTooLarge(message, status=status, limit=request.max_bytes)


def _what(request: HttpRequest) -> str:
    # The URL as written, placeholders and all: it never held a value, so it cannot leak one.
    return f"{request.method} {request.url}"
