"""MCP tool calls from agents and ``mcp_tool`` nodes: the built-in tool ``tether.mcp`` that makes
them, and how their arguments are bound.

A call's arguments name the server with its settings as the workflow wrote them (``${VAR}``
references unexpanded, so no secret reaches the journal), the tool and its arguments. The tool
runs where tools run (the pool, a ``tether worker``); each distinct server is started once
there, on first use, restarted after a crash (which costs the call one attempt: the error is
retryable), and stopped with the runtime.

Example::

    caller = McpCaller(env=os.environ)
    await caller.start()              # in the task that will call aclose()
    out = await caller.call(server="files", config={"command": ["my-mcp"]},
                            tool="read_file", arguments={"path": "a.txt"})
    await caller.aclose()
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO

import anyio
import anyio.abc

from tether.agents.http_node.placeholders import lookup_in
from tether.agents.kinds.tool_schema import wire_name
from tether.agents.mcp import parse_server
from tether.agents.providers.types import ToolSpec
from tether.agents.state_inputs import bind_input
from tether.ir.types import McpToolKind, Node, Workflow
from tether.runtime.secrets import SecretSource
from tether.runtime.tools import Tool

if TYPE_CHECKING:
    from tether.agents.mcp.manager import McpManager
    from tether.agents.mcp.tools import McpResult

#: The name MCP calls run under (a worker needs it to run them).
MCP_TOOL: Final = "tether.mcp"


def mcp_ref(wf: Workflow, name: str) -> tuple[str, str] | None:
    """``(server, tool)`` when ``name`` is ``server.tool`` for one of ``wf``'s MCP servers."""
    server, dot, tool = name.partition(".")
    if dot and tool and server in wf.mcp_servers:
        return server, tool
    return None


def mcp_call_args(
    wf: Workflow, server: str, tool: str, arguments: Mapping[str, Any], node: Node
) -> dict[str, Any]:
    """The arguments of one ``tether.mcp`` call (what the journal keeps of it)."""
    args: dict[str, Any] = {
        "server": server,
        "config": wf.mcp_servers[server],
        "tool": tool,
        "arguments": dict(arguments),
    }
    if node.node_timeout_secs is not None:
        args["timeout_secs"] = node.node_timeout_secs
    return args


def mcp_node_args(wf: Workflow, node: Node, data: Mapping[str, Any]) -> dict[str, Any]:
    """An ``mcp_tool`` node's call, bound from state: each input is ``$path`` (a state value),
    a template (``{{ state.x }}``) or a literal."""
    kind = node.kind
    assert isinstance(kind, McpToolKind)
    mapping = node.input or kind.input_mapping
    arguments = {name: bind_input(source, data) for name, source in mapping.items()}
    return mcp_call_args(wf, kind.server, kind.tool, arguments, node)


class SecretsThenEnviron(Mapping[str, str]):
    """``${VAR}`` in servers' ``env`` and ``headers``: the secret source's VAR, else the
    environment variable VAR, read where the server starts."""

    def __init__(self, secrets: SecretSource | None, environ: Mapping[str, str]) -> None:
        self._lookup = lookup_in(secrets, environ)
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        value = self._lookup(name, False)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


class McpCaller:
    """Makes MCP calls: one :class:`McpManager` per distinct server (name and settings), each
    held open by a task of its own in the task group :meth:`start` opens. ``env`` fills
    servers' ``${VAR}`` (see :class:`SecretsThenEnviron`)."""

    def __init__(self, env: Mapping[str, str], errlog: TextIO | None = None) -> None:
        self._env = env
        self._errlog = errlog if errlog is not None else sys.stderr
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing = anyio.Event()
        self._managers: dict[str, McpManager] = {}
        self._ready: dict[str, anyio.Event] = {}

    def tool(self) -> Tool:
        return Tool(
            name=MCP_TOOL, fn=self.call, params=(), required=frozenset(), is_async=True,
            qualname="tether.agents.kinds.mcp_calls.McpCaller.call", accepts_kwargs=True,
            description="Call an MCP server's tool once", inline=False,
        )  # fmt: skip

    async def start(self) -> None:
        """Open the task group servers are held in (call :meth:`aclose` from this task); a
        caller closed before starts afresh (a runtime entered again)."""
        self._closing = anyio.Event()
        self._managers.clear()
        self._ready.clear()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg

    async def call(self, **args: Any) -> dict[str, Any]:
        server, tool = str(args["server"]), str(args["tool"])
        manager = await self._manager(server, args["config"])
        result = await manager.call_tool(
            server, tool, args.get("arguments") or {}, timeout=args.get("timeout_secs")
        )
        return {"output": _output(result), "facts": {"mcp_server": server, "mcp_tool": tool}}

    async def specs(self, refs: list[Mapping[str, Any]]) -> list[ToolSpec]:
        """The specs of the MCP tools an agent offers (``{"name", "server", "tool",
        "config"}`` each), from each server's cached tool list."""
        out = []
        for ref in refs:
            server, tool = str(ref["server"]), str(ref["tool"])
            manager = await self._manager(server, ref["config"])
            found = await manager.describe_tool(server, tool)
            name = wire_name(str(ref["name"]))
            description = (found.description or found.name)[:1024]
            schema = found.input_schema or {"type": "object", "properties": {}}
            out.append(ToolSpec(name, description, schema))
        return out

    async def _manager(self, server: str, config: Any) -> McpManager:
        key = json.dumps([server, config], sort_keys=True, separators=(",", ":"))
        manager = self._managers.get(key)
        if manager is None:
            if self._tg is None:
                raise RuntimeError("McpCaller.start() was not called (the runtime calls it)")
            from tether.agents.mcp.manager import McpManager  # the SDK, on first use

            manager = McpManager({server: parse_server(server, config)}, env=self._env,
                                 errlog=self._errlog)  # fmt: skip
            self._managers[key] = manager
            self._ready[key] = anyio.Event()
            self._tg.start_soon(self._hold, manager, self._ready[key])
        await self._ready[key].wait()
        return manager

    async def _hold(self, manager: McpManager, ready: anyio.Event) -> None:
        async with manager:
            ready.set()
            await self._closing.wait()

    async def aclose(self) -> None:
        """Stop every server, then return."""
        self._closing.set()
        tg, self._tg = self._tg, None
        if tg is not None:
            await tg.__aexit__(None, None, None)


def _output(result: McpResult) -> Any:
    """What an MCP tool gave: its structured answer, else its text (JSON parsed when it is)."""
    structured = result.structured
    if isinstance(structured, dict) and set(structured) == {"result"}:
        # The SDK wraps a function's non-object return as {"result": value}, its text being
        # that value alone: unwrap only then (an object really holding "result" says so).
        value = structured["result"]
        if result.text in (value, json.dumps(value), json.dumps(value, separators=(",", ":"))):
            return value
    if structured is not None:
        return structured
    text = result.text
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
