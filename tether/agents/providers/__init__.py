"""Model providers: provider-neutral requests and replies, and clients for OpenAI (and Azure
OpenAI), Anthropic and Gemini over plain ``httpx``.

Clients make one call and never retry: the runtime owns retries, and what a failure comes to
is said by its error's class (:mod:`tether.agents.providers.errors`).

Example::

    from tether.agents.providers import AnthropicClient, ModelRequest, UserMessage

    async with AnthropicClient(api_key=env["ANTHROPIC_API_KEY"]) as client:
        reply = await client.complete(
            ModelRequest("claude-sonnet-4-5", (UserMessage("Name a prime."),))
        )
    reply.text, reply.usage.output_tokens, reply.finish_reason
"""

from tether.agents.providers.anthropic import AnthropicClient
from tether.agents.providers.client import ClientBase, ModelClient
from tether.agents.providers.errors import (
    MalformedAnswer,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTransient,
)
from tether.agents.providers.gemini import GeminiClient
from tether.agents.providers.openai import AzureOpenAIClient, OpenAIClient
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
    UserMessage,
)

__all__ = [
    "AnthropicClient",
    "AssistantMessage",
    "AzureOpenAIClient",
    "ClientBase",
    "FinishReason",
    "GeminiClient",
    "MalformedAnswer",
    "Message",
    "ModelClient",
    "ModelReply",
    "ModelRequest",
    "OpenAIClient",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderTransient",
    "SystemMessage",
    "ToolCall",
    "ToolResultMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
]
