"""What a model is told about a ``@tool``: its name on the wire and a JSON schema of its
arguments, from the function's signature.

Providers accept tool names of ``[a-zA-Z0-9_-]`` only, so a dotted name (``search.web``, an
MCP server's ``files.read_file``) goes on the wire with ``__`` for each dot and is mapped back
when the model calls it.

Example::

    @tool
    async def weather(city: str, days: int = 1) -> dict: ...

    tool_spec(weather).parameters
    # {"type": "object", "properties": {"city": {"type": "string"},
    #  "days": {"type": "integer"}}, "required": ["city"]}
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

from tether.agents.providers.types import ToolSpec
from tether.runtime.tools import Tool

_JSON_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
    tuple: "array", dict: "object", type(None): "null",
}  # fmt: skip
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def wire_name(name: str) -> str:
    """``name`` as providers accept it (dots become ``__``, anything else ``_``)."""
    return _UNSAFE.sub("_", name.replace(".", "__"))[:64]


def tool_spec(t: Tool, name: str | None = None) -> ToolSpec:
    """The spec of ``t`` under its wire name (or ``name``'s)."""
    try:
        hints = typing.get_type_hints(t.fn)
    except (NameError, TypeError):  # an annotation that does not resolve: no type said
        hints = {}
    signature = inspect.signature(t.fn)
    properties: dict[str, Any] = {}
    for param in t.params:
        properties[param] = _schema(hints.get(param, signature.parameters[param].annotation))
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if t.required:
        parameters["required"] = sorted(t.required)
    description = (t.description.split("\n\n")[0] or t.name)[:1024]
    return ToolSpec(wire_name(name or t.name), description, parameters)


def _schema(annotation: Any) -> dict[str, Any]:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [_schema(a) for a in typing.get_args(annotation)]
        return {"anyOf": options} if all(options) else {}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(annotation))}
    base = origin or annotation
    json_type = _JSON_TYPES.get(base)
    if json_type is None:
        return {}
    schema: dict[str, Any] = {"type": json_type}
    args = typing.get_args(annotation)
    if json_type == "array" and len(args) == 1:
        schema["items"] = _schema(args[0])
    return schema
