"""Opening an SDK client for one server: a child process over stdio, or streamable HTTP.

Secrets meet the SDK here and nowhere else: ``${VAR}`` references in a stdio server's
``env`` and an HTTP server's ``headers`` are filled in from the environment mapping the
manager was given, just before the process starts or the HTTP client is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TextIO

import anyio
import httpx2
from mcp import Client, StdioServerParameters, stdio_client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.message import SessionMessage

from tether.agents.mcp.config import HttpServer, ServerConfig, StdioServer, expand
from tether.agents.mcp.errors import McpAccessDenied

__all__ = ["CLIENT_INFO", "open_client"]

CLIENT_INFO = types.Implementation(name="tether", version="0.1.0")

#: Connect, write and pool limits of an HTTP request; reads may wait as long as a call does,
#: which the caller's timeout bounds.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=None)


@asynccontextmanager
async def open_client(
    name: str,
    config: ServerConfig,
    env: Mapping[str, str],
    errlog: TextIO,
    on_closed: Callable[[], None],
) -> AsyncIterator[Client]:
    """An entered SDK client for ``config`` (the handshake done); ``on_closed`` is called
    when the server's side of the connection ends (a stdio server exited), so the next call
    can start a new one at once instead of finding out by failing."""
    async with AsyncExitStack() as stack:
        if isinstance(config, StdioServer):
            params = StdioServerParameters(
                command=config.command[0],
                args=list(config.command[1:]),
                env={k: expand(name, f"env.{k}", v, env) for k, v in config.env.items()},
                cwd=config.cwd,
            )
            transport: Any = _Watched(stdio_client(params, errlog=errlog), on_closed)
        else:
            transport = streamable_http_client(
                config.url, http_client=await _http(stack, name, config, env)
            )
        # The SDK's response cache is off: the manager keeps the tool list and says when to
        # refresh it.
        client = Client(transport, cache=None, client_info=CLIENT_INFO)
        yield await stack.enter_async_context(client)


async def _http(
    stack: AsyncExitStack, name: str, config: HttpServer, env: Mapping[str, str]
) -> httpx2.AsyncClient:
    headers = {k: expand(name, f"headers.{k}", v, env) for k, v in config.headers.items()}

    async def refused(response: httpx2.Response) -> None:
        # The SDK reports any 4xx as an unspecific internal error; a wrong token deserves
        # its own, non-retryable, error.
        if response.status_code in (401, 403):
            raise McpAccessDenied(name, response.status_code)

    client = httpx2.AsyncClient(
        headers=headers, timeout=_HTTP_TIMEOUT, event_hooks={"response": [refused]}
    )
    return await stack.enter_async_context(client)


class _Watched:
    """A stdio transport whose read stream reports its end (the server exited)."""

    def __init__(self, inner: Any, on_closed: Callable[[], None]) -> None:
        self._inner = inner
        self._on_closed = on_closed

    async def __aenter__(self) -> tuple[ReadStream[SessionMessage | Exception], Any]:
        read, write = await self._inner.__aenter__()
        return _WatchedRead(read, self._on_closed), write

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        result: bool | None = await self._inner.__aexit__(exc_type, exc, tb)
        return result


class _WatchedRead:
    """Passes every message through; calls ``on_closed`` when the stream ends."""

    def __init__(
        self, inner: ReadStream[SessionMessage | Exception], on_closed: Callable[[], None]
    ) -> None:
        self._inner = inner
        self._on_closed = on_closed

    @property
    def last_context(self) -> Any:  # the SDK reads the sender's context off the stream
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except Exception:  # end of stream, closed or broken: the server is gone
            self._on_closed()
            raise

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self._inner.__anext__()
        except (StopAsyncIteration, anyio.BrokenResourceError):
            self._on_closed()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None
