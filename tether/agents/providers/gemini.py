"""Gemini generateContent: contents of parts, functionCall/functionResponse, usageMetadata.

Example::

    client = GeminiClient(api_key=env["GEMINI_API_KEY"])
    reply = await client.complete(ModelRequest("gemini-2.5-flash", (UserMessage("Hi"),)))
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

import msgspec

from tether.agents.providers.client import ClientBase
from tether.agents.providers.http import (
    Answer,
    Endpoint,
    decoded,
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

__all__ = ["DEFAULT_GEMINI_BASE_URL", "GeminiClient", "generate_body", "parse_generate"]

DEFAULT_GEMINI_BASE_URL: Final = "https://generativelanguage.googleapis.com"

_FINISH: Final[dict[str, FinishReason]] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


class GeminiClient(ClientBase):
    """generateContent at ``base_url`` (without ``/v1beta``), key in ``x-goog-api-key``."""

    provider = "gcp.gemini"

    default_base_url = DEFAULT_GEMINI_BASE_URL

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Call the model once (no retries: the runtime owns them) and return its reply."""
        model = quote(request.model.removeprefix("models/"), safe="")
        url = f"{self._base_url}/v1beta/models/{model}:generateContent"
        headers = {"content-type": "application/json", "x-goog-api-key": self._key}
        answer = await post_json(
            self._http, Endpoint(self.provider, url, headers), generate_body(request),
            clock=self._clock, timeout=self._timeout, secrets=(self._key,),
        )  # fmt: skip
        return parse_generate(self.provider, answer, request.model)


def generate_body(request: ModelRequest) -> dict[str, Any]:
    """The generateContent request body for ``request``."""
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    system = [{"text": m.content} for m in request.messages if isinstance(m, SystemMessage)]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in request.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        config["maxOutputTokens"] = request.max_output_tokens
    if request.output_schema is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = request.output_schema
    if config:
        body["generationConfig"] = config
    return body


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """User and model turns of parts; a function's response is matched to its call by name,
    so a result without one takes it from the call it answers."""
    calls = (c for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls)
    names = {c.id: c.name for c in calls}
    contents: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            continue
        role = "model" if isinstance(m, AssistantMessage) else "user"
        parts = _parts(m, names)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(m: Message, names: dict[str, str]) -> list[dict[str, Any]]:
    if isinstance(m, ToolResultMessage):
        key = "error" if m.is_error else "result"
        response = {"name": m.name or names.get(m.call_id, ""), "response": {key: m.content}}
        return [{"functionResponse": response}]
    if isinstance(m, AssistantMessage):
        parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
        for c in m.tool_calls:
            part: dict[str, Any] = {"functionCall": {"name": c.name, "args": c.arguments}}
            if c.signature:
                part["thoughtSignature"] = c.signature
            parts.append(part)
        return parts
    return [{"text": m.content}]


class _FunctionCall(msgspec.Struct, frozen=True):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None


class _Part(msgspec.Struct, frozen=True, rename="camel"):
    text: str | None = None
    function_call: _FunctionCall | None = None
    thought_signature: str | None = None
    thought: bool | None = None


class _Content(msgspec.Struct, frozen=True):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, frozen=True, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None


class _UsageMetadata(msgspec.Struct, frozen=True, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0


class _Generate(msgspec.Struct, frozen=True, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    model_version: str = ""


def parse_generate(provider: str, answer: Answer, model: str) -> ModelReply:
    """The reply in a generateContent answer; :class:`MalformedAnswer` if it is not one.
    No candidate at all means the prompt was blocked: an empty, filtered reply."""
    gen = decoded(provider, answer, _Generate)
    candidate = gen.candidates[0] if gen.candidates else None
    parts = candidate.content.parts if candidate and candidate.content else []
    # Thought summaries are the model's notes to itself, not its answer.
    text = "".join(p.text for p in parts if p.text and not p.thought)
    calls = tuple(
        ToolCall(
            p.function_call.id or f"call_{i}",  # older models give no ids: unique per reply
            p.function_call.name,
            p.function_call.args or {},
            signature=p.thought_signature or "",
        )
        for i, p in enumerate(parts)
        if p.function_call is not None
    )
    if candidate is None:
        finish: FinishReason = "content_filter"
    else:
        finish = "tool_calls" if calls else _FINISH.get(candidate.finish_reason or "", "other")
    u = gen.usage_metadata or _UsageMetadata()
    usage = Usage(u.prompt_token_count, u.candidates_token_count + u.thoughts_token_count)
    return reply_of(provider, answer, gen.model_version or model, text, calls, finish, usage)
