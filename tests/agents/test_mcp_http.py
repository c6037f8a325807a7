"""The MCP client against a real server (the SDK's) over streamable HTTP, run with uvicorn in
a child process on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from mcp_harness import check_calls, http_demo

from tether.agents.mcp import (
    HttpServer,
    McpAccessDenied,
    McpManager,
    McpServerUnavailable,
    McpTimeout,
)
from tether.errors import NonRetryableError

pytestmark = pytest.mark.anyio

TOKEN = "demo-token-0123"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with http_demo(TOKEN) as url:
        yield url


def remote(url: str) -> HttpServer:
    return HttpServer(url=url, headers={"Authorization": "Bearer ${DEMO_TOKEN}"})


async def test_list_call_tool_error_bad_arguments_unknown_tool(url: str) -> None:
    async with McpManager({"remote": remote(url)}, env={"DEMO_TOKEN": TOKEN}) as mcp:
        await check_calls(mcp, "remote")


async def test_a_call_past_its_timeout_fails_and_the_next_one_works(url: str) -> None:
    async with McpManager({"remote": remote(url)}, env={"DEMO_TOKEN": TOKEN}) as mcp:
        with pytest.raises(McpTimeout):
            await mcp.call_tool("remote", "hang", {}, timeout=0.2)
        echoed = await mcp.call_tool("remote", "echo", {"text": "still here"}, timeout=30)
    assert echoed.text == "still here"


async def test_a_wrong_token_is_refused_access_and_not_retried(url: str) -> None:
    async with McpManager({"remote": remote(url)}, env={"DEMO_TOKEN": "wrong-value"}) as mcp:
        with pytest.raises(McpAccessDenied) as caught:
            await mcp.list_tools("remote")
    assert str(caught.value) == (
        "MCP server 'remote' refused access (HTTP 401): check its headers' values"
    )
    assert isinstance(caught.value, NonRetryableError)
    assert "wrong-value" not in str(caught.value)


async def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        dead = HttpServer(url=f"http://127.0.0.1:{bound.getsockname()[1]}/mcp")
        async with McpManager({"gone": dead}) as mcp:
            with pytest.raises(McpServerUnavailable) as caught:
                await mcp.call_tool("gone", "echo", {"text": "x"}, timeout=30)
    assert str(caught.value).startswith("MCP server 'gone' is unavailable: ConnectError")
    assert caught.value.retryable


async def test_a_server_that_stops_is_retryable_and_reconnected_when_back() -> None:
    with ExitStack() as first:
        url = first.enter_context(http_demo(TOKEN))
        port = int(url.split(":")[2].split("/")[0])
        async with McpManager({"remote": remote(url)}, env={"DEMO_TOKEN": TOKEN}) as mcp:
            await mcp.call_tool("remote", "echo", {"text": "x"}, timeout=30)
            first.close()  # the server process is killed
            with pytest.raises(McpServerUnavailable) as caught:
                await mcp.call_tool("remote", "echo", {"text": "x"}, timeout=30)
            assert caught.value.retryable
            with http_demo(TOKEN, port):  # back at the same address
                again = await mcp.call_tool("remote", "echo", {"text": "back"}, timeout=30)
    assert again.text == "back"
