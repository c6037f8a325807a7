"""What every model client is: ``complete(request) -> reply``, over an ``httpx.AsyncClient``.

A client is an object the caller holds and passes on (no registry). It uses the
``httpx.AsyncClient`` it is given (tests give one with a transport of their own; a provider
set shares one among its clients) or makes one and closes it in :meth:`ClientBase.aclose`.

Example::

    async with OpenAIClient(api_key=key) as client:
        reply = await client.complete(request)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol

from tether.agents.providers.types import ModelReply, ModelRequest
from tether.clock import Clock, SystemClock

if TYPE_CHECKING:
    import httpx  # loaded by the first call that sends: an engine start needs none

__all__ = ["DEFAULT_TIMEOUT_SECS", "ClientBase", "ModelClient"]

#: How long one call may take: long answers from large models run to minutes.
DEFAULT_TIMEOUT_SECS: Final = 300.0


class ModelClient(Protocol):
    """Anything that answers a :class:`ModelRequest`. ``provider`` is its ``gen_ai.system``."""

    @property
    def provider(self) -> str: ...

    async def complete(self, request: ModelRequest) -> ModelReply: ...

    async def aclose(self) -> None: ...


class ClientBase(ABC):
    """The HTTP client, clock and timeout a provider's client calls with."""

    provider: str = ""
    #: Where the provider answers when no ``base_url`` is given.
    default_base_url: str = ""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECS,
    ) -> None:
        self._key = api_key
        self._base_url = (base_url if base_url is not None else self.default_base_url).rstrip("/")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._owns_http = http is None
        import httpx

        self._http = http if http is not None else httpx.AsyncClient()
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._timeout = timeout

    @abstractmethod
    async def complete(self, request: ModelRequest) -> ModelReply:
        """Call the model once (no retries: the runtime owns them) and return its reply."""

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it; one it was given stays open."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> ClientBase:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
