"""One input of a node's call bound from state, as every I/O node reads its ``input``
mapping: ``$path`` (a state value), a template (``{{ state.x }}``) or a literal.

Example::

    bind_input("$order.id", {"order": {"id": 7}})              # 7
    bind_input("Hi {{ state.name }}", {"name": "Ada"})          # "Hi Ada"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tether.ir.templates import render_value


def bind_input(source: Any, data: Mapping[str, Any]) -> Any:
    """The value of ``source`` over state ``data``; a path state lacks raises LookupError."""
    if isinstance(source, str) and source.startswith("$") and not source.startswith("${"):
        value: Any = data
        path = source.removeprefix("$").removeprefix(".").removeprefix("state.")
        for part in path.split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise LookupError(f"state has no value at {source!r}")
        return value
    return render_value(source, data, data)
