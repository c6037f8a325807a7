"""One client per wire format, each pointed at a fake model server."""

from __future__ import annotations

from tether.agents.providers import (
    AnthropicClient,
    AzureOpenAIClient,
    ClientBase,
    GeminiClient,
    OpenAIClient,
)
from tether.testing.fake_models import FakeModelServer

KEY = "sk-test-0123456789"
WIRES = ["openai", "azure", "anthropic", "gemini"]
PROVIDER = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
}


def client_for(
    wire: str, server: FakeModelServer, key: str = KEY, timeout: float = 30.0
) -> ClientBase:
    if wire == "openai":
        return OpenAIClient(key, base_url=server.openai_base_url, timeout=timeout)
    if wire == "azure":
        return AzureOpenAIClient(server.url, key, api_version="2024-10-21", timeout=timeout)
    if wire == "anthropic":
        return AnthropicClient(key, base_url=server.url, timeout=timeout)
    return GeminiClient(key, base_url=server.url, timeout=timeout)
