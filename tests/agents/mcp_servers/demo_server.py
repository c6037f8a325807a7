"""A small real MCP server for the MCP client's tests, built on the official SDK.

Run over stdio: ``python demo_server.py stdio``. Over streamable HTTP: ``python
demo_server.py http [PORT]`` binds 127.0.0.1 on PORT (default: a free one), prints
``listening <port>`` once the socket listens (the tests read that line instead of waiting a
fixed time), then serves ``/mcp``. With ``DEMO_TOKEN`` set, the HTTP server answers 401 to
a request without ``Authorization: Bearer <DEMO_TOKEN>``: how the tests see that headers
are sent.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import BaseModel

server: MCPServer[Any] = MCPServer("demo", log_level="WARNING")


class Sum(BaseModel):
    total: int
    terms: int


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> Sum:
    """Add two integers."""
    return Sum(total=a + b, terms=2)


@server.tool()
def refuse(reason: str) -> str:
    """Report a tool error with the reason given."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def invalid(n: int) -> int:
    """Refuse its arguments as a protocol error, as servers that validate them strictly do."""
    raise MCPError(code=INVALID_PARAMS, message=f"n must be positive, got {n}")


@server.tool()
def getenv(name: str) -> str:
    """The value of an environment variable ("" when unset)."""
    return os.environ.get(name, "")


@server.tool()
def pid() -> int:
    """The server process's id: tells a restarted server from the first one."""
    return os.getpid()


@server.tool()
def crash() -> str:
    """Die mid-call, as a server with a fatal bug does."""
    sys.stdout.flush()
    os._exit(1)


@server.tool()
def crash_once(marker: str) -> str:
    """Die mid-call the first time (leaving ``marker``), answer after: a server that a restart
    brings back."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        sys.stdout.flush()
        os._exit(1)
    return "survived"


@server.tool()
async def hang() -> str:
    """Never answer: a call to it ends at the caller's timeout."""
    await anyio.Event().wait()
    return "unreachable"


def _serve_http(port: int) -> None:
    app = server.streamable_http_app()
    token = os.environ.get("DEMO_TOKEN")
    if token:
        app.add_middleware(_RequireToken, token=token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    # Listening already: a client that connects now waits in the backlog until uvicorn runs.
    print(f"listening {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


class _RequireToken:
    """Answer 401 to any HTTP request without the expected bearer token."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and dict(scope["headers"]).get(b"authorization") != self.expected
        ):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"missing or wrong token"})
            return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        _serve_http(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    else:
        server.run("stdio")
