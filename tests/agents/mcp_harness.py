"""What the MCP client's tests share: the demo server, run over stdio or HTTP, and a look at
this process's children."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tether.agents.mcp import (
    McpBadArguments,
    McpManager,
    McpToolError,
    McpToolNotFound,
    StdioServer,
    tool_spec,
)

DEMO = Path(__file__).resolve().parent / "mcp_servers" / "demo_server.py"
DEMO_TOOLS = ["add", "crash", "crash_once", "echo", "getenv", "hang", "invalid", "pid", "refuse"]


def stdio_demo(env: dict[str, str] | None = None) -> StdioServer:
    return StdioServer(command=(sys.executable, str(DEMO), "stdio"), env=env or {})


@contextmanager
def http_demo(token: str, port: int = 0) -> Iterator[str]:
    """Run the demo server over streamable HTTP (requiring ``token``) on ``port`` (0: a free
    one); yield its URL."""
    proc = subprocess.Popen(
        [sys.executable, str(DEMO), "http", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DEMO_TOKEN": token},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the socket listens once this line is out
        assert line.startswith("listening "), f"demo server did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        proc.kill()
        proc.wait()


def children() -> set[int]:
    """Ids of this process's live (or unreaped) child processes."""
    mine = str(os.getpid())
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # Fields after the command (which may hold spaces) start after its closing ')'.
        if stat[stat.rindex(")") + 2 :].split()[1] == mine:
            found.add(int(entry.name))
    return found


async def check_calls(mcp: McpManager, server: str) -> None:
    """The same checks over either transport: list, call, a tool error, bad arguments, an
    unknown tool."""
    tools = await mcp.list_tools(server)
    assert sorted(t.name for t in tools) == DEMO_TOOLS
    add = next(t for t in tools if t.name == "add")
    assert add.description == "Add two integers."
    assert add.input_schema["required"] == ["a", "b"]
    assert tool_spec(add).name == f"{server}.add"

    result = await mcp.call_tool(server, "add", {"a": 2, "b": 3}, timeout=30)
    assert result.structured == {"total": 5, "terms": 2}
    assert '"total": 5' in result.text
    assert result.content[0]["type"] == "text"

    with pytest.raises(McpToolError) as refused:
        await mcp.call_tool(server, "refuse", {"reason": "read-only disk"}, timeout=30)
    assert "refused: read-only disk" in refused.value.text
    assert not refused.value.retryable

    with pytest.raises(McpBadArguments) as invalid:
        await mcp.call_tool(server, "invalid", {"n": -1}, timeout=30)
    assert "n must be positive, got -1" in str(invalid.value)

    with pytest.raises(McpToolNotFound) as unknown:
        await mcp.call_tool(server, "read_file", {}, timeout=30)
    assert str(unknown.value) == (
        f"MCP server {server!r} has no tool 'read_file'; it has: {', '.join(DEMO_TOOLS)}"
    )
