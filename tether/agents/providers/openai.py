"""OpenAI Chat Completions, and every endpoint that speaks it (Azure OpenAI, proxies, vLLM).

Example::

    client = OpenAIClient(api_key=env["OPENAI_API_KEY"])
    reply = await client.complete(ModelRequest("gpt-4o-mini", (UserMessage("Hi"),)))

    azure = AzureOpenAIClient(endpoint="https://x.openai.azure.com", api_key=key)
    reply = await azure.complete(ModelRequest("my-deployment", (UserMessage("Hi"),)))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import msgspec

from tether.agents.providers.client import DEFAULT_TIMEOUT_SECS, ClientBase
from tether.agents.providers.http import Answer, Endpoint, decoded, malformed, post_json, reply_of
from tether.agents.providers.types import (
    AssistantMessage,
    FinishReason,
    Message,
    ModelReply,
    ModelRequest,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    Usage,
)
from tether.clock import Clock

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

__all__ = [
    "DEFAULT_AZURE_API_VERSION",
    "DEFAULT_OPENAI_BASE_URL",
    "AzureOpenAIClient",
    "OpenAIClient",
    "chat_body",
    "parse_chat",
]

DEFAULT_OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
#: A generally available Azure OpenAI data-plane version with tools and JSON-schema output.
DEFAULT_AZURE_API_VERSION: Final = "2024-10-21"

_FINISH: Final[dict[str, FinishReason]] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIClient(ClientBase):
    """Chat Completions at ``base_url`` (``OPENAI_BASE_URL``, with its ``/v1``) with a bearer
    key. An empty key sends no Authorization header (a local endpoint that wants none)."""

    provider = "openai"

    default_base_url = DEFAULT_OPENAI_BASE_URL

    def endpoint(self, model: str) -> Endpoint:
        """Where a call of ``model`` goes, with its headers."""
        headers = {"content-type": "application/json"}
        if self._key:
            headers["authorization"] = f"Bearer {self._key}"
        return Endpoint(self.provider, f"{self._base_url}/chat/completions", headers)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Call the model once (no retries: the runtime owns them) and return its reply."""
        answer = await post_json(
            self._http, self.endpoint(request.model), chat_body(request),
            clock=self._clock, timeout=self._timeout, secrets=(self._key,),
        )  # fmt: skip
        return parse_chat(self.provider, answer)


class AzureOpenAIClient(OpenAIClient):
    """Azure OpenAI: the request's model names the deployment, the key goes in ``api-key``
    and every call carries ``api-version`` (``OPENAI_API_VERSION``)."""

    provider = "azure.ai.openai"

    def __init__(
        self,
        endpoint: str,
        api_key: str,
        *,
        api_version: str = DEFAULT_AZURE_API_VERSION,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECS,
    ) -> None:
        super().__init__(api_key, base_url=endpoint, http=http, clock=clock, timeout=timeout)
        self._api_version = api_version

    def endpoint(self, model: str) -> Endpoint:
        deployment = quote(model, safe="")
        url = (
            f"{self._base_url}/openai/deployments/{deployment}/chat/completions"
            f"?api-version={quote(self._api_version, safe='')}"
        )
        headers = {"content-type": "application/json", "api-key": self._key}
        return Endpoint(self.provider, url, headers)


def chat_body(request: ModelRequest) -> dict[str, Any]:
    """The Chat Completions request body for ``request``."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
    }
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        # max_tokens is deprecated and refused by reasoning models; this one works for all.
        body["max_completion_tokens"] = request.max_output_tokens
    if request.output_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.output_schema},
        }
    return body


def _message(m: Message) -> dict[str, Any]:
    if isinstance(m, AssistantMessage):
        out: dict[str, Any] = {"role": "assistant", "content": m.content or None}
        if m.tool_calls:
            out["tool_calls"] = [_call(c) for c in m.tool_calls]
        return out
    if isinstance(m, ToolResultMessage):
        return {"role": "tool", "tool_call_id": m.call_id, "content": m.content}
    role = "system" if isinstance(m, SystemMessage) else "user"
    return {"role": role, "content": m.content}


def _tool(t: ToolSpec) -> dict[str, Any]:
    function = {"name": t.name, "description": t.description, "parameters": t.parameters}
    return {"type": "function", "function": function}


def _call(c: ToolCall) -> dict[str, Any]:
    # The wire carries arguments as JSON text, not as an object.
    function = {"name": c.name, "arguments": msgspec.json.encode(c.arguments).decode()}
    return {"id": c.id, "type": "function", "function": function}


class _Function(msgspec.Struct, frozen=True):
    name: str
    arguments: str


class _ToolCall(msgspec.Struct, frozen=True):
    id: str
    function: _Function


class _Message(msgspec.Struct, frozen=True):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct, frozen=True):
    message: _Message
    finish_reason: str | None = None


class _Usage(msgspec.Struct, frozen=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class _Chat(msgspec.Struct, frozen=True):
    choices: list[_Choice]
    model: str = ""
    usage: _Usage | None = None


def parse_chat(provider: str, answer: Answer) -> ModelReply:
    """The reply in a Chat Completions answer; :class:`MalformedAnswer` if it is not one."""
    chat = decoded(provider, answer, _Chat)
    if not chat.choices:
        raise malformed(provider, "the answer has no choices", answer)
    choice = chat.choices[0]
    calls = tuple(_tool_call(provider, c, answer) for c in choice.message.tool_calls or ())
    finish = _FINISH.get(choice.finish_reason or "", "other")
    if choice.message.refusal and not choice.message.content:
        finish = "content_filter"  # a refusal is the model declining, said in words
    usage = chat.usage or _Usage()
    text = choice.message.content or choice.message.refusal or ""
    counted = Usage(usage.prompt_tokens, usage.completion_tokens)
    return reply_of(provider, answer, chat.model, text, calls, finish, counted)


def _tool_call(provider: str, call: _ToolCall, answer: Answer) -> ToolCall:
    try:
        arguments = msgspec.json.decode(call.function.arguments or "{}")
    except msgspec.DecodeError as exc:
        what = f"tool call {call.function.name!r} has arguments that are not JSON ({exc})"
        raise malformed(provider, what, answer) from exc
    if not isinstance(arguments, dict):
        what = f"tool call {call.function.name!r} has arguments that are not a JSON object"
        raise malformed(provider, what, answer)
    return ToolCall(call.id, call.function.name, arguments)
