"""How a workflow names its MCP servers: a command run over stdio, or a streamable HTTP URL.

A workflow declares them as a plain mapping (YAML or JSON)::

    mcp_servers:
      files:  {command: [python, -m, my_mcp_server], env: {ROOT: /data}, cwd: /srv}
      remote: {url: "http://host/mcp", headers: {Authorization: "Bearer ${REMOTE_TOKEN}"}}

:func:`parse_servers` turns that into frozen structs, or raises :class:`McpConfigError` naming
the server and the field. Header and ``env`` values may hold ``${VAR}``: the structs keep the
reference, and :func:`expand` fills it in from an environment mapping only when a server is
started or connected, so a secret is never in a workflow's config, a journal or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

from tether.agents.mcp.errors import McpConfigError

__all__ = ["HttpServer", "ServerConfig", "StdioServer", "expand", "parse_server", "parse_servers"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_REF = re.compile(r"\$\{[^}]*\}?")
_STDIO_FIELDS = frozenset({"command", "env", "cwd"})
_HTTP_FIELDS = frozenset({"url", "headers"})


class StdioServer(msgspec.Struct, frozen=True, kw_only=True):
    """A server run as a child process speaking MCP on its stdin and stdout.

    Example::

        StdioServer(command=("python", "-m", "my_mcp_server"), env={"ROOT": "/data"})
    """

    #: The program and its arguments.
    command: tuple[str, ...]
    #: Set in the child's environment (over a minimal inherited one); values may use ``${VAR}``.
    env: dict[str, str] = {}
    cwd: str | None = None

    def __repr__(self) -> str:  # env values may be secrets: names only
        return f"StdioServer(command={self.command!r}, env={sorted(self.env)!r}, cwd={self.cwd!r})"


class HttpServer(msgspec.Struct, frozen=True, kw_only=True):
    """A server reached over MCP's streamable HTTP transport.

    Example::

        HttpServer(url="http://host/mcp", headers={"Authorization": "Bearer ${TOKEN}"})
    """

    url: str
    #: Sent with every request; values may use ``${VAR}``.
    headers: dict[str, str] = {}

    def __repr__(self) -> str:  # header values may be secrets: names only
        return f"HttpServer(url={self.url!r}, headers={sorted(self.headers)!r})"


ServerConfig = StdioServer | HttpServer


def parse_servers(raw: object) -> dict[str, ServerConfig]:
    """Parse a workflow's ``mcp_servers`` mapping (server name to settings).

    Example::

        servers = parse_servers({"files": {"command": ["python", "-m", "my_server"]}})
        servers["files"].command        # ('python', '-m', 'my_server')
    """
    if not isinstance(raw, Mapping):
        raise McpConfigError(
            f"mcp_servers must be a mapping of server name to settings, not {_kind(raw)}"
        )
    return {name: parse_server(name, spec) for name, spec in raw.items()}


def parse_server(name: object, raw: object) -> ServerConfig:
    """Parse one server's settings: ``command`` (stdio) or ``url`` (streamable HTTP)."""
    name = _server_name(name)
    if not isinstance(raw, Mapping):
        raise McpConfigError(f"MCP server {name!r}: settings must be a mapping, not {_kind(raw)}")
    keys = set(raw)
    if "command" in keys and "url" in keys:
        raise McpConfigError(f"MCP server {name!r}: give either 'command' or 'url', not both")
    if "command" in keys:
        _no_unknown(name, keys, _STDIO_FIELDS)
        return StdioServer(
            command=_command(name, raw["command"]),
            env=_strings(name, "env", raw.get("env", {})),
            cwd=_optional_text(name, "cwd", raw.get("cwd")),
        )
    if "url" in keys:
        _no_unknown(name, keys, _HTTP_FIELDS)
        return HttpServer(
            url=_url(name, raw["url"]), headers=_strings(name, "headers", raw.get("headers", {}))
        )
    raise McpConfigError(
        f"MCP server {name!r}: needs 'command' (a list, run over stdio) or 'url' (streamable HTTP)"
    )


def expand(server: str, field: str, value: str, env: Mapping[str, str]) -> str:
    """``value`` with each ``${VAR}`` replaced by ``env[VAR]``; a missing one is an error that
    names the server, the field and the variable, never a value.

    Example::

        expand("remote", "headers.Authorization", "Bearer ${T}", {"T": "abc"})  # 'Bearer abc'
    """

    def one(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in env:
            raise McpConfigError(
                f"MCP server {server!r}: {field} refers to ${{{var}}}, which has no value"
            )
        return env[var]

    return _VAR.sub(one, value)


def _server_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise McpConfigError(f"MCP server names must be non-empty strings, not {name!r}")
    if "." in name:
        # Tools are addressed as ``server.tool``: a dot in the server's name would be ambiguous.
        raise McpConfigError(f"MCP server {name!r}: a server name may not contain '.'")
    return name


def _no_unknown(name: str, keys: set[object], allowed: frozenset[str]) -> None:
    unknown = sorted(str(k) for k in keys - allowed)
    if unknown:
        raise McpConfigError(
            f"MCP server {name!r}: unknown field(s) {', '.join(unknown)}; "
            f"expected {', '.join(sorted(allowed))}"
        )


def _command(name: str, raw: object) -> tuple[str, ...]:
    if (
        not isinstance(raw, list | tuple)
        or not raw
        or not all(isinstance(part, str) and part for part in raw)
    ):
        raise McpConfigError(
            f"MCP server {name!r}: command must be a non-empty list of strings, "
            f"e.g. [python, -m, my_mcp_server]"
        )
    return tuple(raw)


def _strings(name: str, field: str, raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise McpConfigError(f"MCP server {name!r}: {field} must be a mapping of names to strings")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise McpConfigError(
                f"MCP server {name!r}: {field}.{key} must be a string (names and values alike)"
            )
        _check_references(name, f"{field}.{key}", value)
        out[key] = value
    return out


def _check_references(name: str, field: str, value: str) -> None:
    """Refuse a malformed ``${...}`` when the workflow is read, not when the server starts."""
    for match in _ANY_REF.finditer(value):
        if not _VAR.fullmatch(match.group(0)):
            raise McpConfigError(
                f"MCP server {name!r}: {field} has a malformed reference; write ${{NAME}} with "
                f"letters, digits and underscores"
            )


def _optional_text(name: str, field: str, raw: object) -> str | None:
    if raw is None or (isinstance(raw, str) and raw):
        return raw
    raise McpConfigError(f"MCP server {name!r}: {field} must be a non-empty string")


def _url(name: str, raw: object) -> str:
    if not isinstance(raw, str) or not raw.startswith(("http://", "https://")):
        raise McpConfigError(f"MCP server {name!r}: url must be an http:// or https:// URL")
    return raw


def _kind(value: object) -> str:
    return f"a {type(value).__name__}"
