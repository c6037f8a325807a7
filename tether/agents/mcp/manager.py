"""The MCP servers a workflow uses, connected on first use and owned by whoever made them.

Example::

    servers = parse_servers({"files": {"command": ["python", "-m", "my_mcp_server"]}})
    async with McpManager(servers, env=os.environ) as mcp:
        tools = await mcp.list_tools("files")
        result = await mcp.call_tool("files", "read_file", {"path": "a.txt"}, timeout=30)
        print(result.text)
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Self, TextIO, TypeVar

import anyio
import anyio.abc
from mcp import Client, types
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from tether.agents.mcp.config import ServerConfig
from tether.agents.mcp.connection import ServerConnection
from tether.agents.mcp.errors import (
    McpBadArguments,
    McpBadResponse,
    McpConfigError,
    McpError,
    McpServerNotStartable,
    McpServerUnavailable,
    McpToolError,
    McpToolNotFound,
)
from tether.agents.mcp.tools import McpResult, McpTool, result_from_sdk, result_text, tool_from_sdk
from tether.agents.mcp.transport import open_client

__all__ = ["McpManager"]

T = TypeVar("T")

#: Pages of a ``tools/list`` answer read at most: a server that never stops paging is broken.
_MAX_PAGES = 100


class McpManager:
    """Connections to a set of MCP servers: started lazily, restarted after a crash, closed
    together by :meth:`aclose` (or leaving ``async with``) in the task that entered it.

    ``env`` gives the values of ``${VAR}`` in servers' ``env`` and ``headers`` (for instance
    ``os.environ`` or a secrets store); ``errlog`` receives stdio servers' stderr;
    ``connect_timeout`` bounds a server's start and handshake.

    Example::

        async with McpManager({"calc": StdioServer(command=("calc-server",))}) as mcp:
            result = await mcp.call_tool("calc", "add", {"a": 1, "b": 2}, timeout=10)
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        env: Mapping[str, str] | None = None,
        errlog: TextIO | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        self._servers = dict(servers)
        self._env: Mapping[str, str] = env if env is not None else {}
        self._errlog = errlog if errlog is not None else sys.stderr
        self._connect_timeout = connect_timeout
        self._tg: anyio.abc.TaskGroup | None = None
        self._connections: dict[str, ServerConnection] = {}
        self._tools: dict[str, tuple[McpTool, ...]] = {}
        self._closed = False

    @property
    def servers(self) -> tuple[str, ...]:
        """The names of the configured servers."""
        return tuple(self._servers)

    async def __aenter__(self) -> Self:
        if self._tg is not None or self._closed:
            raise RuntimeError("an McpManager can be entered only once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection and stop every server process, then return."""
        self._closed = True
        tg, self._tg = self._tg, None
        for connection in self._connections.values():
            connection.close()
        if tg is not None:
            await tg.__aexit__(None, None, None)

    async def list_tools(
        self, server: str, *, refresh: bool = False, timeout: float | None = None
    ) -> tuple[McpTool, ...]:
        """The server's tools, from the cache unless ``refresh`` (or never listed)."""
        self._require_open()
        if refresh or server not in self._tools:
            self._tools[server] = await self._run(
                server, lambda client: _list_all(server, client), "listing tools", timeout
            )
        return self._tools[server]

    async def call_tool(
        self, server: str, tool: str, arguments: Mapping[str, Any], *, timeout: float | None
    ) -> McpResult:
        """Call ``tool`` on ``server`` and return what it gave; ``timeout`` (seconds, None: no
        limit) covers starting the server too. Raises :class:`McpToolNotFound` (after one
        refresh of the cached list), :class:`McpToolError`, :class:`McpBadArguments`,
        :class:`McpServerUnavailable`, :class:`McpTimeout`, :class:`McpBadResponse`."""
        await self.describe_tool(server, tool, timeout=timeout)

        async def call(client: Client) -> types.CallToolResult:
            return await client.call_tool(tool, dict(arguments))

        result = await self._run(server, call, f"tool {tool!r}", timeout, tool=tool)
        if result.is_error:
            raise McpToolError(server, tool, result_text(result) or "(no text)")
        return result_from_sdk(result)

    async def _run(
        self,
        server: str,
        op: Callable[[Client], Awaitable[T]],
        what: str,
        timeout: float | None,
        *,
        tool: str | None = None,
    ) -> T:
        """Run ``op`` on the server's connection; what the SDK raised becomes one of ours."""
        try:
            return await self._connection(server).run(op, what, timeout)
        except McpError:
            raise
        except MCPError as exc:  # the server answered with a JSON-RPC error
            if tool is not None and exc.code == INVALID_PARAMS:
                raise McpBadArguments(server, tool, exc.message) from None
            raise McpBadResponse(server, what, f"{exc.message} (code {exc.code})") from None
        except Exception as exc:  # an answer the SDK could not accept (schema, shape)
            raise McpBadResponse(server, what, _problem(exc)) from exc

    async def describe_tool(
        self, server: str, tool: str, *, timeout: float | None = None
    ) -> McpTool:
        """The listed tool named ``tool``: from the cache, else after one refresh (the server
        may have gained it since it was listed); :class:`McpToolNotFound` when it is gone."""
        for refresh in (False, True):
            tools = await self.list_tools(server, refresh=refresh, timeout=timeout)
            for found in tools:
                if found.name == tool:
                    return found
        raise McpToolNotFound(server, tool, (t.name for t in tools))

    def _connection(self, server: str) -> ServerConnection:
        connection = self._connections.get(server)
        if connection is not None:
            return connection
        if server not in self._servers:
            known = ", ".join(sorted(self._servers)) or "none"
            raise McpConfigError(f"no MCP server {server!r}; configured: {known}")
        connection = ServerConnection(
            server,
            self._opener(server),
            self._require_open().start_soon,
            lambda exc: _describe(server, exc),
            self._connect_timeout,
        )
        self._connections[server] = connection
        return connection

    def _require_open(self) -> anyio.abc.TaskGroup:
        if self._closed:
            raise RuntimeError("this McpManager is closed")
        if self._tg is None:
            raise RuntimeError("use the McpManager inside `async with` (it was not entered)")
        return self._tg

    def _opener(
        self, server: str
    ) -> Callable[[Callable[[], None]], AbstractAsyncContextManager[Client]]:
        config = self._servers[server]
        return lambda on_closed: open_client(server, config, self._env, self._errlog, on_closed)


async def _list_all(server: str, client: Client) -> tuple[McpTool, ...]:
    tools: list[McpTool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += [tool_from_sdk(server, tool) for tool in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return tuple(tools)
    raise McpBadResponse(server, "listing tools", f"more than {_MAX_PAGES} pages")


def _describe(server: str, exc: BaseException) -> McpError:
    """The error callers see for what ended a session (or kept it from starting)."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, McpError):
            return leaf  # ours already, e.g. a ${VAR} with no value
    for leaf in leaves:
        if isinstance(leaf, FileNotFoundError | PermissionError | NotADirectoryError):
            return McpServerNotStartable(server, _problem(leaf))
    return McpServerUnavailable(server, "; ".join(_problem(leaf) for leaf in leaves))


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _problem(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
