"""MCP server settings: parsing a workflow's ``mcp_servers``, ``${VAR}``, tool specs."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tether.agents.mcp import (
    HttpServer,
    McpConfigError,
    McpResult,
    McpTool,
    McpToolNotFound,
    StdioServer,
    ToolSpec,
    expand,
    parse_servers,
    tool_spec,
)
from tether.agents.mcp.errors import McpServerUnavailable
from tether.errors import NonRetryableError


def test_both_kinds_parse_into_frozen_structs() -> None:
    servers = parse_servers(
        {
            "files": {"command": ["python", "-m", "srv"], "env": {"ROOT": "/d"}, "cwd": "/tmp"},
            "remote": {"url": "http://h/mcp", "headers": {"Authorization": "Bearer ${T}"}},
        }
    )
    assert servers["files"] == StdioServer(
        command=("python", "-m", "srv"), env={"ROOT": "/d"}, cwd="/tmp"
    )
    assert servers["remote"] == HttpServer(
        url="http://h/mcp", headers={"Authorization": "Bearer ${T}"}
    )
    with pytest.raises(AttributeError):
        servers["files"].cwd = "/elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ([1], "mcp_servers must be a mapping"),
        ({"a.b": {"command": ["x"]}}, "'a.b': a server name may not contain '.'"),
        ({"files": ["x"]}, "'files': settings must be a mapping"),
        ({"files": {}}, "'files': needs 'command'"),
        ({"files": {"command": "python -m srv"}}, "'files': command must be a non-empty list"),
        ({"files": {"command": []}}, "'files': command must be a non-empty list"),
        ({"files": {"command": ["x"], "url": "http://h"}}, "'files': give either"),
        ({"files": {"command": ["x"], "headers": {}}}, "'files': unknown field(s) headers"),
        ({"files": {"command": ["x"], "env": {"A": 1}}}, "'files': env.A must be a string"),
        ({"files": {"command": ["x"], "cwd": ""}}, "'files': cwd must be a non-empty string"),
        ({"remote": {"url": "ftp://h"}}, "'remote': url must be an http:// or https:// URL"),
        ({"remote": {"url": "http://h", "headers": ["a"]}}, "'remote': headers must be a mapping"),
        ({"remote": {"url": "http://h", "headers": {"X": "${A B}"}}}, "headers.X has a malformed"),
        ({"remote": {"url": "http://h", "headers": {"X": "${A"}}}, "headers.X has a malformed"),
    ],
)
def test_bad_settings_name_the_server_and_the_field(raw: Any, says: str) -> None:
    with pytest.raises(McpConfigError) as caught:
        parse_servers(raw)
    assert says in str(caught.value)
    assert isinstance(caught.value, NonRetryableError)


def test_references_are_filled_in_from_the_given_environment_only() -> None:
    env = {"TOKEN": "s3cret", "HOST": "h"}
    assert expand("remote", "headers.A", "Bearer ${TOKEN} @${HOST}", env) == "Bearer s3cret @h"
    assert expand("remote", "headers.A", "cost: $5 ${HOST}", env) == "cost: $5 h"
    with pytest.raises(McpConfigError) as caught:
        expand("remote", "headers.Authorization", "Bearer ${MISSING}", env)
    assert str(caught.value) == (
        "MCP server 'remote': headers.Authorization refers to ${MISSING}, which has no value"
    )


def test_a_config_shows_no_header_or_env_value() -> None:
    servers = parse_servers(
        {
            "remote": {"url": "http://h/mcp", "headers": {"Authorization": "Bearer literal-key"}},
            "files": {"command": ["srv"], "env": {"API_KEY": "literal-key"}},
        }
    )
    for config in servers.values():
        assert "literal-key" not in repr(config)
    assert "Authorization" in repr(servers["remote"])


def test_a_tool_becomes_a_provider_neutral_spec() -> None:
    schema = {"type": "object", "properties": {"path": {"type": "string"}}}
    tool = McpTool(server="files", name="read_file", description="Read a file", input_schema=schema)
    spec = tool_spec(tool)
    assert spec == ToolSpec(name="files.read_file", description="Read a file", parameters=schema)
    assert msgspec.to_builtins(spec) == {
        "name": "files.read_file",
        "description": "Read a file",
        "parameters": schema,
    }


def test_results_are_json_as_they_are() -> None:
    result = McpResult(text="3", structured={"total": 3}, content=({"type": "text", "text": "3"},))
    assert msgspec.json.decode(msgspec.json.encode(result)) == {
        "text": "3",
        "structured": {"total": 3},
        "content": [{"type": "text", "text": "3"}],
    }


def test_errors_say_whether_the_runtime_retries() -> None:
    unavailable = McpServerUnavailable("files", "the server exited")
    missing = McpToolNotFound("files", "nope", ["b", "a"])
    assert unavailable.retryable and not isinstance(unavailable, NonRetryableError)
    assert not missing.retryable and isinstance(missing, NonRetryableError)
    assert str(missing) == "MCP server 'files' has no tool 'nope'; it has: a, b"
