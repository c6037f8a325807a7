"""A JSON schema of a ``@tool``'s parameters, from the function's signature: what a model is
told of the tool (``tether.agents``) and what a worker announces of the tools it serves.

Example::

    @tool
    async def weather(city: str, days: int = 1) -> dict: ...

    parameters_schema(weather)
    # {"type": "object", "properties": {"city": {"type": "string"},
    #  "days": {"type": "integer"}}, "required": ["city"]}
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from tether.runtime.tools import Tool

_JSON_TYPES: dict[Any, str] = {
    str: "string", int: "integer", float: "number", bool: "boolean", list: "array",
    tuple: "array", dict: "object", type(None): "null",
}  # fmt: skip


def parameters_schema(t: Tool) -> dict[str, Any]:
    """The JSON schema of ``t``'s keyword arguments (a type it cannot say is left open)."""
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
    return parameters


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
