"""MCP tools and results as plain frozen structs: what the rest of Tether sees of the SDK.

:class:`McpTool` is one listed tool, :class:`McpResult` one call's JSON-able answer, and
:func:`tool_spec` turns a tool into the provider-neutral :class:`ToolSpec` an agent sends a
model (``server.tool``, a description, the input JSON schema). The SDK's pydantic types stay
inside :mod:`tether.agents.mcp`, so a journal never holds one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from mcp import types

__all__ = ["McpResult", "McpTool", "ToolSpec", "result_from_sdk", "tool_from_sdk", "tool_spec"]


class McpTool(msgspec.Struct, frozen=True, kw_only=True):
    """One tool a server lists.

    Example::

        tool = (await manager.list_tools("files"))[0]
        tool.qualified_name, tool.input_schema["properties"]     # 'files.read_file', {...}
    """

    server: str
    name: str
    description: str = ""
    #: JSON schema of the arguments (an object schema).
    input_schema: dict[str, Any] = {}
    #: JSON schema of ``McpResult.structured``, when the tool declares one.
    output_schema: dict[str, Any] | None = None

    @property
    def qualified_name(self) -> str:
        """``server.tool``: how workflows and agents address the tool."""
        return f"{self.server}.{self.name}"


class McpResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a tool call returned, JSON-able as it is (``msgspec.to_builtins(result)``).

    Example::

        result = await manager.call_tool("calc", "add", {"a": 1, "b": 2}, timeout=10)
        result.text, result.structured          # ('{"total": 3}', {'total': 3})
    """

    #: The text blocks of the content, joined by newlines ("" when there are none).
    text: str = ""
    #: The structured content, when the tool gave one.
    structured: Any = None
    #: Every content block as the protocol's JSON (text, image, audio, resource, link).
    content: tuple[dict[str, Any], ...] = ()


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A tool as an agent offers it to a model, independent of any provider's wire format.

    Example::

        spec = tool_spec(tool)
        spec.name, spec.parameters          # 'files.read_file', {'type': 'object', ...}
    """

    name: str
    description: str
    #: JSON schema of the arguments.
    parameters: dict[str, Any]


def tool_spec(tool: McpTool) -> ToolSpec:
    """The provider-neutral spec of an MCP tool, named ``server.tool``.

    Example::

        specs = [tool_spec(t) for t in await manager.list_tools("files")]
    """
    return ToolSpec(
        name=tool.qualified_name, description=tool.description, parameters=tool.input_schema
    )


def tool_from_sdk(server: str, tool: types.Tool) -> McpTool:
    """Our struct for one entry of an SDK ``tools/list`` result."""
    return McpTool(
        server=server,
        name=tool.name,
        description=tool.description or tool.title or "",
        input_schema=dict(tool.input_schema),
        output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
    )


def result_from_sdk(result: types.CallToolResult) -> McpResult:
    """Our struct for an SDK ``tools/call`` result (the caller has checked ``is_error``)."""
    blocks = tuple(
        block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content
    )
    return McpResult(
        text=result_text(result),
        structured=result.structured_content,
        content=blocks,
    )


def result_text(result: types.CallToolResult) -> str:
    """The text blocks of a result, joined by newlines."""
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
