"""The models a runtime calls: their clients, a concurrency cap per model, costs, fallbacks.

One object, made by whoever owns the runtime and passed to what calls models (no global
registry). It owns one ``httpx.AsyncClient`` its clients share (or uses the one it is given).

Example::

    async with ProviderSet(parse_models(section), os.environ) as models:
        reply = await models.complete(ModelRequest("smart", messages))   # an alias ...
        reply = await models.complete(ModelRequest("gpt-4o-mini", messages))  # ... or a name
        models.cost("smart", reply)          # Cost(cost_usd=..., known=True)
        models.chain("smart")                # (smart, fast): what to try when smart fails
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import msgspec

from tether.agents.providers.client import DEFAULT_TIMEOUT_SECS, ClientBase
from tether.agents.providers.config import ModelsConfig, ModelSpec, fallback_chain
from tether.agents.providers.costs import DEFAULT_PRICES, Cost, CostTable, Price
from tether.agents.providers.resolve import make_client, provider_for
from tether.agents.providers.types import ModelReply, ModelRequest
from tether.clock import Clock

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

__all__ = ["ProviderSet"]


class ProviderSet:
    """Calls models by alias (``config``) or by bare name (resolved by family), each under its
    ``max_concurrency`` cap; ``env`` gives keys and endpoints. A configured model whose key is
    missing is refused here, at construction, not at its first call."""

    def __init__(
        self,
        config: ModelsConfig,
        env: Mapping[str, str],
        *,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECS,
        prices: Mapping[str, Price] = DEFAULT_PRICES,
    ) -> None:
        self._config = config
        self._env = dict(env)
        self._owns_http = http is None
        import httpx

        self._http = http if http is not None else httpx.AsyncClient()
        self._clock = clock
        self._timeout = timeout
        self._clients: dict[str, ClientBase] = {}
        self._limiters = {
            m.name: anyio.CapacityLimiter(m.max_concurrency)
            for m in config.models
            if m.max_concurrency is not None
        }
        overrides = {m.model: m.cost for m in config.models if m.cost is not None}
        self._costs = CostTable(prices, overrides)
        for m in config.models:
            self._client(m.provider)

    def spec(self, name: str) -> ModelSpec:
        """The configured model ``name``, or a bare model name resolved by its family."""
        spec = self._config.get(name)
        return spec if spec is not None else ModelSpec(name, provider_for(name), name)

    def limiter(self, name: str) -> anyio.CapacityLimiter | None:
        """The cap on concurrent calls of ``name`` (None: uncapped)."""
        return self._limiters.get(name)

    def chain(self, name: str) -> tuple[ModelSpec, ...]:
        """``name`` and the models it falls back to, in order (the caller decides when)."""
        return fallback_chain(self._config, name) if self._config.get(name) else (self.spec(name),)

    async def complete(self, request: ModelRequest) -> ModelReply:
        """Call the model ``request.model`` names, once, under its cap: no retries, no
        fallback (each is a step of its own for the runtime to journal)."""
        spec = self.spec(request.model)
        client = self._client(spec.provider)
        call = msgspec.structs.replace(request, model=spec.model)
        limiter = self._limiters.get(spec.name)
        if limiter is None:
            return await client.complete(call)
        async with limiter:
            return await client.complete(call)

    def cost(self, name: str, reply: ModelReply) -> Cost:
        """What ``reply`` to a call of ``name`` cost: a configured price first, then the table's
        for the model that answered, then for the model asked for."""
        spec = self.spec(name)
        if spec.cost is None:
            answered = self._costs.cost(reply.model, reply.usage)
            if answered.known:
                return answered
        return self._costs.cost(spec.model, reply.usage)

    def _client(self, provider: str) -> ClientBase:
        client = self._clients.get(provider)
        if client is None:
            client = make_client(
                provider, self._env, http=self._http, clock=self._clock, timeout=self._timeout
            )
            self._clients[provider] = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP client if this set made it."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> ProviderSet:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
