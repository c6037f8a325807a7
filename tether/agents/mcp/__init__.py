"""An MCP client: a workflow's MCP servers as tools an agent or an ``mcp_tool`` node can call.

:func:`parse_servers` reads a workflow's ``mcp_servers``; :class:`McpManager` connects to them
on first use through the official ``mcp`` SDK (a child process over stdio, or streamable
HTTP), caches their tool lists and calls tools; :func:`tool_spec` turns a tool into the
provider-neutral :class:`ToolSpec` a model is offered. Errors say what the runtime does with
them (:mod:`tether.agents.mcp.errors`): retry on :class:`McpServerUnavailable` and
:class:`McpTimeout`, fail at once on the rest.

Example::

    servers = parse_servers({"files": {"command": ["python", "-m", "my_mcp_server"]}})
    async with McpManager(servers, env=os.environ) as mcp:
        specs = [tool_spec(t) for t in await mcp.list_tools("files")]
        result = await mcp.call_tool("files", "read_file", {"path": "a.txt"}, timeout=30)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from tether.agents.mcp.config import (
    HttpServer,
    ServerConfig,
    StdioServer,
    expand,
    parse_server,
    parse_servers,
)
from tether.agents.mcp.errors import (
    McpAccessDenied,
    McpBadArguments,
    McpBadResponse,
    McpConfigError,
    McpError,
    McpServerNotStartable,
    McpServerUnavailable,
    McpTimeout,
    McpToolError,
    McpToolNotFound,
)

if TYPE_CHECKING:
    from tether.agents.mcp.manager import McpManager
    from tether.agents.mcp.tools import McpResult, McpTool, ToolSpec, tool_spec

#: Names whose modules import the ``mcp`` SDK (about a second and a half of imports on a loaded
#: machine), loaded on first use: an engine whose workflows call no MCP server, and every
#: engine start before recovery, never pays for it.
_LAZY: Final = {
    "McpManager": "tether.agents.mcp.manager",
    "McpResult": "tether.agents.mcp.tools",
    "McpTool": "tether.agents.mcp.tools",
    "ToolSpec": "tether.agents.mcp.tools",
    "tool_spec": "tether.agents.mcp.tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "HttpServer",
    "McpAccessDenied",
    "McpBadArguments",
    "McpBadResponse",
    "McpConfigError",
    "McpError",
    "McpManager",
    "McpResult",
    "McpServerNotStartable",
    "McpServerUnavailable",
    "McpTimeout",
    "McpTool",
    "McpToolError",
    "McpToolNotFound",
    "ServerConfig",
    "StdioServer",
    "ToolSpec",
    "expand",
    "parse_server",
    "parse_servers",
    "tool_spec",
]
