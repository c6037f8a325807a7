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

import re

from tether.agents.providers.types import ToolSpec
from tether.runtime.tool_parameters import parameters_schema
from tether.runtime.tools import Tool

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def wire_name(name: str) -> str:
    """``name`` as providers accept it (dots become ``__``, anything else ``_``)."""
    return _UNSAFE.sub("_", name.replace(".", "__"))[:64]


def tool_spec(t: Tool, name: str | None = None) -> ToolSpec:
    """The spec of ``t`` under its wire name (or ``name``'s)."""
    description = (t.description.split("\n\n")[0] or t.name)[:1024]
    return ToolSpec(wire_name(name or t.name), description, parameters_schema(t))
