"""A ``jamjet`` project's ``jamjet.toml`` beside a workflow file: the ``[[mcp_servers]]`` its
nodes name and do not declare themselves come from there, as ``jamjet run`` reads them, so a
``jamjet init`` template runs unmodified. A workflow that names no such server never reads the
file (its identity, I13, cannot depend on a file it does not use).

Example (``jamjet.toml``)::

    [[mcp_servers]]
    name = "filesystem"
    command = "npx"
    args = ["-y", "@modelcontextprotocol/server-filesystem", "."]

gives ``{"filesystem": {"command": ["npx", "-y", "@modelcontextprotocol/server-filesystem",
"."]}}``, the shape of a workflow's own ``mcp_servers``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final

from tether.ir.errors import WorkflowSyntaxError
from tether.ir.types import AgentKind, McpToolKind, Workflow

PROJECT_FILE: Final = "jamjet.toml"
#: jamjet's keys for a server; ``transport`` is implied by ``command`` or ``url``.
_KEYS: Final = frozenset({"name", "command", "args", "env", "cwd", "url", "headers", "transport"})


def servers_named(wf: Workflow) -> set[str]:
    """The MCP servers ``wf``'s nodes name: ``mcp_tool`` nodes' servers, and the ``server``
    part of an agent's dotted tool names (which may also be plain dotted tool names: only a
    project's server of that name is taken)."""
    names: set[str] = set()
    for node in wf.nodes.values():
        if isinstance(node.kind, McpToolKind):
            names.add(node.kind.server)
        elif isinstance(node.kind, AgentKind):
            names |= {tool.partition(".")[0] for tool in node.kind.tools if "." in tool}
    return names


def project_mcp_servers(folder: Path) -> dict[str, Any]:
    """The MCP servers ``folder/jamjet.toml`` declares ({} without the file)."""
    path = folder / PROJECT_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise WorkflowSyntaxError(f"{path}: {exc}") from None
    entries = data.get("mcp_servers", [])
    if not isinstance(entries, list):
        raise WorkflowSyntaxError(f"{path}: mcp_servers must be [[mcp_servers]] tables")
    return dict(_server(path, i, entry) for i, entry in enumerate(entries))


def _server(path: Path, index: int, entry: Any) -> tuple[str, dict[str, Any]]:
    where = f"{path}: mcp_servers[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise WorkflowSyntaxError(f"{where}: a server needs a name")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise WorkflowSyntaxError(f"{where}: unknown key {unknown[0]!r}")
    server: dict[str, Any] = {}
    if "command" in entry:
        args = entry.get("args", [])
        if not isinstance(entry["command"], str) or not isinstance(args, list):
            raise WorkflowSyntaxError(f"{where}: command is a string and args a list")
        server["command"] = [entry["command"], *args]
        for key in ("env", "cwd"):
            if key in entry:
                server[key] = entry[key]
    elif "url" in entry:
        server["url"] = entry["url"]
        if "headers" in entry:
            server["headers"] = entry["headers"]
    else:
        raise WorkflowSyntaxError(f"{where}: give a command or a url")
    return entry["name"], server
