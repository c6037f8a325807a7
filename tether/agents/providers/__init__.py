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
from tether.agents.providers.config import ModelsConfig, ModelSpec, fallback_chain, parse_models
from tether.agents.providers.costs import DEFAULT_PRICES, Cost, CostTable, Price
from tether.agents.providers.errors import (
    MalformedAnswer,
    ModelConfigError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTransient,
)
from tether.agents.providers.gemini import GeminiClient
from tether.agents.providers.openai import AzureOpenAIClient, OpenAIClient
from tether.agents.providers.provider_set import ProviderSet
from tether.agents.providers.resolve import PROVIDERS, SEAM_URL, make_client, provider_for
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
    "DEFAULT_PRICES",
    "PROVIDERS",
    "SEAM_URL",
    "AnthropicClient",
    "AssistantMessage",
    "AzureOpenAIClient",
    "ClientBase",
    "Cost",
    "CostTable",
    "FinishReason",
    "GeminiClient",
    "MalformedAnswer",
    "Message",
    "ModelClient",
    "ModelConfigError",
    "ModelReply",
    "ModelRequest",
    "ModelSpec",
    "ModelsConfig",
    "OpenAIClient",
    "Price",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderSet",
    "ProviderTransient",
    "SystemMessage",
    "ToolCall",
    "ToolResultMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "fallback_chain",
    "make_client",
    "parse_models",
    "provider_for",
]
