"""Provider-neutral messages, tools, requests and replies: what an agent step journals.

Every struct is frozen msgspec, so a request and its reply encode to the same bytes wherever the
step ran (I11). The wire formats of OpenAI, Anthropic and Gemini are translated to and from these
in their own modules; nothing here knows about HTTP.

Example::

    request = ModelRequest(
        model="gpt-4o-mini",
        messages=(SystemMessage("Be brief."), UserMessage("Weather in Oslo?")),
        tools=(ToolSpec("weather", "Current weather", {"type": "object", "properties": {}}),),
    )
    reply = await client.complete(request)
    reply.tool_calls[0].arguments        # {"city": "Oslo"}, parsed
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "RAW_LIMIT",
    "AssistantMessage",
    "FinishReason",
    "Message",
    "ModelReply",
    "ModelRequest",
    "SystemMessage",
    "ToolCall",
    "ToolResultMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "bounded",
]

#: How much of a provider's raw answer a reply or an error keeps for diagnostics: enough to
#: read what went wrong, not so much that a journal row carries a whole transcript twice.
RAW_LIMIT: Final = 8192

#: Why the model stopped, the same words for every provider.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]


def bounded(text: str, limit: int = RAW_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left off."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


class ToolCall(msgspec.Struct, frozen=True):
    """A call the model asked for; ``arguments`` is already parsed from the wire's JSON."""

    id: str
    name: str
    arguments: dict[str, Any]
    #: An opaque token some providers need back with the call (Gemini's thought signature).
    signature: str = ""


class SystemMessage(msgspec.Struct, frozen=True, tag="system", tag_field="role"):
    content: str


class UserMessage(msgspec.Struct, frozen=True, tag="user", tag_field="role"):
    content: str


class AssistantMessage(msgspec.Struct, frozen=True, tag="assistant", tag_field="role"):
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


class ToolResultMessage(msgspec.Struct, frozen=True, tag="tool", tag_field="role"):
    """The result of the tool call ``call_id``. ``name`` is the tool's (Gemini matches results
    by name; left empty, it is found from the assistant message that made the call)."""

    call_id: str
    content: str
    name: str = ""
    is_error: bool = False


Message = SystemMessage | UserMessage | AssistantMessage | ToolResultMessage


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool the model may call: ``parameters`` is a JSON schema of its arguments object."""

    name: str
    description: str
    parameters: dict[str, Any] = msgspec.field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


class ModelRequest(msgspec.Struct, frozen=True):
    """One call of a model. ``output_schema`` (a JSON schema) asks for a JSON answer in
    ``ModelReply.text``; ``max_output_tokens`` None leaves the provider's default (Anthropic,
    which has none, gets :data:`tether.agents.providers.anthropic.DEFAULT_MAX_TOKENS`)."""

    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_output_tokens: int | None = None
    output_schema: dict[str, Any] | None = None


class Usage(msgspec.Struct, frozen=True):
    """Tokens billed for one call. Input counts cached prompt tokens too; output counts
    reasoning ("thinking") tokens, which providers bill as output."""

    input_tokens: int = 0
    output_tokens: int = 0


class ModelReply(msgspec.Struct, frozen=True):
    """What a model answered, provider-neutral.

    ``provider`` is OpenTelemetry GenAI's ``gen_ai.system`` name ("openai", "azure.ai.openai",
    "anthropic", "gcp.gemini"); ``model`` is the model that answered (often a dated version of
    the one asked for); ``raw`` is the provider's answer, bounded by :data:`RAW_LIMIT`.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: FinishReason
    usage: Usage
    provider: str
    model: str
    duration_ms: int
    raw: str = ""
