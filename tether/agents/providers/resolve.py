"""Which provider serves a model, and a client for it from an environment mapping.

The environment is passed in (``os.environ`` or a test's dict), never read here:

* ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``
* ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``, ``OPENAI_API_VERSION``
* ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``
* ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), ``GEMINI_BASE_URL``
* ``TETHER_MODEL_SEAM_URL``: every call, whatever its provider, goes to this one
  OpenAI-compatible endpoint (a proxy, a local server, a fake), with ``TETHER_MODEL_SEAM_KEY``.

Example::

    provider_for("claude-sonnet-4-5")                 # "anthropic"
    client = make_client("anthropic", os.environ)     # an AnthropicClient
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from tether.agents.providers.anthropic import DEFAULT_ANTHROPIC_BASE_URL, AnthropicClient
from tether.agents.providers.client import DEFAULT_TIMEOUT_SECS, ClientBase
from tether.agents.providers.errors import ModelConfigError
from tether.agents.providers.gemini import DEFAULT_GEMINI_BASE_URL, GeminiClient
from tether.agents.providers.openai import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_OPENAI_BASE_URL,
    AzureOpenAIClient,
    OpenAIClient,
)
from tether.clock import Clock

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

__all__ = ["PROVIDERS", "SEAM_URL", "make_client", "provider_for"]

#: The providers a configuration may name.
PROVIDERS: Final = ("openai", "azure", "anthropic", "gemini")
SEAM_URL: Final = "TETHER_MODEL_SEAM_URL"

#: Model name prefixes and the provider whose family they are.
_FAMILIES: Final = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-"), "openai"),
    (("claude-",), "anthropic"),
    (("gemini-",), "gemini"),
)


def provider_for(model: str, provider: str | None = None) -> str:
    """The provider of ``model``: ``provider`` when given, else the model's family."""
    if provider is not None:
        if provider not in PROVIDERS:
            known = ", ".join(PROVIDERS)
            raise ModelConfigError(f"unknown provider {provider!r} (known: {known})")
        return provider
    for prefixes, family in _FAMILIES:
        if model.startswith(prefixes):
            return family
    raise ModelConfigError(
        f"cannot tell the provider of model {model!r} from its name: "
        f"name one ({{provider: openai, model: {model}}})"
    )


def make_client(
    provider: str,
    env: Mapping[str, str],
    *,
    http: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECS,
) -> ClientBase:
    """A client for ``provider`` configured from ``env``; :class:`ModelConfigError` when a key
    or endpoint it needs is not set."""
    provider_for("", provider)  # an unknown provider is refused by name
    seam = env.get(SEAM_URL)
    if seam:
        key = env.get("TETHER_MODEL_SEAM_KEY", "")
        return OpenAIClient(key, base_url=seam, http=http, clock=clock, timeout=timeout)
    if provider == "openai":
        base = env.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
        key = _needed(env, "OPENAI_API_KEY", provider)
        return OpenAIClient(key, base_url=base, http=http, clock=clock, timeout=timeout)
    if provider == "azure":
        endpoint = _needed(env, "AZURE_OPENAI_ENDPOINT", provider)
        key = _needed(env, "AZURE_OPENAI_API_KEY", provider)
        version = env.get("OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
        return AzureOpenAIClient(
            endpoint, key, api_version=version, http=http, clock=clock, timeout=timeout
        )
    if provider == "anthropic":
        base = env.get("ANTHROPIC_BASE_URL") or DEFAULT_ANTHROPIC_BASE_URL
        key = _needed(env, "ANTHROPIC_API_KEY", provider)
        return AnthropicClient(key, base_url=base, http=http, clock=clock, timeout=timeout)
    base = env.get("GEMINI_BASE_URL") or DEFAULT_GEMINI_BASE_URL
    key = env.get("GEMINI_API_KEY") or _needed(env, "GOOGLE_API_KEY", provider, "GEMINI_API_KEY")
    return GeminiClient(key, base_url=base, http=http, clock=clock, timeout=timeout)


def _needed(env: Mapping[str, str], name: str, provider: str, say: str = "") -> str:
    value = env.get(name)
    if not value:
        raise ModelConfigError(f"{say or name} is not set: calls to {provider} models need it")
    return value
