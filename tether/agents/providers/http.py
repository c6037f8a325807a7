"""One POST of JSON to a provider, and what its answer comes to: shared by every client.

A 2xx answer that is a JSON object is returned; anything else becomes one of the errors of
:mod:`tether.agents.providers.errors`. No retries here: the runtime owns them.

Example::

    answer = await post_json(http, Endpoint("openai", url, headers), body,
                             clock=clock, timeout=60.0, secrets=(key,))
    answer.body["choices"], answer.duration_ms
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec

from tether.agents.providers.errors import (
    DEFAULT_RETRY_AFTER_SECS,
    MalformedAnswer,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTransient,
    parse_retry_after,
)
from tether.agents.providers.types import FinishReason, ModelReply, ToolCall, Usage, bounded
from tether.clock import Clock

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

T = TypeVar("T")

__all__ = ["Answer", "Endpoint", "failure", "malformed", "post_json", "scrubbed"]

#: The shortest key worth scrubbing from error text.
_SECRET_MIN: Final = 8
#: How much of a provider's error text goes into an error's one-line message.
_SAID_LIMIT: Final = 500


class Endpoint(msgspec.Struct, frozen=True):
    """Where a call goes: the ``provider`` (its ``gen_ai.system`` name), URL and headers."""

    provider: str
    url: str
    headers: dict[str, str]


class Answer(msgspec.Struct, frozen=True):
    """A 2xx answer: its JSON object, its text (for ``raw``) and how long the call took."""

    body: dict[str, Any]
    text: str
    duration_ms: int


def scrubbed(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret replaced: providers echo keys back in their errors. A "secret"
    shorter than :data:`_SECRET_MIN` is no real key, and replacing it would garble the text."""
    for secret in secrets:
        if len(secret) >= _SECRET_MIN:
            text = text.replace(secret, "***")
    return text


async def post_json(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    body: Mapping[str, Any],
    *,
    clock: Clock,
    timeout: float,
    secrets: tuple[str, ...] = (),
) -> Answer:
    """POST ``body`` to ``endpoint`` and return its 2xx JSON object, or raise the error the
    answer comes to (``secrets`` scrubbed from every message)."""
    provider = endpoint.provider
    started = clock.monotonic()
    import httpx

    try:
        resp = await http.post(
            endpoint.url, content=msgspec.json.encode(body), headers=endpoint.headers,
            timeout=timeout,
        )  # fmt: skip
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        problem = scrubbed(str(exc), secrets)
        raise ProviderRejected(provider, f"{provider}: bad URL: {problem}") from exc
    except httpx.TimeoutException as exc:
        message = f"{provider}: no answer within {timeout:g}s ({_host(endpoint)})"
        raise ProviderTransient(provider, message) from exc
    except httpx.TransportError as exc:
        problem = scrubbed(str(exc) or type(exc).__name__, secrets)
        message = f"{provider}: could not reach {_host(endpoint)}: {problem}"
        raise ProviderTransient(provider, message) from exc
    duration_ms = int((clock.monotonic() - started) * 1000)
    text = resp.text
    if resp.status_code >= 300:
        # Only error text is scrubbed: a model's answer is its own, byte for byte.
        text = scrubbed(text, secrets)
        raise failure(provider, resp.status_code, resp.headers, text, clock.now())
    return Answer(_json_object(provider, text, resp.status_code), text, duration_ms)


def failure(
    provider: str, status: int, headers: Mapping[str, str], text: str, now: float
) -> ProviderError:
    """The error an HTTP status ``status`` with body ``text`` comes to."""
    said = _provider_says(text)
    wait = parse_retry_after(headers, now)
    if status == 429 or (status in (503, 529) and wait is not None):
        if wait is None:
            wait = _gemini_retry_delay(text)
        secs = DEFAULT_RETRY_AFTER_SECS if wait is None else wait
        message = f"{provider}: rate limited ({status}), retry after {secs:g}s: {said}"
        return ProviderRateLimited(provider, message, retry_after_secs=secs, status=status)
    if status >= 500 or status == 408:
        return ProviderTransient(provider, f"{provider}: failed ({status}): {said}", status=status)
    message = f"{provider} rejected the call ({status}): {said}"
    return ProviderRejected(provider, message, status=status)


def malformed(provider: str, what: str, answer: Answer) -> MalformedAnswer:
    """The error of a 2xx answer that does not say what its API promises (``what``)."""
    return MalformedAnswer(provider, f"{provider}: {what}", raw=bounded(answer.text))


def decoded(provider: str, answer: Answer, shape: type[T]) -> T:
    """The answer's body as the wire's ``shape``; :class:`MalformedAnswer` if it is not one."""
    try:
        return msgspec.convert(answer.body, shape)
    except msgspec.ValidationError as exc:
        raise malformed(provider, f"unexpected answer: {exc}", answer) from exc


def reply_of(
    provider: str,
    answer: Answer,
    model: str,
    text: str,
    tool_calls: tuple[ToolCall, ...],
    finish_reason: FinishReason,
    usage: Usage,
) -> ModelReply:
    """The provider-neutral reply a wire parser read from ``answer`` (its timing and raw text
    kept, bounded)."""
    return ModelReply(
        text=text, tool_calls=tool_calls, finish_reason=finish_reason, usage=usage,
        provider=provider, model=model, duration_ms=answer.duration_ms, raw=bounded(answer.text),
    )  # fmt: skip


def _json_object(provider: str, text: str, status: int) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        message = f"{provider}: the answer is not JSON ({exc})"
        raise MalformedAnswer(provider, message, raw=bounded(text), status=status) from exc
    if not isinstance(body, dict):
        message = f"{provider}: the answer is not a JSON object"
        raise MalformedAnswer(provider, message, raw=bounded(text), status=status)
    return body


def _provider_says(text: str) -> str:
    """The provider's own words from an error body, on one line: OpenAI, Azure, Anthropic
    and Gemini all put them under ``error`` (a code or type beside a message)."""
    try:
        body = msgspec.json.decode(text)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, list) and body:  # Gemini wraps some errors in a list
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        kind = error.get("code") or error.get("type") or error.get("status")
        message = error.get("message")
        if message:
            said = f"{kind}: {message}" if kind and kind != message else str(message)
            return _one_line(said)
    return _one_line(text) or "(no body)"


def _one_line(text: str) -> str:
    return bounded(" ".join(text.split()), _SAID_LIMIT)


def _gemini_retry_delay(text: str) -> float | None:
    """Gemini says when to come back in the body (a ``google.rpc.RetryInfo`` detail)."""
    try:
        body = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(float(delay[:-1]), 0.0)
            except ValueError:
                return None
    return None


def _host(endpoint: Endpoint) -> str:
    import httpx

    try:
        return httpx.URL(endpoint.url).host or endpoint.url
    except httpx.InvalidURL:
        return endpoint.url
