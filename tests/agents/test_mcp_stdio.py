"""The MCP client against a real server (the SDK's) run as a child process over stdio."""

from __future__ import annotations

import sys
import time

import anyio
import pytest
from mcp_harness import check_calls, children, stdio_demo

from tether.agents.mcp import (
    McpConfigError,
    McpManager,
    McpServerNotStartable,
    McpServerUnavailable,
    McpTimeout,
    StdioServer,
)
from tether.agents.mcp.connection import _CLOSE_GRACE
from tether.errors import NonRetryableError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_list_call_tool_error_bad_arguments_unknown_tool() -> None:
    async with McpManager({"demo": stdio_demo()}) as mcp:
        await check_calls(mcp, "demo")


async def test_a_server_that_crashes_mid_call_is_retryable_and_restarted() -> None:
    async with McpManager({"demo": stdio_demo()}) as mcp:
        first = (await mcp.call_tool("demo", "pid", {}, timeout=30)).structured["result"]
        with pytest.raises(McpServerUnavailable) as crashed:
            await mcp.call_tool("demo", "crash", {}, timeout=30)
        assert crashed.value.retryable and not isinstance(crashed.value, NonRetryableError)
        assert "MCP server 'demo' is unavailable" in str(crashed.value)
        second = (await mcp.call_tool("demo", "pid", {}, timeout=30)).structured["result"]
        assert second != first
        assert first not in children()  # the crashed one was reaped, not left a zombie


async def test_a_call_past_its_timeout_fails_and_the_server_goes_on() -> None:
    async with McpManager({"demo": stdio_demo()}) as mcp:
        first = (await mcp.call_tool("demo", "pid", {}, timeout=30)).structured["result"]
        with pytest.raises(McpTimeout) as late:
            await mcp.call_tool("demo", "hang", {}, timeout=0.2)
        assert str(late.value) == "MCP server 'demo': tool 'hang' timed out after 0.2s"
        assert late.value.retryable
        again = (await mcp.call_tool("demo", "pid", {}, timeout=30)).structured["result"]
        assert again == first  # the same server: a slow call is no reason to restart it


async def test_calls_run_side_by_side_on_one_server() -> None:
    async with McpManager({"demo": stdio_demo()}) as mcp:
        texts: list[str] = []

        async def echo(i: int) -> None:
            texts.append((await mcp.call_tool("demo", "echo", {"text": f"t{i}"}, timeout=30)).text)

        async with anyio.create_task_group() as tg:
            tg.start_soon(_hang, mcp, "demo", [])  # a call that never ends holds up none
            async with anyio.create_task_group() as echoes:
                for i in range(5):
                    echoes.start_soon(echo, i)
            tg.cancel_scope.cancel()
        assert sorted(texts) == [f"t{i}" for i in range(5)]


async def test_a_command_that_does_not_exist_is_a_clear_error() -> None:
    server = StdioServer(command=("/nonexistent/mcp-server", "--flag"))
    async with McpManager({"missing": server}) as mcp:
        with pytest.raises(McpServerNotStartable) as caught:
            await mcp.call_tool("missing", "read_file", {}, timeout=30)
    assert str(caught.value).startswith("MCP server 'missing' cannot be started: FileNotFound")
    assert "/nonexistent/mcp-server" in str(caught.value)
    assert isinstance(caught.value, NonRetryableError)


async def test_a_server_that_exits_at_once_is_unavailable() -> None:
    server = StdioServer(command=(sys.executable, "-c", "raise SystemExit(3)"))
    async with McpManager({"quits": server}, connect_timeout=30) as mcp:
        with pytest.raises(McpServerUnavailable) as caught:
            await mcp.list_tools("quits")
    assert str(caught.value).startswith("MCP server 'quits' is unavailable: ")


async def test_an_unknown_server_and_a_missing_variable_are_config_errors() -> None:
    server = StdioServer(command=(sys.executable, "-c", "pass"), env={"KEY": "${DEMO_KEY}"})
    async with McpManager({"demo": server}, env={}) as mcp:
        with pytest.raises(McpConfigError, match="no MCP server 'other'; configured: demo"):
            await mcp.list_tools("other")
        with pytest.raises(McpConfigError, match=r"env.KEY refers to \$\{DEMO_KEY\}"):
            await mcp.list_tools("demo")


async def test_environment_references_are_filled_in_for_the_server() -> None:
    server = stdio_demo(env={"API_KEY": "key-${DEMO_KEY}"})
    async with McpManager({"demo": server}, env={"DEMO_KEY": "v1"}) as mcp:
        got = await mcp.call_tool("demo", "getenv", {"name": "API_KEY"}, timeout=30)
    assert got.text == "key-v1"


async def test_aclose_leaves_no_child_process_behind() -> None:
    before = children()
    ended: list[McpServerUnavailable] = []
    servers = {"a": stdio_demo(), "b": stdio_demo()}
    async with anyio.create_task_group() as tg, McpManager(servers) as mcp:
        pids = {
            (await mcp.call_tool(name, "pid", {}, timeout=30)).structured["result"]
            for name in servers
        }
        assert pids <= children()
        tg.start_soon(_hang, mcp, "a", ended)
        # Answered after the hanging call was sent (one ordered pipe): it is in flight.
        await mcp.call_tool("a", "echo", {"text": "x"}, timeout=30)
        closing = time.monotonic()
    # Leaving the manager closed it (with a call in flight), then the task group ended.
    # The call in flight was stopped, not waited out to the close's 5s grace.
    assert time.monotonic() - closing < _CLOSE_GRACE / 2
    assert children() == before
    assert [str(e) for e in ended] == ["MCP server 'a' is unavailable: the MCP manager was closed"]
    with pytest.raises(RuntimeError, match="this McpManager is closed"):
        await mcp.list_tools("a")


async def test_a_manager_not_entered_says_so() -> None:
    with pytest.raises(RuntimeError, match="inside `async with`"):
        await McpManager({"demo": stdio_demo()}).list_tools("demo")


async def _hang(mcp: McpManager, server: str, ended: list[McpServerUnavailable]) -> None:
    """Call the tool that never answers; note how the call ended."""
    try:
        await mcp.call_tool(server, "hang", {}, timeout=None)
    except McpServerUnavailable as exc:
        ended.append(exc)
