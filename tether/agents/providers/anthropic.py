"""Anthropic Messages: system as a top-level field, tool_use and tool_result content blocks.

A JSON ``output_schema`` is asked for the way Anthropic documents for every Claude model: as a
tool the model must call (:data:`OUTPUT_TOOL`), whose input becomes the reply's text.

Example::

    client = AnthropicClient(api_key=env["ANTHROPIC_API_KEY"])
    reply = await client.complete(ModelRequest("claude-sonnet-4-5", (UserMessage("Hi"),)))
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tether.agents.providers.client import ClientBase
from tether.agents.providers.http import (
    Answer,
    Endpoint,
    decoded,
    malformed,
    post_json,
    reply_of,
)
from tether.agents.providers.types import (
    AssistantMessage,
    FinishReason,
    Message,
    ModelReply,
    ModelRequest,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    Usage,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_ANTHROPIC_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "OUTPUT_TOOL",
    "AnthropicClient",
    "messages_body",
    "parse_messages",
]

DEFAULT_ANTHROPIC_BASE_URL: Final = "https://api.anthropic.com"
ANTHROPIC_VERSION: Final = "2023-06-01"
#: Anthropic requires max_tokens; a request that leaves it to the provider gets this.
DEFAULT_MAX_TOKENS: Final = 4096
#: The tool through which a JSON output schema is answered.
OUTPUT_TOOL: Final = "tether_output"

_FINISH: Final[dict[str, FinishReason]] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicClient(ClientBase):
    """Messages at ``base_url`` (``ANTHROPIC_BASE_URL``, without ``/v1``), key in ``x-api-key``."""

    provider = "anthropic"

    default_base_url = DEFAULT_ANTHROPIC_BASE_URL

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Call the model once (no retries: the runtime owns them) and return its reply."""
        headers = {
            "content-type": "application/json",
            "x-api-key": self._key,
            "anthropic-version": ANTHROPIC_VERSION,
        }
        endpoint = Endpoint(self.provider, f"{self._base_url}/v1/messages", headers)
        answer = await post_json(
            self._http, endpoint, messages_body(request),
            clock=self._clock, timeout=self._timeout, secrets=(self._key,),
        )  # fmt: skip
        return parse_messages(self.provider, answer)


def messages_body(request: ModelRequest) -> dict[str, Any]:
    """The Messages request body for ``request``."""
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
        "messages": _turns(request.messages),
    }
    system = "\n\n".join(m.content for m in request.messages if isinstance(m, SystemMessage))
    if system:
        body["system"] = system
    tools = [
        {"name": t.name, "description": t.description, "input_schema": t.parameters}
        for t in request.tools
    ]
    if request.output_schema is not None:
        tools.append({
            "name": OUTPUT_TOOL,
            "description": "Give the final answer, as this tool's input.",
            "input_schema": request.output_schema,
        })  # fmt: skip
        # Made to call a tool: its own ones while it works, this one to answer.
        only = len(tools) == 1
        body["tool_choice"] = {"type": "tool", "name": OUTPUT_TOOL} if only else {"type": "any"}
    if tools:
        body["tools"] = tools
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and assistant turns of content blocks; consecutive blocks of one role share a turn
    (all results of a turn's tool calls must come in the one user turn that follows it)."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            continue
        role = "assistant" if isinstance(m, AssistantMessage) else "user"
        blocks = _blocks(m)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _blocks(m: Message) -> list[dict[str, Any]]:
    if isinstance(m, ToolResultMessage):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.call_id}
        block["content"] = m.content
        if m.is_error:
            block["is_error"] = True
        return [block]
    if isinstance(m, AssistantMessage):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
        blocks += [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
            for c in m.tool_calls
        ]
        return blocks
    return [{"type": "text", "text": m.content}]


class _Block(msgspec.Struct, frozen=True):
    type: str
    text: str = ""
    id: str = ""
    name: str = ""
    input: dict[str, Any] | None = None


class _Usage(msgspec.Struct, frozen=True):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Messages(msgspec.Struct, frozen=True):
    content: list[_Block]
    model: str = ""
    stop_reason: str | None = None
    usage: _Usage | None = None


def parse_messages(provider: str, answer: Answer) -> ModelReply:
    """The reply in a Messages answer; :class:`MalformedAnswer` if it is not one."""
    msg = decoded(provider, answer, _Messages)
    texts: list[str] = []
    calls: list[ToolCall] = []
    finish = _FINISH.get(msg.stop_reason or "", "other")
    for block in msg.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use" and block.name == OUTPUT_TOOL:
            texts.append(msgspec.json.encode(block.input or {}).decode())
            finish = "stop"  # the answer, given the way it was asked for
        elif block.type == "tool_use":
            if not block.id or not block.name:
                raise malformed(provider, "a tool_use block without an id or a name", answer)
            calls.append(ToolCall(block.id, block.name, block.input or {}))
    u = msg.usage or _Usage()
    cached = (u.cache_creation_input_tokens or 0) + (u.cache_read_input_tokens or 0)
    return reply_of(
        provider, answer, msg.model, "".join(texts), tuple(calls),
        "tool_calls" if calls else finish, Usage(u.input_tokens + cached, u.output_tokens),
    )  # fmt: skip
