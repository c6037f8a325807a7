"""What a fake model server is told to answer, and what it heard."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["FakeFailure", "FakeReply", "FakeToolCall", "LoggedRequest", "Wire"]

#: The wire format a request came in: it decides how a scripted answer is written.
Wire = str  # "openai", "azure", "anthropic" or "gemini"


class FakeToolCall(msgspec.Struct, frozen=True):
    """A tool call in a scripted reply; ``id`` empty: the server numbers it."""

    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str = ""


class FakeReply(msgspec.Struct, frozen=True):
    """A successful answer, written in the wire format of the request it answers.

    Tokens left None are counted roughly (a token per four characters) so budgets move.
    ``model`` empty: the model the request named. ``delay_secs`` holds the answer back."""

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str = ""
    finish: str = ""
    delay_secs: float = 0.0


class FakeFailure(msgspec.Struct, frozen=True):
    """A failed answer: ``status`` with ``message`` in the wire's error format, or ``body``
    as it is (a 200 with a body that is not JSON is a malformed answer)."""

    status: int
    message: str = ""
    retry_after: str | None = None
    body: str | None = None
    delay_secs: float = 0.0

    @classmethod
    def rate_limited(cls, retry_after: float | str | None = 1) -> FakeFailure:
        """A 429; ``retry_after`` in seconds, or an HTTP date, or None for no header."""
        after = None if retry_after is None else _header(retry_after)
        return cls(429, "Rate limit reached for requests", retry_after=after)

    @classmethod
    def server_error(cls) -> FakeFailure:
        """A 500, the provider's own failure."""
        return cls(500, "The server had an error while processing your request")

    @classmethod
    def overloaded(cls, retry_after: float | None = None) -> FakeFailure:
        """Anthropic's 529 (overloaded), with a Retry-After if given."""
        after = None if retry_after is None else _header(retry_after)
        return cls(529, "Overloaded", retry_after=after)

    @classmethod
    def malformed(cls, body: str = "<html>502 Bad Gateway</html>") -> FakeFailure:
        """A 200 whose body is not the JSON the API promises."""
        return cls(200, body=body)


def _header(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


class LoggedRequest(msgspec.Struct, frozen=True):
    """One request the server received, auth headers removed.

    ``messages_hash`` is the SHA-256 of the conversation the request sent (its messages, system
    prompt and tools, canonical JSON): two requests with one hash sent the same call twice."""

    wire: Wire
    path: str
    model: str
    body: dict[str, Any]
    messages_hash: str
    headers: dict[str, str]
